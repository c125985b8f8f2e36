use time::macros::datetime;
use time::OffsetDateTime;

use super::Schedule;

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn schedule(expr: &str) -> Schedule {
    Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr} should parse: {}", e.reason()))
}

/// The next fire time of a cron expression strictly after `after`.
#[track_caller]
fn next(expr: &str, after: OffsetDateTime) -> Option<OffsetDateTime> {
    schedule(expr)
        .next_after(0, ms(after))
        .map(|t| OffsetDateTime::from_unix_timestamp(t / 1000).expect("in range"))
}

/// Asserts the successive fire times after `after`.
#[track_caller]
fn assert_fires(expr: &str, after: OffsetDateTime, expected: &[OffsetDateTime]) {
    let mut at = after;
    for want in expected {
        let got = next(expr, at);
        assert_eq!(got, Some(*want), "{expr} after {at}");
        at = *want;
    }
}

#[test]
fn rate_expressions() {
    assert_eq!(
        schedule("rate(1 minute)"),
        Schedule::Rate { every_ms: 60_000 }
    );
    assert_eq!(
        schedule("rate(5 minutes)"),
        Schedule::Rate { every_ms: 300_000 }
    );
    assert_eq!(
        schedule("rate(1 hour)"),
        Schedule::Rate {
            every_ms: 3_600_000
        }
    );
    assert_eq!(
        schedule("rate(12 hours)"),
        Schedule::Rate {
            every_ms: 43_200_000
        }
    );
    assert_eq!(
        schedule("rate(1 day)"),
        Schedule::Rate {
            every_ms: 86_400_000
        }
    );
    assert_eq!(
        schedule("rate(2 days)"),
        Schedule::Rate {
            every_ms: 172_800_000
        }
    );
}

#[test]
fn rate_fires_at_whole_periods_after_the_anchor() {
    let every = Schedule::Rate { every_ms: 300_000 };
    let anchor = 1_700_000_000_123;
    assert_eq!(every.next_after(anchor, anchor), Some(anchor + 300_000));
    assert_eq!(
        every.next_after(anchor, anchor + 299_999),
        Some(anchor + 300_000)
    );
    assert_eq!(
        every.next_after(anchor, anchor + 300_000),
        Some(anchor + 600_000)
    );
    assert_eq!(
        every.next_after(anchor, anchor + 3_000_001),
        Some(anchor + 3_300_000)
    );
    // Before the anchor the first fire is still one period after it.
    assert_eq!(every.next_after(anchor, 0), Some(anchor + 300_000));
    assert_eq!(every.next_after(anchor, i64::MIN), Some(anchor + 300_000));
    // No panic at the edges of time.
    assert_eq!(every.next_after(anchor, i64::MAX), None);
    assert_eq!(every.next_after(i64::MAX - 10, 0), None);
    assert_eq!(Schedule::Rate { every_ms: 0 }.next_after(0, 0), None);
}

#[test]
fn invalid_rate_expressions() {
    for expr in [
        "rate(1 minutes)",
        "rate(1 hours)",
        "rate(1 days)",
        "rate(10 minute)",
        "rate(10 hour)",
        "rate(10 day)",
        "rate(0 minutes)",
        "rate(-10 minutes)",
        "rate(5 seconds)",
        "rate(10 years)",
        "rate()",
        "rate(10)",
        "rate(10 minutess)",
        "rate(foo minutes)",
        "rate(10 MINUTES)",
        "rate( 10 minutes )",
        "rate(10  minutes)",
        " rate(10 minutes)",
        "rate(10 minutes) ",
        "RATE(10 minutes)",
        "rate(1.5 hours)",
        "rate(99999999999999999999 minutes)",
        "rate(9999999999999999 days)",
        "",
        "every 5 minutes",
    ] {
        let error = Schedule::parse(expr).expect_err(expr);
        assert_eq!(
            error.to_string(),
            "Parameter ScheduleExpression is not valid."
        );
        assert!(!error.reason().is_empty());
    }
}

