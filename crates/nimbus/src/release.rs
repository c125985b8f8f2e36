//! `nimbus release`: a canary release on an alias, beyond what Lambda itself offers (AWS
//! does this with CodeDeploy). Publishes `$LATEST` (or takes `--version`), shifts the
//! alias' weight to it step by step, watches both versions' error rates, and rolls back
//! as soon as the new version fails more often than the old one.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use crate::cli::{encode, parse_duration, Client, Endpoint};

#[derive(Args, Debug)]
pub struct ReleaseArgs {
    /// The function.
    name: String,
    /// The alias to move (it must exist and point at the current version).
    #[arg(long)]
    alias: String,
    /// Share of traffic the new version gets at first, e.g. 10%.
    #[arg(long, default_value = "10%")]
    canary: String,
    /// How long the whole shift takes, e.g. 5m, 90s.
    #[arg(long, default_value = "5m")]
    over: String,
    /// Number of weight steps before full promotion.
    #[arg(long, default_value_t = 4)]
    steps: u32,
    /// Release this published version instead of publishing $LATEST.
    #[arg(long)]
    version: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    invocations: u64,
    errors: u64,
}

impl Counts {
    fn rate(self) -> f64 {
        if self.invocations == 0 {
            0.0
        } else {
            self.errors as f64 / self.invocations as f64
        }
    }

    fn since(self, base: Counts) -> Counts {
        Counts {
            invocations: self.invocations.saturating_sub(base.invocations),
            errors: self.errors.saturating_sub(base.errors),
        }
    }
}

fn counts(c: &Client, name: &str, version: &str) -> anyhow::Result<Counts> {
    let s = c
        .get(&format!("/_nimbus/functions/{}/stats", encode(name)))?
        .ok()?
        .json()?;
    let v = &s["Versions"][version];
    Ok(Counts {
        invocations: v["Invocations"].as_u64().unwrap_or(0),
        errors: v["Errors"].as_u64().unwrap_or(0),
    })
}

fn parse_percent(s: &str) -> anyhow::Result<f64> {
    let n: f64 = s
        .trim_end_matches('%')
        .parse()
        .with_context(|| format!("--canary {s}: expected e.g. 10%"))?;
    if !(0.0..100.0).contains(&n) {
        bail!("--canary must be at least 0% and below 100%");
    }
    Ok(n / 100.0)
}

/// The canary weights: from the first share up towards 100%, `steps` of them.
fn weights(first: f64, steps: u32) -> Vec<f64> {
    let steps = steps.max(1);
    (0..steps)
        .map(|i| first + (1.0 - first) * f64::from(i) / f64::from(steps))
        .collect()
}

pub fn release(a: ReleaseArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&a.endpoint);
    let first = parse_percent(&a.canary)?;
    let over = parse_duration(&a.over)?;
    let fname = encode(&a.name);
    let alias_path = format!("/2015-03-31/functions/{fname}/aliases/{}", encode(&a.alias));
    let alias = c.get(&alias_path)?.ok()?.json()?;
    let old = alias["FunctionVersion"].as_str().unwrap_or("").to_string();
    let new = match &a.version {
        Some(v) => v.clone(),
        None => {
            let json_hdr = [("content-type", "application/json")];
            let v = c
                .send(
                    "POST",
                    &format!("/2015-03-31/functions/{fname}/versions"),
                    &json_hdr,
                    b"{}".to_vec(),
                )?
                .ok()?
                .json()?;
            v["Version"].as_str().unwrap_or("").to_string()
        }
    };
    if new == old {
        out!(
            "{}:{} already runs version {new}: nothing to release",
            a.name,
            a.alias
        );
        return Ok(ExitCode::SUCCESS);
    }
    if old == "$LATEST" {
        bail!("alias {} points at $LATEST, which cannot share traffic: point it at a published version first", a.alias);
    }
    let plan = weights(first, a.steps);
    let step_time = over / u32::try_from(plan.len()).unwrap_or(1);
    out!(
        "releasing {}:{}  version {old} → {new}  ({} steps over {}s, starting at {:.0}%)",
        a.name,
        a.alias,
        plan.len(),
        over.as_secs(),
        first * 100.0
    );
    let base_old = counts(&c, &a.name, &old)?;
    let base_new = counts(&c, &a.name, &new)?;
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let set_weight = |w: Option<f64>, primary: &str| -> anyhow::Result<()> {
        let weights = match w {
            Some(w) => json!({ new.as_str(): w }),
            None => json!({}),
        };
        let body = json!({ "FunctionVersion": primary, "RoutingConfig": { "AdditionalVersionWeights": weights } });
        c.send(
            "PUT",
            &alias_path,
            &[("content-type", "application/json")],
            serde_json::to_vec(&body)?,
        )?
        .ok()?;
        Ok(())
    };
    for (i, w) in plan.iter().enumerate() {
        set_weight(Some(*w), &old)?;
        let step_end = Instant::now() + step_time;
        loop {
            let o = counts(&c, &a.name, &old)?.since(base_old);
            let n = counts(&c, &a.name, &new)?.since(base_new);
            let line = format!(
                "[step {}/{}] {:5.1}% → v{new}   v{new}: {} inv, {} err ({:.1}%)   v{old}: {} inv, {} err ({:.1}%)   {}s elapsed",
                i + 1,
                plan.len(),
                w * 100.0,
                n.invocations,
                n.errors,
                n.rate() * 100.0,
                o.invocations,
                o.errors,
                o.rate() * 100.0,
                started.elapsed().as_secs()
            );
            if tty {
                eprint!("\r{line}\x1b[K");
                let _ = std::io::stderr().flush();
            }
            if n.errors > 0 && n.rate() > o.rate() {
                set_weight(None, &old)?;
                if tty {
                    eprintln!();
                }
                out!("{line}");
                out!(
                    "rolled back: version {new} failed {:.1}% of {} invocations, version {old} {:.1}%; {} stays on {old}",
                    n.rate() * 100.0,
                    n.invocations,
                    o.rate() * 100.0,
                    a.alias
                );
                return Ok(ExitCode::from(1));
            }
            if Instant::now() >= step_end {
                if tty {
                    eprintln!();
                } else {
                    out!("{line}");
                }
                break;
            }
            std::thread::sleep(
                Duration::from_millis(250).min(step_end.saturating_duration_since(Instant::now())),
            );
        }
    }
    set_weight(None, &new)?;
    let n = counts(&c, &a.name, &new)?.since(base_new);
    out!(
        "promoted: {}:{} → version {new} ({} invocations, {} errors during the release)",
        a.name,
        a.alias,
        n.invocations,
        n.errors
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_climb_from_the_canary() {
        assert_eq!(weights(0.1, 1), vec![0.1]);
        let w = weights(0.2, 4);
        assert_eq!(w.len(), 4);
        assert!((w[0] - 0.2).abs() < 1e-9 && (w[3] - 0.8).abs() < 1e-9);
        assert!(parse_percent("100%").is_err());
        assert!((parse_percent("25%").unwrap() - 0.25).abs() < 1e-9);
    }

    #[test]
    fn rates() {
        let c = Counts {
            invocations: 10,
            errors: 3,
        };
        assert!((c.rate() - 0.3).abs() < 1e-9);
        assert_eq!(Counts::default().rate(), 0.0);
        let d = c.since(Counts {
            invocations: 4,
            errors: 1,
        });
        assert_eq!((d.invocations, d.errors), (6, 2));
    }
}
