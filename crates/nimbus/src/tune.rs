//! `nimbus tune NAME`: power tuning, beyond Lambda. Runs the function at each memory size
//! (the CPU share follows memory in the sandbox), measures the billed duration of warm
//! invocations, prices each size with Lambda's formula, recommends the cheapest and the
//! fastest, and draws both as an SVG chart. The function's memory is restored at the end.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use nimbus_model::pricing;
use serde_json::json;

use crate::cli::{encode, Client, Endpoint};

#[derive(Args, Debug)]
pub struct TuneArgs {
    name: String,
    /// The event, as JSON.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// Memory sizes to try, in MB.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "128,256,512,1024,1769,3008"
    )]
    memory: Vec<u32>,
    /// Warm invocations measured per size.
    #[arg(long, default_value_t = 10)]
    invocations: u32,
    /// Where to write the chart.
    #[arg(long)]
    chart: Option<PathBuf>,
    #[command(flatten)]
    endpoint: Endpoint,
}

struct Point {
    memory: u32,
    median_ms: f64,
    billed_ms: f64,
    usd_per_million: f64,
    errors: u32,
}

fn set_memory(c: &Client, name: &str, mb: u32) -> anyhow::Result<()> {
    c.send(
        "PUT",
        &format!("/2015-03-31/functions/{}/configuration", encode(name)),
        &[("content-type", "application/json")],
        json!({ "MemorySize": mb }).to_string().into_bytes(),
    )?
    .ok()
    .with_context(|| format!("setting MemorySize {mb}"))?;
    Ok(())
}