#[test]
fn daily_at_a_time() {
    // cron(15 10 * * ? *): 10:15 every day.
    let expr = "cron(15 10 * * ? *)";
    assert_fires(
        expr,
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2024-01-01 10:15 UTC),
            datetime!(2024-01-02 10:15 UTC),
            datetime!(2024-01-03 10:15 UTC),
        ],
    );
    // Strictly after: a fire time itself is not returned, any later instant in its minute neither.
    assert_eq!(
        next(expr, datetime!(2024-01-01 10:14:59.999 UTC)),
        Some(datetime!(2024-01-01 10:15 UTC))
    );
    assert_eq!(
        next(expr, datetime!(2024-01-01 10:15:00.001 UTC)),
        Some(datetime!(2024-01-02 10:15 UTC))
    );
    assert_eq!(
        next(expr, datetime!(2024-12-31 23:59 UTC)),
        Some(datetime!(2025-01-01 10:15 UTC))
    );
    assert_fires(
        "cron(0 12 * * ? *)",
        datetime!(2024-02-28 12:00 UTC),
        &[
            datetime!(2024-02-29 12:00 UTC),
            datetime!(2024-03-01 12:00 UTC),
        ],
    );
    assert_fires(
        "cron(5,35 14 * * ? *)",
        datetime!(2024-01-01 14:05 UTC),
        &[
            datetime!(2024-01-01 14:35 UTC),
            datetime!(2024-01-02 14:05 UTC),
        ],
    );
}

#[test]
fn weekdays_in_the_evening() {
    // cron(0 18 ? * MON-FRI *); 2024-01-05 is a Friday.
    assert_fires(
        "cron(0 18 ? * MON-FRI *)",
        datetime!(2024-01-04 18:00 UTC),
        &[
            datetime!(2024-01-05 18:00 UTC),
            datetime!(2024-01-08 18:00 UTC),
            datetime!(2024-01-09 18:00 UTC),
        ],
    );
    assert_eq!(
        next("cron(0 18 ? * mon-fri *)", datetime!(2024-01-06 12:00 UTC)),
        Some(datetime!(2024-01-08 18:00 UTC)),
    );
    assert_eq!(
        next("cron(0 18 ? * 2-6 *)", datetime!(2024-01-06 12:00 UTC)),
        Some(datetime!(2024-01-08 18:00 UTC)),
    );
}

#[test]
fn every_ten_minutes_on_weekdays() {
    let expr = "cron(0/10 * ? * MON-FRI *)";
    assert_fires(
        expr,
        datetime!(2024-01-05 23:45 UTC),
        &[
            datetime!(2024-01-05 23:50 UTC),
            datetime!(2024-01-08 00:00 UTC),
            datetime!(2024-01-08 00:10 UTC),
        ],
    );
    assert_eq!(
        next(expr, datetime!(2024-01-08 00:05:30 UTC)),
        Some(datetime!(2024-01-08 00:10 UTC))
    );
    assert_fires(
        "cron(0/15 * * * ? *)",
        datetime!(2024-01-01 00:50 UTC),
        &[
            datetime!(2024-01-01 01:00 UTC),
            datetime!(2024-01-01 01:15 UTC),
        ],
    );
    assert_fires(
        "cron(5/20 * * * ? *)",
        datetime!(2024-01-01 00:46 UTC),
        &[
            datetime!(2024-01-01 01:05 UTC),
            datetime!(2024-01-01 01:25 UTC),
            datetime!(2024-01-01 01:45 UTC),
            datetime!(2024-01-01 02:05 UTC),
        ],
    );
    assert_fires(
        "cron(* * * * ? *)",
        datetime!(2024-01-01 00:00:30 UTC),
        &[
            datetime!(2024-01-01 00:01 UTC),
            datetime!(2024-01-01 00:02 UTC),
        ],
    );
}

