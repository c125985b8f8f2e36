//! Fires scheduled rules. Each tick is written to the queue in the same transaction as the
//! invocations it produces, so a tick fires once even across crashes; after a restart,
//! ticks missed by less than [`GRACE_MS`] still fire, older ones are skipped (as a stopped
//! EventBridge would not have sent them either).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nimbus_model::time_fmt::now_millis;
use nimbus_store::Tick;
use serde_json::json;

use crate::AppState;

/// How late a tick may still fire.
pub const GRACE_MS: i64 = 60_000;

/// Runs the scheduler until the process ends.
pub async fn run(state: Arc<AppState>) {
    let bus = &state.bus;
    let mut last: HashMap<String, i64> = match state.async_invoke.queue().ticks() {
        Ok(t) => t.into_iter().map(|t| (t.rule_key, t.tick_ms)).collect(),
        Err(e) => {
            tracing::error!(error = %e, "could not read schedule ticks; schedules start afresh");
            HashMap::new()
        }
    };
    loop {
        let now = now_millis();
        let mut soonest: Option<i64> = None;
        let mut fires = std::collections::BTreeMap::new();
        for rule in bus.scheduled() {
            let Some(schedule) = &rule.schedule else {
                continue;
            };
            let key = rule.record.key();
            let anchor = rule.record.anchor_ms;
            let after = last
                .get(&key)
                .copied()
                .unwrap_or(anchor)
                .max(anchor - 1)
                .max(now - GRACE_MS);
            let Some(next) = schedule.next_after(anchor, after) else {
                continue;
            };
            if next <= now {
                let time = time::OffsetDateTime::from_unix_timestamp(next / 1000)
                    .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
                let event = bus.envelope_at(
                    "aws.events",
                    "Scheduled Event",
                    vec![bus.rule_arn(&rule.record.bus, &rule.record.name)],
                    json!({}),
                    time,
                );
                let invocations = bus.deliveries(&rule, &event);
                let tick = Tick {
                    rule_key: key.clone(),
                    tick_ms: next,
                };
                match state.async_invoke.enqueue(invocations, Some(tick)).await {
                    Ok(()) => {
                        tracing::debug!(rule = %key, tick = next, "schedule fired");
                        last.insert(key.clone(), next);
                    }
                    Err(e) => {
                        tracing::error!(rule = %key, error = %e, "could not queue a scheduled event; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                soonest = Some(now);
                continue;
            }
            fires.insert(key, next);
            soonest = Some(soonest.map_or(next, |s| s.min(next)));
        }
        *bus.next_fires.write().unwrap_or_else(|e| e.into_inner()) = fires;
        let wait = soonest.map_or(60_000, |s| (s - now_millis()).clamp(0, 60_000));
        tokio::select! {
            _ = bus.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
        }
    }
}
