//! `nimbus bench`: a load generator for users. N client threads invoke a function over
//! keep-alive HTTP for M requests or D seconds, with a live progress line, then print
//! latency percentiles, a histogram, throughput, cold starts, throttles and errors.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use crate::cli::{encode, parse_duration, Endpoint};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The function (name, `name:qualifier` or ARN).
    name: String,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: u32,
    /// Total requests (default 1000 unless --duration is given).
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Run for this long instead, e.g. 30s, 2m.
    #[arg(long, short = 'd', conflicts_with = "requests")]
    duration: Option<String>,
    /// The event, as JSON.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// Invoke asynchronously (`InvocationType=Event`): measures how fast events are
    /// accepted (durably queued), not how fast they run.
    #[arg(long)]
    event: bool,
    /// POST to this HTTP endpoint (a Function URL or an HTTP API route, e.g. the
    /// `/_nimbus/url/<url-id>/` fallback) instead of the Invoke API; NAME is then a label.
    #[arg(long, conflicts_with = "event")]
    url: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Default)]
struct Tally {
    done: AtomicU64,
    throttled: AtomicU64,
    function_errors: AtomicU64,
    other_errors: AtomicU64,
}

/// Percentile of sorted microsecond samples.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A log-scale latency histogram, one line per bucket that has samples.
fn histogram(sorted: &[u64]) -> Vec<String> {
    let bounds: Vec<u64> = [
        100,
        250,
        500,
        1_000,
        2_500,
        5_000,
        10_000,
        25_000,
        50_000,
        100_000,
        250_000,
        1_000_000,
        10_000_000,
        u64::MAX,
    ]
    .to_vec();
    let mut counts = vec![0u64; bounds.len()];
    for &s in sorted {
        let b = bounds
            .iter()
            .position(|&b| s < b)
            .unwrap_or(bounds.len() - 1);
        counts[b] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut lo = 0;
    let mut out = Vec::new();
    for (b, c) in bounds.iter().zip(&counts) {
        if *c > 0 {
            let label = if *b == u64::MAX {
                format!("≥ {:.1} ms", ms(lo))
            } else {
                format!("< {:.1} ms", ms(*b))
            };
            let bar = "█".repeat(((*c * 40).div_ceil(max)) as usize);
            out.push(format!("  {label:>12} {c:>8}  {bar}"));
        }
        lo = *b;
    }
    out
}

/// The function's cold starts so far, all versions together (`None` if not a Nimbus).
fn cold_starts(stats_url: &str, name: &str) -> Option<u64> {
    let v: serde_json::Value = ureq::get(stats_url)
        .call()
        .ok()?
        .body_mut()
        .read_json()
        .ok()?;
    Some(
        v["versions"]
            .as_array()?
            .iter()
            .filter(|r| r["function"] == name)
            .filter_map(|r| r["cold_starts"].as_u64())
            .sum(),
    )
}

pub fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    serde_json::from_str::<serde_json::Value>(&a.payload)
        .map_err(|e| anyhow::anyhow!("--payload is not JSON: {e}"))?;
    let deadline = a.duration.as_deref().map(parse_duration).transpose()?;
    let total = if deadline.is_some() {
        u64::MAX
    } else {
        a.requests.unwrap_or(1000)
    };
    let (name, qualifier) = match a.name.rsplit_once(':') {
        Some((n, q)) if !a.name.starts_with("arn:") => (n.to_string(), Some(q.to_string())),
        _ => (a.name.clone(), None),
    };
    let mut url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        a.endpoint.url(),
        encode(&name)
    );
    if let Some(q) = qualifier {
        url.push_str(&format!("?Qualifier={}", encode(&q)));
    }
    let http_mode = a.url.is_some();
    if let Some(u) = &a.url {
        url.clone_from(u);
    }
    // Cold starts are read from the server's counters, so requests need not carry
    // `LogType=Tail` (which costs the server a capture of every invocation's log).
    let stats_url = format!("{}/_nimbus/stats", a.endpoint.url());
    let cold_before = cold_starts(&stats_url, &name);
    let tally = Arc::new(Tally::default());
    let issued = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let end = deadline.map(|d| started + d);
    out!(
        "benchmarking {} with {} client(s), {}",
        a.name,
        a.concurrency,
        match deadline {
            Some(d) => format!("for {}s", d.as_secs()),
            None => format!("{total} requests"),
        }
    );
    let workers: Vec<_> = (0..a.concurrency)
        .map(|_| {
            let (tally, issued, samples, stop) =
                (tally.clone(), issued.clone(), samples.clone(), stop.clone());
            let url = url.clone();
            let payload = a.payload.clone().into_bytes();
            let event = a.event;
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut mine = Vec::new();
                loop {
                    if stop.load(Ordering::Relaxed) || end.is_some_and(|e| Instant::now() >= e) {
                        break;
                    }
                    if issued.fetch_add(1, Ordering::Relaxed) >= total {
                        break;
                    }
                    let t = Instant::now();
                    let r = agent
                        .post(&url)
                        .header(
                            "X-Amz-Invocation-Type",
                            if event { "Event" } else { "RequestResponse" },
                        )
                        .send(&payload[..]);
                    let us = t.elapsed().as_micros() as u64;
                    match r {
                        Ok(mut resp) => {
                            let status = resp.status().as_u16();
                            let _ = resp.body_mut().with_config().limit(8 << 20).read_to_vec();
                            let h = |k: &str| {
                                resp.headers()
                                    .get(k)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                            };
                            match status {
                                202 if event => mine.push(us),
                                200..=299 if http_mode => mine.push(us),
                                200 => {
                                    mine.push(us);
                                    if h("x-amz-function-error").is_some() {
                                        tally.function_errors.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                429 => {
                                    tally.throttled.fetch_add(1, Ordering::Relaxed);
                                }
                                _ => {
                                    tally.other_errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Err(_) => {
                            tally.other_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tally.done.fetch_add(1, Ordering::Relaxed);
                }
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(mine);
            })
        })
        .collect();
    let tty = std::io::stderr().is_terminal();
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        if tty {
            let done = tally.done.load(Ordering::Relaxed);
            let elapsed = started.elapsed().as_secs_f64();
            let progress = match (deadline, total) {
                (Some(d), _) => (elapsed / d.as_secs_f64()).min(1.0),
                (None, t) => done as f64 / t as f64,
            };
            let filled = (progress * 30.0) as usize;
            eprint!(
                "\r  [{}{}] {done} done  {:.0}/s  {} throttled  {} errors\x1b[K",
                "#".repeat(filled),
                " ".repeat(30 - filled.min(30)),
                done as f64 / elapsed.max(1e-9),
                tally.throttled.load(Ordering::Relaxed),
                tally.function_errors.load(Ordering::Relaxed)
                    + tally.other_errors.load(Ordering::Relaxed),
            );
            let _ = std::io::stderr().flush();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    if tty {
        eprintln!();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut s = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    s.sort_unstable();
    let done = tally.done.load(Ordering::Relaxed);
    out!(
        "requests   {done} in {elapsed:.2}s  ({:.0} req/s)",
        done as f64 / elapsed.max(1e-9)
    );
    out!(
        "latency    p50 {:.3} ms   p90 {:.3} ms   p99 {:.3} ms   max {:.3} ms",
        ms(percentile(&s, 50.0)),
        ms(percentile(&s, 90.0)),
        ms(percentile(&s, 99.0)),
        ms(s.last().copied().unwrap_or(0))
    );
    let cold = match (cold_before, cold_starts(&stats_url, &name)) {
        (Some(b), Some(a)) => a.saturating_sub(b).to_string(),
        _ => "?".into(),
    };
    out!(
        "outcomes   {} ok, {} cold starts, {} throttled (429), {} function errors, {} other errors",
        s.len() as u64 - tally.function_errors.load(Ordering::Relaxed),
        cold,
        tally.throttled.load(Ordering::Relaxed),
        tally.function_errors.load(Ordering::Relaxed),
        tally.other_errors.load(Ordering::Relaxed)
    );
    if !s.is_empty() {
        out!("histogram");
        for line in histogram(&s) {
            out!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_histogram() {
        let s: Vec<u64> = (1..=100).map(|i| i * 100).collect();
        assert_eq!(percentile(&s, 50.0), 5_100);
        assert_eq!(percentile(&s, 99.0), 9_900);
        assert_eq!(percentile(&[], 50.0), 0);
        let h = histogram(&s);
        assert!(h.iter().any(|l| l.contains("< 1.0 ms")));
        let total: u64 = h
            .iter()
            .map(|l| l.split_whitespace().nth(3).unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, 100);
    }
}