#[test]
fn business_hours_and_ranges_across_midnight() {
    assert_fires(
        "cron(0/5 8-17 ? * MON-FRI *)",
        datetime!(2024-01-01 17:50 UTC),
        &[
            datetime!(2024-01-01 17:55 UTC),
            datetime!(2024-01-02 08:00 UTC),
        ],
    );
    // From the docs: every 30 minutes, 10:00 pm to 2:00 am, Monday to Friday.
    let expr = "cron(0/30 20-2 ? * MON-FRI *)";
    assert_fires(
        expr,
        datetime!(2024-01-01 01:45 UTC),
        &[
            datetime!(2024-01-01 02:00 UTC),
            datetime!(2024-01-01 02:30 UTC),
            datetime!(2024-01-01 20:00 UTC),
        ],
    );
    assert_fires(
        expr,
        datetime!(2024-01-05 23:30 UTC),
        &[datetime!(2024-01-08 00:00 UTC)],
    );
    // Wrapping day-of-week and month ranges.
    assert_eq!(
        next("cron(0 0 ? * FRI-MON *)", datetime!(2024-01-02 00:00 UTC)),
        Some(datetime!(2024-01-05 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 ? * FRI-MON *)", datetime!(2024-01-07 00:00 UTC)),
        Some(datetime!(2024-01-08 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 1 NOV-FEB ? *)", datetime!(2024-02-01 00:00 UTC)),
        Some(datetime!(2024-11-01 00:00 UTC))
    );
}

#[test]
fn first_monday_of_the_month() {
    // cron(0 9 ? * 2#1 *); February 2024 starts on a Thursday.
    assert_fires(
        "cron(0 9 ? * 2#1 *)",
        datetime!(2023-12-31 00:00 UTC),
        &[
            datetime!(2024-01-01 09:00 UTC),
            datetime!(2024-02-05 09:00 UTC),
            datetime!(2024-03-04 09:00 UTC),
        ],
    );
    // Third Saturday, and every minute of it.
    assert_fires(
        "cron(0 2 ? * SAT#3 *)",
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2024-01-20 02:00 UTC),
            datetime!(2024-02-17 02:00 UTC),
        ],
    );
    assert_fires(
        "cron(* * ? * SAT#3 *)",
        datetime!(2024-01-20 23:58 UTC),
        &[
            datetime!(2024-01-20 23:59 UTC),
            datetime!(2024-02-17 00:00 UTC),
        ],
    );
    // A fifth Thursday exists only in some months: Feb, May, Aug, Oct 2024.
    assert_fires(
        "cron(0 0 ? * 5#5 *)",
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2024-02-29 00:00 UTC),
            datetime!(2024-05-30 00:00 UTC),
            datetime!(2024-08-29 00:00 UTC),
        ],
    );
}

#[test]
fn first_day_of_the_month() {
    assert_fires(
        "cron(0 8 1 * ? *)",
        datetime!(2024-01-01 08:00 UTC),
        &[
            datetime!(2024-02-01 08:00 UTC),
            datetime!(2024-03-01 08:00 UTC),
        ],
    );
    assert_eq!(
        next("cron(0 8 1 * ? *)", datetime!(2024-12-15 00:00 UTC)),
        Some(datetime!(2025-01-01 08:00 UTC))
    );
    // The 31st skips short months.
    assert_fires(
        "cron(0 0 31 * ? *)",
        datetime!(2024-01-31 00:00 UTC),
        &[
            datetime!(2024-03-31 00:00 UTC),
            datetime!(2024-05-31 00:00 UTC),
        ],
    );
    assert_fires(
        "cron(0 0 1,15 JAN,JUL ? *)",
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2024-01-15 00:00 UTC),
            datetime!(2024-07-01 00:00 UTC),
            datetime!(2024-07-15 00:00 UTC),
            datetime!(2025-01-01 00:00 UTC),
        ],
    );
    assert_fires(
        "cron(0 0 1 1/4 ? *)",
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2024-05-01 00:00 UTC),
            datetime!(2024-09-01 00:00 UTC),
            datetime!(2025-01-01 00:00 UTC),
        ],
    );
}

#[test]
fn last_day_of_the_month() {
    assert_fires(
        "cron(0 12 L * ? *)",
        datetime!(2024-01-31 12:00 UTC),
        &[
            datetime!(2024-02-29 12:00 UTC),
            datetime!(2024-03-31 12:00 UTC),
            datetime!(2024-04-30 12:00 UTC),
        ],
    );
    assert_eq!(
        next("cron(0 12 L * ? *)", datetime!(2023-02-01 00:00 UTC)),
        Some(datetime!(2023-02-28 12:00 UTC))
    );
    // L-3: three days before the last day.
    assert_fires(
        "cron(0 0 L-3 * ? *)",
        datetime!(2024-02-01 00:00 UTC),
        &[
            datetime!(2024-02-26 00:00 UTC),
            datetime!(2024-03-28 00:00 UTC),
        ],
    );
    // LW: the last weekday; 2024-03-31 is a Sunday, 2024-08-31 a Saturday.
    assert_fires(
        "cron(0 0 LW * ? *)",
        datetime!(2024-03-01 00:00 UTC),
        &[
            datetime!(2024-03-29 00:00 UTC),
            datetime!(2024-04-30 00:00 UTC),
        ],
    );
    assert_eq!(
        next("cron(0 0 LW * ? *)", datetime!(2024-08-01 00:00 UTC)),
        Some(datetime!(2024-08-30 00:00 UTC))
    );
}

