//! The delivery workers: lease due events, invoke, and settle each with Lambda's rules.
//!
//! - A function error (handler error, timeout, crash) is retried up to
//!   `MaximumRetryAttempts` times, after the policy's first delay and then twice that.
//! - A throttle goes back to the queue with a backoff that grows with the event's age
//!   (1 s doubling, capped), until `MaximumEventAgeInSeconds`.
//! - A finished event goes to its destination (and, on failure, to the function's
//!   dead-letter target) in the same transaction that removes it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use nimbus_invoker::InvokeRequest;
use nimbus_model::time_fmt::now_millis;
use nimbus_model::{EventInvokeConfig, FunctionRecord};
use nimbus_store::{NewEvent, QueuedEvent, Settlement, StoredMessage};
use tokio::sync::Semaphore;

use super::record::{invocation_record, Condition, Destination, Outcome};
use crate::AppState;

/// Deliveries in flight at once (each holds at most one environment).
const IN_FLIGHT: usize = 256;
/// How long a leased event stays hidden: longer than any invocation can take. A restart
/// releases leases at once, so this only matters if a worker is lost without one.
const VISIBILITY_MS: i64 = 16 * 60 * 1000;
/// How long a throttled delivery waits for a slot to come free before going back to the
/// queue; it keeps waiting while slots keep coming free, up to [`MAX_PATIENCE`].
const PATIENCE: Duration = Duration::from_secs(1);
const MAX_PATIENCE: Duration = Duration::from_secs(15);
/// Most events of one function leased in one round.
const PER_FUNCTION_LEASE: usize = 32;

/// Deliveries in flight per function. A function with as many as its concurrency can use
/// gets no more leased until some finish, so one function's backlog neither starves the
/// others nor turns into a storm of throttles.
#[derive(Default)]
struct InFlight(std::sync::Mutex<HashMap<String, usize>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Functions that have all the deliveries they can use.
    fn saturated(&self, concurrency: &nimbus_invoker::Concurrency) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(f, n)| {
                let limit = concurrency
                    .reservation(f)
                    .unwrap_or_else(|| concurrency.unreserved())
                    as usize;
                **n >= (2 * limit + 1).min(IN_FLIGHT)
            })
            .map(|(f, _)| f.clone())
            .collect()
    }

    fn start(&self, function: &str) {
        *self.lock().entry(function.to_string()).or_default() += 1;
    }

    fn finish(&self, function: &str) {
        let mut map = self.lock();
        if let Some(n) = map.get_mut(function) {
            *n -= 1;
            if *n == 0 {
                map.remove(function);
            }
        }
    }
}