/// One invocation's `(duration ms, billed ms, function error)` from its REPORT line.
fn invoke(c: &Client, name: &str, payload: &[u8]) -> anyhow::Result<(f64, f64, bool)> {
    let r = c
        .send(
            "POST",
            &format!("/2015-03-31/functions/{}/invocations", encode(name)),
            &[("X-Amz-Log-Type", "Tail")],
            payload.to_vec(),
        )?
        .ok()?;
    let log = r
        .header("x-amz-log-result")
        .and_then(|l| base64::engine::general_purpose::STANDARD.decode(l).ok())
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default();
    let field = |key: &str| {
        log.lines()
            .filter(|l| l.starts_with("REPORT"))
            .flat_map(|l| l.split('\t'))
            .find_map(|f| f.trim().strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches(" ms").parse::<f64>().ok())
    };
    let duration = field("Duration:").context("no REPORT line in the invocation's log")?;
    let billed = field("Billed Duration:").unwrap_or(duration.ceil());
    Ok((duration, billed, r.header("x-amz-function-error").is_some()))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

pub fn tune(a: TuneArgs) -> anyhow::Result<ExitCode> {
    serde_json::from_str::<serde_json::Value>(&a.payload)
        .map_err(|e| anyhow::anyhow!("--payload is not JSON: {e}"))?;
    if a.memory.is_empty() || a.invocations == 0 {
        bail!("give at least one --memory size and one invocation");
    }
    if let Some(m) = a.memory.iter().find(|m| !(128..=10_240).contains(*m)) {
        bail!("--memory {m}: sizes are 128–10240 MB");
    }
    let c = Client::new(&a.endpoint);
    let config = c
        .get(&format!(
            "/2015-03-31/functions/{}/configuration",
            encode(&a.name)
        ))?
        .ok()?
        .json()?;
    let original = u32::try_from(config["MemorySize"].as_u64().unwrap_or(128)).unwrap_or(128);
    let arm = config["Architectures"][0] == "arm64";
    let isolation = c
        .get("/_nimbus/health")
        .ok()
        .and_then(|r| r.json().ok())
        .and_then(|h| h["isolation"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if !isolation.starts_with("sandbox") {
        eprintln!("note: the server runs without the sandbox ({isolation}), so CPU does not follow memory; durations will barely change (use `nimbus serve --isolation sandbox`)");
    }
    let payload = a.payload.as_bytes();
    let mut points = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for &mb in &a.memory {
            eprint!("  {mb:>5} MB: ");
            set_memory(&c, &a.name, mb)?;
            invoke(&c, &a.name, payload)?; // the cold start, not measured
            let (mut durations, mut billed, mut errors) = (Vec::new(), Vec::new(), 0);
            for _ in 0..a.invocations {
                let (d, b, failed) = invoke(&c, &a.name, payload)?;
                durations.push(d);
                billed.push(b);
                errors += u32::from(failed);
                eprint!(".");
            }
            let (median_ms, billed_ms) = (median(durations), median(billed));
            let gb_s = pricing::gb_seconds(f64::from(mb), billed_ms);
            let usd = pricing::PER_REQUEST + pricing::duration_usd(gb_s, 0.0, arm);
            eprintln!(" {median_ms:.2} ms");
            points.push(Point {
                memory: mb,
                median_ms,
                billed_ms,
                usd_per_million: usd * 1e6,
                errors,
            });
        }
        Ok(())
    })();
    set_memory(&c, &a.name, original).context("restoring the function's memory")?;
    result?;

    out!(
        "{:>8} {:>12} {:>12} {:>16} {:>7}",
        "MEMORY",
        "MEDIAN MS",
        "BILLED MS",
        "USD / 1M CALLS",
        "ERRORS"
    );
    for p in &points {
        out!(
            "{:>6}MB {:>12.2} {:>12.0} {:>16.4} {:>7}",
            p.memory,
            p.median_ms,
            p.billed_ms,
            p.usd_per_million,
            p.errors
        );
    }
    let ok: Vec<&Point> = points.iter().filter(|p| p.errors == 0).collect();
    let cheapest = ok
        .iter()
        .min_by(|x, y| x.usd_per_million.total_cmp(&y.usd_per_million));
    let fastest = ok.iter().min_by(|x, y| x.median_ms.total_cmp(&y.median_ms));
    match (cheapest, fastest) {
        (Some(c), Some(f)) => {
            out!(
                "cheapest: {} MB (${:.4} per million invocations)",
                c.memory,
                c.usd_per_million
            );
            out!("fastest:  {} MB ({:.2} ms median)", f.memory, f.median_ms);
        }
        _ => out!("every size failed: no recommendation"),
    }
    let path = a
        .chart
        .unwrap_or_else(|| PathBuf::from(format!("tune-{}.svg", a.name)));
    std::fs::write(&path, chart(&a.name, &points))
        .with_context(|| format!("writing {}", path.display()))?;
    out!("chart: {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Bars of the median duration per size, and a line of the cost per million calls.
fn chart(name: &str, points: &[Point]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 400.0, 70.0, 90.0, 40.0, 50.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max_ms = points
        .iter()
        .map(|p| p.median_ms)
        .fold(0.0, f64::max)
        .max(1e-9);
    let max_usd = points
        .iter()
        .map(|p| p.usd_per_million)
        .fold(0.0, f64::max)
        .max(1e-12);
    let slot = plot_w / points.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="22" font-size="15">nimbus tune {name}: median duration (bars) and cost per million calls (line)</text>
<line x1="{left}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{y0}" stroke="#333"/>
<text x="14" y="{top}" fill="#3367d6">{max_ms:.1} ms</text>
<text x="{xr}" y="{top}" fill="#d64533">${max_usd:.3}</text>
"##,
        y0 = top + plot_h,
        x1 = left + plot_w,
        xr = left + plot_w + 8.0,
    );
    let mut line = String::new();
    for (i, p) in points.iter().enumerate() {
        let bar_h = p.median_ms / max_ms * plot_h;
        let x = left + i as f64 * slot + slot * 0.2;
        let _ = writeln!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bar_h:.1}" fill="#3367d6" opacity="0.75"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{} MB</text>
<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#3367d6">{:.1} ms</text>"##,
            top + plot_h - bar_h,
            slot * 0.6,
            x + slot * 0.3,
            top + plot_h + 18.0,
            p.memory,
            x + slot * 0.3,
            top + plot_h - bar_h - 4.0,
            p.median_ms,
        );
        let _ = write!(
            line,
            "{:.1},{:.1} ",
            x + slot * 0.3,
            top + plot_h - p.usd_per_million / max_usd * plot_h
        );
    }
    let _ = writeln!(
        svg,
        r##"<polyline points="{line}" fill="none" stroke="#d64533" stroke-width="2"/>
</svg>"##
    );
    svg
}