#[test]
fn nearest_weekday() {
    // cron(0 0 15W * ? *): 2024-06-15 is a Saturday, 2024-09-15 a Sunday.
    assert_fires(
        "cron(0 0 15W * ? *)",
        datetime!(2024-05-31 00:00 UTC),
        &[
            datetime!(2024-06-14 00:00 UTC),
            datetime!(2024-07-15 00:00 UTC),
        ],
    );
    assert_eq!(
        next("cron(0 0 15W * ? *)", datetime!(2024-09-01 00:00 UTC)),
        Some(datetime!(2024-09-16 00:00 UTC))
    );
    // Never leaves the month: 1W on Saturday 2024-06-01 is Monday the 3rd; 31W on Sunday
    // 2024-03-31 is Friday the 29th; 31W skips 30-day months.
    assert_eq!(
        next("cron(0 0 1W * ? *)", datetime!(2024-05-31 00:00 UTC)),
        Some(datetime!(2024-06-03 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 31W * ? *)", datetime!(2024-03-01 00:00 UTC)),
        Some(datetime!(2024-03-29 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 31W * ? *)", datetime!(2024-04-01 00:00 UTC)),
        Some(datetime!(2024-05-31 00:00 UTC))
    );
}

#[test]
fn last_weekday_of_the_month() {
    // cron(0 10 ? * 6L *): the last Friday.
    assert_fires(
        "cron(0 10 ? * 6L *)",
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2024-01-26 10:00 UTC),
            datetime!(2024-02-23 10:00 UTC),
            datetime!(2024-03-29 10:00 UTC),
        ],
    );
    assert_eq!(
        next("cron(0 10 ? * FRIL *)", datetime!(2024-05-01 00:00 UTC)),
        Some(datetime!(2024-05-31 10:00 UTC))
    );
    // A lone L in day-of-week is Saturday, every week.
    assert_fires(
        "cron(0 0 ? * L *)",
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2024-01-06 00:00 UTC),
            datetime!(2024-01-13 00:00 UTC),
        ],
    );
}

#[test]
fn years() {
    // From the docs: last Friday of each month, 2019 to 2022.
    let expr = "cron(15 10 ? * 6L 2019-2022)";
    assert_eq!(
        next(expr, datetime!(2018-06-01 00:00 UTC)),
        Some(datetime!(2019-01-25 10:15 UTC))
    );
    assert_eq!(
        next(expr, datetime!(2022-12-01 00:00 UTC)),
        Some(datetime!(2022-12-30 10:15 UTC))
    );
    assert_eq!(next(expr, datetime!(2022-12-30 10:15 UTC)), None);
    // Sunday to Thursday (1-5) of January 2022; 2022-01-07 is a Friday, 2022-01-31 a Monday.
    assert_fires(
        "cron(0/5 5 ? JAN 1-5 2022)",
        datetime!(2022-01-06 05:50 UTC),
        &[
            datetime!(2022-01-06 05:55 UTC),
            datetime!(2022-01-09 05:00 UTC),
        ],
    );
    assert_eq!(
        next(
            "cron(0/5 5 ? JAN 1-5 2022)",
            datetime!(2022-01-31 05:55 UTC)
        ),
        None
    );
    assert_fires(
        "cron(0 0 1 1 ? 2030,2040/50)",
        datetime!(2024-01-01 00:00 UTC),
        &[
            datetime!(2030-01-01 00:00 UTC),
            datetime!(2040-01-01 00:00 UTC),
            datetime!(2090-01-01 00:00 UTC),
            datetime!(2140-01-01 00:00 UTC),
            datetime!(2190-01-01 00:00 UTC),
        ],
    );
    assert_eq!(
        next(
            "cron(0 0 1 1 ? 2030,2040/50)",
            datetime!(2190-01-01 00:00 UTC)
        ),
        None
    );
    assert_eq!(
        next("cron(59 23 31 12 ? 2199)", datetime!(2199-12-31 23:58 UTC)),
        Some(datetime!(2199-12-31 23:59 UTC))
    );
    assert_eq!(
        next("cron(59 23 31 12 ? *)", datetime!(2199-12-31 23:59 UTC)),
        None
    );
}