/// Runs the workers until the process ends.
pub async fn run(state: Arc<AppState>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let in_flight = Arc::new(InFlight::default());
    loop {
        // Wait for room before leasing, so leased events never wait in memory.
        let Ok(first) = slots.clone().acquire_owned().await else {
            return;
        };
        let free = slots.available_permits() + 1;
        let now = now_millis();
        let q = state.async_invoke.queue().clone();
        let skip = in_flight.saturated(state.invoker.concurrency());
        let leased = tokio::task::spawn_blocking(move || {
            q.lease(now, now + VISIBILITY_MS, free, PER_FUNCTION_LEASE, &skip)
        })
        .await;
        let events = match leased {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not read the asynchronous queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => continue,
        };
        if events.is_empty() {
            drop(first);
            let q = state.async_invoke.queue().clone();
            let next = tokio::task::spawn_blocking(move || q.next_due())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            // Due events left unleased belong to saturated functions: a finished delivery
            // (its settlement wakes us) makes room for them.
            let now = now_millis();
            let wait = match next {
                Some(due) if due > now => (due - now).min(1000),
                _ => 1000,
            };
            tokio::select! {
                _ = state.async_invoke.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
            continue;
        }
        let mut permit = Some(first);
        for ev in events {
            let p = match permit.take() {
                Some(p) => p,
                None => match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let state = state.clone();
            let in_flight = in_flight.clone();
            in_flight.start(&ev.event.function);
            tokio::spawn(async move {
                let function = ev.event.function.clone();
                let settlement = deliver(&state, ev).await;
                in_flight.finish(&function);
                if let Err(e) = state.async_invoke.settle(settlement).await {
                    tracing::error!(error = %e, "could not settle an asynchronous event");
                }
                drop(p);
            });
        }
    }
}

/// One delivery attempt, and what it means for the event.
async fn deliver(state: &AppState, ev: QueuedEvent) -> Settlement {
    let counters = &state.async_invoke.counters;
    let e = &ev.event;
    let Ok(function) = state
        .catalog
        .resolve_for_invoke(&e.function, e.qualifier.as_deref())
    else {
        tracing::warn!(function = %e.function, request_id = %e.request_id, "dropping an asynchronous event: its function no longer exists");
        counters.dropped.fetch_add(1, Ordering::Relaxed);
        return done(ev.id, vec![], vec![]);
    };
    // Settings kept on `$LATEST`: the qualifier's async config and the reservation.
    let latest = state.catalog.get(&e.function);
    let config = latest
        .as_ref()
        .and_then(|f| {
            f.event_invoke
                .get(e.qualifier.as_deref().unwrap_or("$LATEST"))
        })
        .cloned()
        .unwrap_or_default();
    let now = now_millis();
    let deadline = e.enqueued_ms + i64::from(config.max_age_s()) * 1000;
    let last: Option<Outcome> = ev
        .last_outcome
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok());
    if now > deadline {
        return fail(
            state,
            &ev,
            &function,
            &config,
            Condition::EventAgeExceeded,
            last.as_ref(),
        );
    }
    let reserved_zero = latest.is_some_and(|f| f.reserved_concurrency == Some(0));
    if reserved_zero {
        // AWS sends such events straight to the failure targets, without retries.
        return fail(
            state,
            &ev,
            &function,
            &config,
            Condition::RetriesExhausted,
            last.as_ref(),
        );
    }

    let identity = state.catalog.identity();
    let req = InvokeRequest {
        request_id: e.request_id.clone(),
        payload: bytes::Bytes::copy_from_slice(&e.payload),
        invoked_arn: identity.arn(&e.function, e.qualifier.as_deref()),
        client_context: e.client_context.clone(),
        want_tail: false,
        stream: None,
    };
    let paths = state.catalog.code_paths(&function);
    match invoke_patiently(state, &function, paths, req).await {
        Err(throttle) => {
            counters.throttled.fetch_add(1, Ordering::Relaxed);
            let policy = state.async_invoke.policy();
            let cap = (policy.first_retry * 5).min(Duration::from_secs(300));
            let age = Duration::from_millis(u64::try_from(now - e.enqueued_ms).unwrap_or(0));
            let backoff = age.clamp(Duration::from_secs(1).min(cap), cap);
            tracing::debug!(function = %e.function, reason = throttle.reason(), ?backoff, "asynchronous delivery throttled");
            Settlement::Retry {
                id: ev.id,
                due_ms: (now + backoff.as_millis() as i64).min(deadline + 1),
                attempts: ev.attempts,
                function_errors: ev.function_errors,
                last_outcome: ev.last_outcome.clone(),
            }
        }
        Ok(out) => {
            let outcome = Outcome {
                executed_version: out.executed_version,
                function_error: out.function_error,
                response: String::from_utf8_lossy(&out.body).into_owned(),
            };
            let attempts = ev.attempts + 1;
            if !outcome.function_error {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                let (follow_ups, messages) = match &config.on_success {
                    Some(arn) => route(
                        state,
                        arn,
                        &ev,
                        attempts,
                        Condition::Success,
                        Some(&outcome),
                    ),
                    None => (vec![], vec![]),
                };
                return done(ev.id, follow_ups, messages);
            }
            let function_errors = ev.function_errors + 1;
            if function_errors > config.retries() {
                let ev = QueuedEvent {
                    attempts,
                    function_errors,
                    ..ev
                };
                return fail(
                    state,
                    &ev,
                    &function,
                    &config,
                    Condition::RetriesExhausted,
                    Some(&outcome),
                );
            }
            counters.retried.fetch_add(1, Ordering::Relaxed);
            let delay =
                state.async_invoke.policy().first_retry * (1 << (function_errors - 1).min(4));
            Settlement::Retry {
                id: ev.id,
                due_ms: now + delay.as_millis() as i64,
                attempts,
                function_errors,
                last_outcome: serde_json::to_string(&outcome).ok(),
            }
        }
    }
}

/// Invokes, and when throttled waits for a slot of the function's pool to come free
/// before giving the event back to the queue: a backlog then drains at the function's
/// concurrency instead of at the pace of backoff timers.
async fn invoke_patiently(
    state: &AppState,
    function: &Arc<FunctionRecord>,
    paths: nimbus_invoker::CodePaths,
    req: InvokeRequest,
) -> Result<nimbus_invoker::InvokeResponse, nimbus_invoker::Throttle> {
    let give_up = tokio::time::Instant::now() + MAX_PATIENCE;
    loop {
        match state
            .invoker
            .invoke(function.clone(), paths.clone(), req.clone())
            .await
        {
            Err(throttle) if tokio::time::Instant::now() < give_up => {
                let freed = state.invoker.concurrency().freed(&function.name);
                let until = (tokio::time::Instant::now() + PATIENCE).min(give_up);
                if tokio::time::timeout_at(until, freed).await.is_err() {
                    return Err(throttle);
                }
            }
            other => return other,
        }
    }
}

fn done(id: i64, follow_ups: Vec<NewEvent>, messages: Vec<StoredMessage>) -> Settlement {
    Settlement::Done {
        id,
        follow_ups,
        messages,
    }
}

/// The event failed for good: to the on-failure destination and the dead-letter target.
fn fail(
    state: &AppState,
    ev: &QueuedEvent,
    function: &FunctionRecord,
    config: &EventInvokeConfig,
    condition: Condition,
    outcome: Option<&Outcome>,
) -> Settlement {
    let counters = &state.async_invoke.counters;
    counters.failed.fetch_add(1, Ordering::Relaxed);
    tracing::info!(function = %ev.event.function, request_id = %ev.event.request_id, ?condition, attempts = ev.attempts, "asynchronous event failed");
    let (follow_ups, mut messages) = match &config.on_failure {
        Some(arn) => route(state, arn, ev, ev.attempts, condition, outcome),
        None => (vec![], vec![]),
    };
    let dlq = function
        .config
        .passthrough
        .get("DeadLetterConfig")
        .and_then(|d| d.get("TargetArn"))
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty());
    if let Some(arn) = dlq {
        counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        // The DLQ gets the original event, with the error in message attributes.
        let (code, message) = match (condition, outcome) {
            (Condition::EventAgeExceeded, _) => (200, "Event age exceeded".to_string()),
            (_, Some(o)) => (200, o.response.chars().take(1024).collect()),
            (_, None) => (429, "Function concurrency is 0".to_string()),
        };
        let attributes = serde_json::json!({
            "RequestID": ev.event.request_id,
            "ErrorCode": code,
            "ErrorMessage": message,
        });
        messages.push(StoredMessage {
            target_arn: arn.to_string(),
            body: ev.event.payload.clone(),
            attributes: attributes.to_string(),
            created_ms: now_millis(),
        });
    }
    done(ev.id, follow_ups, messages)
}

