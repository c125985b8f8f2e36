//! `nimbus cost`: the bill for what ran, from the usage Nimbus records per invocation, priced
//! with Lambda's formula ([`nimbus_model::pricing`]).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use nimbus_model::pricing::{self, InitBilling, Usage};
use serde_json::json;

use crate::cli::{parse_duration, Client, Endpoint};

#[derive(Args, Debug)]
pub struct CostArgs {
    /// How far back, e.g. 1h, 7d, 30d.
    #[arg(long, default_value = "30d")]
    since: String,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    output: String,
    /// Subtract Lambda's monthly free tier (1 M requests, 400,000 GB-s, 100 GB out).
    #[arg(long)]
    free_tier: bool,
    /// Bill init as before August 2025 (not billed for managed runtimes).
    #[arg(long)]
    legacy_init_billing: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Default)]
struct Line {
    usage: Usage,
    errors: f64,
    versions: std::collections::BTreeSet<String>,
}

pub fn cost(a: CostArgs) -> anyhow::Result<ExitCode> {
    if !matches!(a.output.as_str(), "table" | "json") {
        bail!("--output must be table or json");
    }
    let window = parse_duration(&a.since)?;
    let now_ms = nimbus_model::time_fmt::now_millis();
    let since_ms = now_ms - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let c = Client::new(&a.endpoint);
    let rows = c
        .get(&format!("/_nimbus/usage?since_ms={since_ms}"))?
        .ok()?
        .json()?;
    // One line per function and price-relevant configuration (memory, storage, architecture).
    let mut lines: BTreeMap<(String, i64, i64, String), Line> = BTreeMap::new();
    for r in rows["usage"].as_array().into_iter().flatten() {
        let n = |k: &str| r[k].as_f64().unwrap_or(0.0);
        let arch = r["architecture"].as_str().unwrap_or("x86_64").to_string();
        let key = (
            r["function"].as_str().unwrap_or("").to_string(),
            r["memory_mb"].as_i64().unwrap_or(128),
            r["ephemeral_mb"].as_i64().unwrap_or(512),
            arch.clone(),
        );
        let l = lines.entry(key).or_default();
        l.usage.requests += n("requests");
        l.usage.billed_ms += n("billed_ms");
        l.usage.init_ms += n("init_ms");
        l.usage.egress_bytes += n("egress_bytes");
        l.usage.memory_mb = n("memory_mb");
        l.usage.ephemeral_mb = n("ephemeral_mb");
        l.usage.arm64 = arch == "arm64";
        l.errors += n("errors");
        if let Some(v) = r["version"].as_str() {
            l.versions.insert(v.to_string());
        }
    }
    let rule = if a.legacy_init_billing {
        InitBilling::Legacy
    } else {
        InitBilling::Always
    };
    let mut free = if a.free_tier {
        (
            pricing::FREE_REQUESTS,
            pricing::FREE_GB_S,
            pricing::FREE_EGRESS_GB,
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    // A month is 30 days: the projection scales the window to it.
    let scale = 30.0 * 86_400.0 / window.as_secs_f64().max(1.0);
    let (mut x86_gb_s, mut arm_gb_s) = (0.0, 0.0);
    let mut out = Vec::new();
    let mut total = 0.0;
    for ((function, memory, ephemeral, arch), l) in &lines {
        let already = if l.usage.arm64 { arm_gb_s } else { x86_gb_s };
        let priced = pricing::price(&l.usage, rule, already, &mut free);
        if l.usage.arm64 {
            arm_gb_s += priced.gb_seconds;
        } else {
            x86_gb_s += priced.gb_seconds;
        }
        total += priced.total();
        out.push(json!({
            "function": function,
            "versions": l.versions,
            "architecture": arch,
            "memory_mb": memory,
            "ephemeral_mb": ephemeral,
            "requests": l.usage.requests as u64,
            "errors": l.errors as u64,
            "billed_ms": l.usage.billed_ms as u64,
            "init_ms": l.usage.init_ms as u64,
            "gb_seconds": priced.gb_seconds,
            "egress_bytes": l.usage.egress_bytes as u64,
            "request_usd": priced.request_usd,
            "duration_usd": priced.duration_usd,
            "ephemeral_usd": priced.ephemeral_usd,
            "egress_usd": priced.egress_usd,
            "cost_usd": priced.total(),
            "monthly_projection_usd": priced.total() * scale,
        }));
    }
    if a.output == "json" {
        let doc = json!({
            "since": a.since,
            "free_tier": a.free_tier,
            "init_billing": if a.legacy_init_billing { "legacy" } else { "always" },
            "functions": out,
            "total_usd": total,
            "monthly_projection_usd": total * scale,
        });
        out!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    if out.is_empty() {
        out!("no invocations in the last {}", a.since);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<32} {:>7} {:>10} {:>12} {:>12} {:>14}",
        "FUNCTION",
        "MEMORY",
        "REQUESTS",
        "GB-SECONDS",
        "COST (USD)",
        "MONTHLY (USD)"
    );
    for f in &out {
        let s = |k: &str| f[k].as_f64().unwrap_or(0.0);
        out!(
            "{:<32} {:>5}MB {:>10} {:>12.3} {:>12.6} {:>14.4}",
            f["function"].as_str().unwrap_or(""),
            f["memory_mb"],
            f["requests"],
            s("gb_seconds"),
            s("cost_usd"),
            s("monthly_projection_usd")
        );
    }
    out!(
        "{:<32} {:>7} {:>10} {:>12} {:>12.6} {:>14.4}",
        "TOTAL",
        "",
        "",
        "",
        total,
        total * scale
    );
    out!(
        "last {}; x86 ${:.10}/GB-s, arm ${:.10}/GB-s, ${:.2}/M requests{}",
        a.since,
        0.000_016_666_7,
        0.000_013_333_4,
        0.20,
        if a.free_tier {
            ", free tier applied"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
