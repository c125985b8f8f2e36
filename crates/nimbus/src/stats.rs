//! `nimbus stats [NAME]`: a live summary of what runs, from `/_nimbus/stats`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use crate::cli::{Client, Endpoint};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Only this function.
    name: Option<String>,
    /// Print once and exit (the default when stdout is not a terminal).
    #[arg(long)]
    once: bool,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2)]
    interval: u64,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub fn stats(a: StatsArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&a.endpoint);
    let live = !a.once && std::io::stdout().is_terminal();
    let mut last: HashMap<(String, String), (u64, Instant)> = HashMap::new();
    loop {
        let v = c.get("/_nimbus/stats")?.ok()?.json()?;
        let rows: Vec<Value> = v["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| a.name.as_deref().is_none_or(|n| r["function"] == n))
            .collect();
        if live {
            // Clear the screen and go home.
            print!("\x1b[2J\x1b[H");
        }
        out!(
            "{:<32} {:<9} {:>11} {:>7} {:>9} {:>6} {:>7} {:>9} {:>8}",
            "FUNCTION",
            "VERSION",
            "INVOCATIONS",
            "ERRORS",
            "THROTTLES",
            "COLD",
            "RUNNING",
            "AVG MS",
            "RATE/S"
        );
        for r in &rows {
            let f = r["function"].as_str().unwrap_or("").to_string();
            let ver = r["version"].as_str().unwrap_or("").to_string();
            let n = r["invocations"].as_u64().unwrap_or(0);
            let avg = r["duration_ms_total"].as_f64().unwrap_or(0.0) / n.max(1) as f64;
            let now = Instant::now();
            let rate =
                last.get(&(f.clone(), ver.clone()))
                    .map_or(String::from("-"), |(prev, at)| {
                        format!(
                            "{:.1}",
                            n.saturating_sub(*prev) as f64
                                / now.duration_since(*at).as_secs_f64().max(1e-3)
                        )
                    });
            last.insert((f.clone(), ver.clone()), (n, now));
            out!(
                "{:<32} {:<9} {:>11} {:>7} {:>9} {:>6} {:>7} {:>9.2} {:>8}",
                f,
                ver,
                n,
                r["errors"],
                r["throttles"],
                r["cold_starts"],
                r["concurrent"],
                avg,
                rate
            );
        }
        if rows.is_empty() {
            out!("(no invocations yet)");
        }
        if !live {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(a.interval.max(1)));
    }
}