#[test]
fn search_is_bounded() {
    let started = std::time::Instant::now();
    // February 30th never comes: the whole 1970-2199 range is scanned and nothing found.
    assert_eq!(
        next("cron(0 0 30 2 ? *)", datetime!(1970-01-01 00:00 UTC)),
        None
    );
    assert_eq!(
        next(
            "cron(0 0 ? 2 5#5 2025-2027)",
            datetime!(2024-01-01 00:00 UTC)
        ),
        None
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // Before 1970 the first fire is in 1970; extreme instants do not panic.
    let every_day = schedule("cron(0 0 * * ? *)");
    assert_eq!(every_day.next_after(0, -1), Some(0));
    assert_eq!(every_day.next_after(0, i64::MIN), Some(0));
    assert_eq!(every_day.next_after(0, i64::MAX), None);
    assert_eq!(
        every_day.next_after(0, ms(datetime!(2200-01-01 00:00 UTC))),
        None
    );
}

#[test]
fn invalid_cron_expressions() {
    for expr in [
        "cron(0 1 * * * *)",
        "cron(0 1 ? * ? *)",
        "cron(0 1 1 * MON *)",
        "cron(0 12 * * ?)",
        "cron(0 12 * * ? * *)",
        "cron(7 20 * * NOT *)",
        "cron(INVALID)",
        "cron(0 dummy ? * MON-FRI *)",
        "cron(71 8 1 * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 0 0 * ? *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 1 13 ? *)",
        "cron(0 0 1 0 ? *)",
        "cron(0 0 ? * 0 *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 1 * ? 1969)",
        "cron(0 0 1 * ? 2200)",
        "cron(0 0 ? * 1/2 *)",
        "cron(0/0 * * * ? *)",
        "cron(0/61 * * * ? *)",
        "cron(0- * * * ? *)",
        "cron(,0 * * * ? *)",
        "cron(0 0 ? * 2#6 *)",
        "cron(0 0 ? * 2#0 *)",
        "cron(0 0 ? * 8#1 *)",
        "cron(0 0 ? * 2#1,6#3 *)",
        "cron(0 0 L-31 * ? *)",
        "cron(0 0 32W * ? *)",
        "cron(0 0 0W * ? *)",
        "cron(0 0 W * ? *)",
        "cron(0 0 L,15 * ? *)",
        "cron(0 0 ? * 8L *)",
        "cron(0 0 1 JANUARY ? *)",
        "cron(0 0 ? * MONDAY *)",
        "cron(0 0 1 * ? *",
        "CRON(0 0 1 * ? *)",
        "cron()",
    ] {
        let error = Schedule::parse(expr).expect_err(expr);
        assert_eq!(
            error.to_string(),
            "Parameter ScheduleExpression is not valid.",
            "{expr}"
        );
    }
}

#[test]
fn valid_cron_expressions_from_the_docs() {
    for expr in [
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0/30 20-2 ? * MON-FRI *)",
        "cron(0 2 ? * SAT *)",
        "cron(0 12 * * ? *)",
        "cron(5,35 14 * * ? *)",
        "cron(15 10 ? * 6L 2002-2005)",
        "cron(0 2 ? * SAT#3 *)",
        "cron(* * ? * SAT#3 *)",
        "cron(0/5 5 ? JAN 1-5 2022)",
        "cron(0 0 ? JAN,FEB,MAR 3#2 *)",
        "cron(*/5 * * * ? *)",
        "cron(0 0 1-15 * ? *)",
    ] {
        assert!(matches!(schedule(expr), Schedule::Cron(_)), "{expr}");
    }
}
