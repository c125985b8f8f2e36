//! Lambda's timestamp formats.

use time::OffsetDateTime;

/// `2020-04-10T19:06:32.563+0000`: how Lambda renders `LastModified` and friends.
pub fn lambda_timestamp(t: OffsetDateTime) -> String {
    utc_millis(t, "+0000")
}

/// `2024-01-01T00:00:00.000Z`: runtimes' and telemetry timestamps.
pub fn iso_millis(t: OffsetDateTime) -> String {
    utc_millis(t, "Z")
}

/// `2019-03-01T01:23:45Z`: EventBridge's event `time`.
pub fn iso_seconds(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn utc_millis(t: OffsetDateTime, zone: &str) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_lambda() {
        let t = datetime!(2020-04-10 19:06:32.563 UTC);
        assert_eq!(lambda_timestamp(t), "2020-04-10T19:06:32.563+0000");
        assert_eq!(iso_millis(t), "2020-04-10T19:06:32.563Z");
    }
}
