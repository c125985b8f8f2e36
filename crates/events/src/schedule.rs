//! Schedule expressions of scheduled rules: `rate(value unit)` and AWS' six-field
//! `cron(Minutes Hours Day-of-month Month Day-of-week Year)`, always in UTC, with minute precision.
//!
//! Parsing is as strict as `PutRule`: `rate` needs exactly one space, a lowercase unit that is
//! singular exactly when the value is 1, and a value of at least 1; `cron` needs six fields with
//! exactly one of the two day fields set to `?`. The wildcards per field are the documented ones:
//! `, - * /` everywhere except day-of-week, which takes `, - * ? L #` (no `/`), and day-of-month,
//! which adds `? L W`. Beyond the documented `L`, `nW`, `nL` and `n#k`, the Quartz forms AWS'
//! syntax derives from are accepted too: `L-n` (n days before the last day), `LW` (last weekday)
//! and a lone `L` in day-of-week (Saturday). Ranges may wrap (`20-2` in hours, `FRI-MON`), and
//! names are case-insensitive.
//!
//! Next fire times are found field by field (year, month, day, hour, minute), so even an
//! expression that never fires (`cron(0 0 30 2 ? *)`) costs only one pass over the years.

use time::{Date, Month, OffsetDateTime};

#[cfg(test)]
mod tests;

/// An invalid schedule expression. `Display` is AWS' `ValidationException` message for `PutRule`;
/// [`ScheduleError::reason`] says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Parameter ScheduleExpression is not valid.")]
pub struct ScheduleError {
    reason: String,
}

impl ScheduleError {
    /// What is wrong with the expression, for logs and error details.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

type Result<T> = std::result::Result<T, ScheduleError>;

fn invalid<T>(reason: impl Into<String>) -> Result<T> {
    Err(ScheduleError {
        reason: reason.into(),
    })
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate(...)`: fires every `every_ms` after the rule is created or enabled.
    Rate { every_ms: i64 },
    /// `cron(...)`: fires at the UTC minutes the expression selects.
    Cron(Cron),
}

const MINUTE_MS: i64 = 60_000;

impl Schedule {
    /// Parses `rate(5 minutes)`, `rate(1 hour)`, `rate(2 days)` or `cron(...)`.
    pub fn parse(expr: &str) -> Result<Schedule> {
        if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
            parse_rate(inner)
        } else if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
            Cron::parse(inner).map(Schedule::Cron)
        } else {
            invalid("expected rate(value unit) or cron(fields)")
        }
    }

    /// The first fire time strictly after `after_ms` (ms since the epoch). Rates fire at
    /// `anchor_ms + k * every_ms` for k >= 1, the anchor being when the rule was created or
    /// enabled; cron ignores the anchor. `None` when nothing fires later (cron past 2199).
    pub fn next_after(&self, anchor_ms: i64, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate { every_ms } => {
                let (anchor, after, every) = (
                    i128::from(anchor_ms),
                    i128::from(after_ms),
                    i128::from(*every_ms),
                );
                if every <= 0 {
                    return None;
                }
                let k = if after < anchor {
                    1
                } else {
                    (after - anchor) / every + 1
                };
                i64::try_from(anchor + k * every).ok()
            }
            Schedule::Cron(cron) => cron.next_after(after_ms),
        }
    }
}

fn parse_rate(inner: &str) -> Result<Schedule> {
    let Some((value, unit)) = inner.split_once(' ') else {
        return invalid("rate needs a value and a unit separated by one space");
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!("rate value {value:?} is not a positive integer"));
    }
    let value: i64 = value.parse().map_err(|_| ScheduleError {
        reason: format!("rate value {value} is too large"),
    })?;
    let (unit_ms, singular) = match unit {
        "minute" => (MINUTE_MS, true),
        "minutes" => (MINUTE_MS, false),
        "hour" => (60 * MINUTE_MS, true),
        "hours" => (60 * MINUTE_MS, false),
        "day" => (24 * 60 * MINUTE_MS, true),
        "days" => (24 * 60 * MINUTE_MS, false),
        _ => {
            return invalid(format!(
                "rate unit {unit:?} is not minute(s), hour(s) or day(s)"
            ))
        }
    };
    if value == 0 {
        return invalid("rate value must be at least 1");
    }
    if (value == 1) != singular {
        return invalid("rate unit must be singular for 1 and plural otherwise");
    }
    match value.checked_mul(unit_ms) {
        Some(every_ms) => Ok(Schedule::Rate { every_ms }),
        None => invalid(format!("rate value {value} is too large")),
    }
}

/// A set of small integers (a field's values, offset by the field's minimum).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Set([u64; 4]);

impl Set {
    fn insert(&mut self, i: u32) {
        if let Some(word) = self.0.get_mut((i / 64) as usize) {
            *word |= 1 << (i % 64);
        }
    }

    fn contains(&self, i: u32) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }
}

/// A parsed `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Set,
    hours: Set,
    days: Days,
    /// Months 1-12, stored from 0.
    months: Set,
    /// Years 1970-2199, stored from 0.
    years: Set,
}

/// Which days of a month fire: exactly one of day-of-month and day-of-week is set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    /// Day-of-month list; days 1-31 stored from 0.
    OfMonth(Set),
    /// `L` or `L-n`: n days before the month's last day.
    LastDay(u32),
    /// `LW`: the month's last weekday (Monday to Friday).
    LastWeekday,
    /// `nW`: the weekday nearest day n, without leaving the month.
    NearestWeekday(u32),
    /// Day-of-week list; 1 (SUN) to 7 (SAT) stored from 0.
    OfWeek(Set),
    /// `d#n`: the n-th such weekday of the month (1 = SUN).
    NthOfWeek { weekday: u32, nth: u32 },
    /// `dL`: the month's last such weekday.
    LastOfWeek(u32),
}