fn new_event(function: String, qualifier: Option<String>, payload: Vec<u8>) -> NewEvent {
    let now = now_millis();
    NewEvent {
        function,
        qualifier,
        request_id: uuid::Uuid::new_v4().to_string(),
        payload,
        client_context: None,
        enqueued_ms: now,
        due_ms: now,
    }
}

/// The record for a destination, as the events and messages it becomes.
fn route(
    state: &AppState,
    arn: &str,
    ev: &QueuedEvent,
    attempts: u32,
    condition: Condition,
    outcome: Option<&Outcome>,
) -> (Vec<NewEvent>, Vec<StoredMessage>) {
    let identity = state.catalog.identity();
    let function_arn = identity.qualified_arn(
        &ev.event.function,
        ev.event.qualifier.as_deref().unwrap_or("$LATEST"),
    );
    let record = invocation_record(
        &ev.event.request_id,
        &function_arn,
        condition,
        attempts,
        &ev.event.payload,
        outcome,
    );
    match Destination::parse(arn, identity) {
        Ok(Destination::Function { name, qualifier }) => (
            vec![new_event(name, qualifier, record.to_string().into_bytes())],
            vec![],
        ),
        Ok(Destination::Bus(bus)) => {
            let event = state.bus.envelope(
                "lambda",
                condition.detail_type(),
                vec![function_arn, arn.to_string()],
                record,
            );
            (state.bus.route(&bus, &event), vec![])
        }
        Ok(Destination::Stored(target)) => (
            vec![],
            vec![StoredMessage {
                target_arn: target,
                body: record.to_string().into_bytes(),
                attributes: "{}".into(),
                created_ms: now_millis(),
            }],
        ),
        Err(e) => {
            tracing::warn!(
                destination = arn,
                error = e,
                "destination is not usable; record dropped"
            );
            (vec![], vec![])
        }
    }
}
