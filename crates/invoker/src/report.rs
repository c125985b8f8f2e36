//! The platform's own log lines, formatted exactly as Lambda writes them (Text format).

use std::fmt::Write;

pub(crate) fn start(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}")
}

pub(crate) fn end(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// `INIT_START` for managed runtimes (custom runtimes get none).
pub(crate) fn init_start(runtime: &str, region: &str) -> Option<String> {
    use sha2::Digest;
    let (lang, ver) = if let Some(v) = runtime.strip_prefix("python") {
        ("python", v)
    } else if let Some(v) = runtime.strip_prefix("nodejs") {
        ("nodejs", v.trim_end_matches(".x"))
    } else {
        return None;
    };
    let arn_id = hex::encode(sha2::Sha256::digest(format!("nimbus:{runtime}")));
    Some(format!(
        "INIT_START Runtime Version: {lang}:{ver}.nimbus\tRuntime Version ARN: arn:aws:lambda:{region}::runtime:{arn_id}"
    ))
}

pub(crate) struct Report<'a> {
    pub request_id: &'a str,
    pub duration_ms: f64,
    pub memory_mb: u32,
    pub max_memory_mb: Option<u64>,
    pub init_ms: Option<f64>,
    /// `("timeout", "")` or `("error", error type)`.
    pub status: Option<(&'static str, &'a str)>,
}

/// Billed duration: whole milliseconds rounded up, including init on a cold start (as
/// Lambda bills since August 2025).
pub fn billed_ms(duration_ms: f64, init_ms: Option<f64>) -> u64 {
    let total = duration_ms + init_ms.unwrap_or(0.0);
    (total.ceil().max(1.0)) as u64
}

pub(crate) fn report(r: &Report<'_>) -> String {
    let mut s = format!(
        "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        r.request_id,
        r.duration_ms,
        billed_ms(r.duration_ms, r.init_ms),
        r.memory_mb,
        r.max_memory_mb.unwrap_or(0).min(u64::from(r.memory_mb)),
    );
    if let Some(init) = r.init_ms {
        let _ = write!(s, "Init Duration: {init:.2} ms\t");
    }
    match r.status {
        Some(("timeout", _)) => s.push_str("Status: timeout"),
        Some((status, error_type)) => {
            let _ = write!(s, "Status: {status}\tError Type: {error_type}");
        }
        None => {}
    }
    s
}

/// How Go's os/exec (and so Lambda) describes a process exit.
pub(crate) fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "signal: killed".into(),
        (None, Some(sig)) => format!("signal: {sig}"),
        _ => "unknown exit".into(),
    }
}

/// A fresh X-Ray trace header.
pub(crate) fn trace_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    let secs = time::OffsetDateTime::now_utc().unix_timestamp();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &u[..24],
        &u[16..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line_matches_lambda() {
        let r = Report {
            request_id: "id",
            duration_ms: 12.341,
            memory_mb: 128,
            max_memory_mb: Some(35),
            init_ms: Some(120.5),
            status: None,
        };
        assert_eq!(
            report(&r),
            "REPORT RequestId: id\tDuration: 12.34 ms\tBilled Duration: 133 ms\tMemory Size: 128 MB\tMax Memory Used: 35 MB\tInit Duration: 120.50 ms\t"
        );
        let r = Report {
            init_ms: None,
            status: Some(("timeout", "")),
            ..r
        };
        assert!(report(&r).ends_with("Max Memory Used: 35 MB\tStatus: timeout"));
        assert_eq!(billed_ms(0.2, None), 1);
    }
}