/// The bounds and names of one cron field.
struct Field {
    label: &'static str,
    min: u32,
    max: u32,
    /// Names of `min`, `min + 1`, ... (months and weekdays).
    names: &'static [&'static str],
    /// Whether `/` increments are allowed.
    slash: bool,
}

const MINUTES: Field = Field::new("Minutes", 0, 59, &[], true);
const HOURS: Field = Field::new("Hours", 0, 23, &[], true);
const DAY_OF_MONTH: Field = Field::new("Day-of-month", 1, 31, &[], true);
const MONTH: Field = Field::new("Month", 1, 12, &MONTH_NAMES, true);
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
// The documented wildcards of day-of-week do not include '/'.
const DAY_OF_WEEK: Field = Field::new("Day-of-week", 1, 7, &DAY_NAMES, false);
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const YEAR: Field = Field::new("Year", 1970, 2199, &[], true);

impl Field {
    const fn new(
        label: &'static str,
        min: u32,
        max: u32,
        names: &'static [&'static str],
        slash: bool,
    ) -> Field {
        Field {
            label,
            min,
            max,
            names,
            slash,
        }
    }

    fn value(&self, text: &str) -> Result<u32> {
        let value = match self.names.iter().position(|name| *name == text) {
            Some(index) => self.min + index as u32,
            None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().unwrap_or(u32::MAX)
            }
            None => return invalid(format!("{}: {text:?} is not a value", self.label)),
        };
        if !(self.min..=self.max).contains(&value) {
            return invalid(format!(
                "{}: {value} is outside {}-{}",
                self.label, self.min, self.max
            ));
        }
        Ok(value)
    }

    /// A comma-separated list of `*`, `v`, `a-b` (wrapping when a > b), each optionally `/step`.
    fn list(&self, text: &str) -> Result<Set> {
        let span = self.max - self.min + 1;
        let mut set = Set::default();
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some(_) if !self.slash => {
                    return invalid(format!("{}: '/' is not allowed", self.label))
                }
                Some((range, step)) => {
                    let step = if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) {
                        step.parse().unwrap_or(0)
                    } else {
                        0
                    };
                    if !(1..=span).contains(&step) {
                        return invalid(format!("{}: bad increment in {item:?}", self.label));
                    }
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (start, end) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let value = self.value(range)?;
                // "5/15" runs from 5 to the end of the field, as in Quartz.
                (value, if step.is_some() { self.max } else { value })
            };
            let distance = (end + span - start) % span;
            let step = step.unwrap_or(1);
            for offset in (0..=distance).step_by(step as usize) {
                set.insert((start - self.min + offset) % span);
            }
        }
        Ok(set)
    }
}

impl Cron {
    /// Parses the text between `cron(` and `)`.
    fn parse(inner: &str) -> Result<Cron> {
        let upper = inner.to_ascii_uppercase();
        let fields: Vec<&str> = upper.split_whitespace().collect();
        let [minutes, hours, day_of_month, month, day_of_week, year] = fields[..] else {
            return invalid(format!("cron needs 6 fields, found {}", fields.len()));
        };
        let days = match (day_of_month, day_of_week) {
            ("?", "?") => return invalid("only one of Day-of-month and Day-of-week can be '?'"),
            (dom, "?") => parse_day_of_month(dom)?,
            ("?", dow) => parse_day_of_week(dow)?,
            _ => return invalid("one of Day-of-month and Day-of-week must be '?'"),
        };
        Ok(Cron {
            minutes: MINUTES.list(minutes)?,
            hours: HOURS.list(hours)?,
            days,
            months: MONTH.list(month)?,
            years: YEAR.list(year)?,
        })
    }

    /// The first minute strictly after `after_ms` that the expression selects.
    fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start_minute = after_ms.div_euclid(MINUTE_MS).checked_add(1)?;
        // Before 1970 nothing can fire, so start the search at the epoch.
        let start =
            OffsetDateTime::from_unix_timestamp(start_minute.checked_mul(60)?.max(0)).ok()?;
        let start_key = (
            start.year(),
            u32::from(u8::from(start.month())),
            u32::from(start.day()),
            u32::from(start.hour()),
        );
        for year in start.year().max(1970)..=2199 {
            if !self.years.contains((year - 1970) as u32) {
                continue;
            }
            for month in 1..=12u32 {
                if !self.months.contains(month - 1) || (year, month) < (start_key.0, start_key.1) {
                    continue;
                }
                let days = self.days.of(year, month)?;
                for day in (1..=31u32).filter(|d| days.contains(d - 1)) {
                    if (year, month, day) < (start_key.0, start_key.1, start_key.2) {
                        continue;
                    }
                    for hour in (0..24u32).filter(|h| self.hours.contains(*h)) {
                        let key = (year, month, day, hour);
                        if key < start_key {
                            continue;
                        }
                        let first = if key == start_key {
                            u32::from(start.minute())
                        } else {
                            0
                        };
                        if let Some(minute) = (first..60).find(|m| self.minutes.contains(*m)) {
                            return timestamp_ms(year, month, day, hour, minute);
                        }
                    }
                }
            }
        }
        None
    }
}

fn timestamp_ms(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Option<i64> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let time = date
        .with_hms(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, 0)
        .ok()?;
    time.assume_utc().unix_timestamp().checked_mul(1000)
}

fn parse_day_of_month(text: &str) -> Result<Days> {
    let number = |digits: &str, range: std::ops::RangeInclusive<u32>| -> Result<u32> {
        match digits.parse::<u32>() {
            Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) && range.contains(&n) => Ok(n),
            _ => invalid(format!("Day-of-month: bad value in {text:?}")),
        }
    };
    Ok(match text {
        "L" => Days::LastDay(0),
        "LW" => Days::LastWeekday,
        _ if text.starts_with("L-") => Days::LastDay(number(&text[2..], 0..=30)?),
        _ if text.ends_with('W') => Days::NearestWeekday(number(&text[..text.len() - 1], 1..=31)?),
        _ => Days::OfMonth(DAY_OF_MONTH.list(text)?),
    })
}

fn parse_day_of_week(text: &str) -> Result<Days> {
    if text == "L" {
        // A lone L is the last day of the week: Saturday.
        let mut saturday = Set::default();
        saturday.insert(6);
        return Ok(Days::OfWeek(saturday));
    }
    if let Some((weekday, nth)) = text.split_once('#') {
        let weekday = DAY_OF_WEEK.value(weekday)?;
        return match nth.parse::<u32>() {
            Ok(nth) if (1..=5).contains(&nth) => Ok(Days::NthOfWeek { weekday, nth }),
            _ => invalid(format!("Day-of-week: bad occurrence in {text:?}")),
        };
    }
    if let Some(weekday) = text.strip_suffix('L') {
        return Ok(Days::LastOfWeek(DAY_OF_WEEK.value(weekday)?));
    }
    Ok(Days::OfWeek(DAY_OF_WEEK.list(text)?))
}

impl Days {
    /// The days (stored from 0) of `month` in `year` that fire.
    fn of(&self, year: i32, month: u32) -> Option<Set> {
        let month_value = Month::try_from(u8::try_from(month).ok()?).ok()?;
        let length = u32::from(month_value.length(year));
        let first_weekday = u32::from(
            Date::from_calendar_date(year, month_value, 1)
                .ok()?
                .weekday()
                .number_from_sunday(),
        );
        // 1 = Sunday ... 7 = Saturday.
        let weekday = |day: u32| (first_weekday - 1 + day - 1) % 7 + 1;
        let mut days = Set::default();
        let mut add = |day: u32| {
            if (1..=length).contains(&day) {
                days.insert(day - 1);
            }
        };
        match self {
            Days::OfMonth(set) => (1..=length)
                .filter(|d| set.contains(d - 1))
                .for_each(&mut add),
            Days::LastDay(before) => {
                if let Some(day) = length.checked_sub(*before) {
                    add(day);
                }
            }
            Days::LastWeekday => add(match weekday(length) {
                7 => length - 1,
                1 => length - 2,
                _ => length,
            }),
            Days::NearestWeekday(day) if *day <= length => add(match weekday(*day) {
                7 if *day == 1 => 3,
                7 => day - 1,
                1 if *day == length => day - 2,
                1 => day + 1,
                _ => *day,
            }),
            Days::NearestWeekday(_) => {}
            Days::OfWeek(set) => (1..=length)
                .filter(|d| set.contains(weekday(*d) - 1))
                .for_each(&mut add),
            Days::NthOfWeek {
                weekday: wanted,
                nth,
            } => {
                add(1 + (wanted + 7 - first_weekday) % 7 + 7 * (nth - 1));
            }
            Days::LastOfWeek(wanted) => add(length - (weekday(length) + 7 - wanted) % 7),
        }
        Some(days)
    }
}
