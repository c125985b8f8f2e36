//! Asynchronous invocation: `Event` invokes, destinations and EventBridge targets all become
//! rows of the durable [`Queue`] before anyone is told "accepted", and [`delivery`] workers
//! invoke them later with Lambda's retry, event-age and destination rules.
//!
//! Writes go through one committer thread that folds everything waiting into one
//! transaction (group commit): an fsync per batch, not per event, is what lets thousands of
//! events a second be accepted durably.

mod delivery;
pub(crate) mod record;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nimbus_store::{NewEvent, Queue, QueueDepth, Settlement, StoreError, Tick};
use tokio::sync::{oneshot, Notify};

pub use delivery::run as run_delivery;

/// How the retry schedule is paced.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The wait before the first retry of a function error (AWS: about a minute); the second
    /// waits twice as long. Throttle backoff is capped at five times this (AWS: 5 minutes).
    pub first_retry: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_retry: Duration::from_secs(60),
        }
    }
}

enum Work {
    Enqueue(Vec<NewEvent>, Option<Tick>),
    Settle(Settlement),
}

struct Submission {
    work: Work,
    done: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

/// Counters since start, for stats and metrics.
#[derive(Debug, Default)]
pub struct AsyncCounters {
    pub accepted: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub throttled: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub dropped: AtomicU64,
}

/// The front of the durable queue.
pub struct AsyncInvoker {
    queue: Arc<dyn Queue>,
    submit: std::sync::mpsc::Sender<Submission>,
    wake: Arc<Notify>,
    policy: RetryPolicy,
    pub counters: AsyncCounters,
}

/// Most events folded into one transaction.
const MAX_BATCH: usize = 4096;

impl AsyncInvoker {
    /// Starts the committer thread. Leases left by a previous run are released: whoever held
    /// them is gone, so their events are due again (at-least-once).
    pub fn start(queue: Arc<dyn Queue>, policy: RetryPolicy) -> Result<Self, StoreError> {
        let released = queue.release_leases(nimbus_model::time_fmt::now_millis())?;
        if released > 0 {
            tracing::info!(
                events = released,
                "re-queued asynchronous events that were in flight when Nimbus stopped"
            );
        }
        let (submit, rx) = std::sync::mpsc::channel::<Submission>();
        let wake = Arc::new(Notify::new());
        let q = queue.clone();
        let w = wake.clone();
        std::thread::Builder::new()
            .name("nimbus-queue".into())
            .spawn(move || commit_loop(q.as_ref(), &rx, &w))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(AsyncInvoker {
            queue,
            submit,
            wake,
            policy,
            counters: AsyncCounters::default(),
        })
    }

    /// Queues events durably; returns once they are on disk.
    pub async fn enqueue(
        &self,
        events: Vec<NewEvent>,
        tick: Option<Tick>,
    ) -> Result<(), Arc<StoreError>> {
        let n = events.len() as u64;
        self.send(Work::Enqueue(events, tick)).await?;
        self.counters.accepted.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    async fn settle(&self, s: Settlement) -> Result<(), Arc<StoreError>> {
        self.send(Work::Settle(s)).await
    }

    async fn send(&self, work: Work) -> Result<(), Arc<StoreError>> {
        let (done, rx) = oneshot::channel();
        let closed = || {
            Arc::new(StoreError::Unavailable(
                "the queue committer has stopped".into(),
            ))
        };
        self.submit
            .send(Submission { work, done })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    pub fn depth(&self) -> Result<QueueDepth, StoreError> {
        self.queue.depth()
    }

    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }
}

/// The committer: takes everything waiting, writes it in as few transactions as it can, and
/// answers every submitter with the outcome of the transaction that carried its work.
fn commit_loop(queue: &dyn Queue, rx: &std::sync::mpsc::Receiver<Submission>, wake: &Notify) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut size = 1;
        while size < MAX_BATCH {
            match rx.try_recv() {
                Ok(s) => {
                    size += match &s.work {
                        Work::Enqueue(e, _) => e.len().max(1),
                        Work::Settle(_) => 1,
                    };
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        let mut events = Vec::new();
        let mut settlements = Vec::new();
        let mut plain = Vec::new();
        let mut settlers = Vec::new();
        for s in batch {
            match s.work {
                // A tick is recorded in the same transaction as its own events.
                Work::Enqueue(e, Some(tick)) => {
                    let r = queue.enqueue(&e, Some(&tick)).map_err(Arc::new);
                    let _ = s.done.send(r);
                }
                Work::Enqueue(mut e, None) => {
                    events.append(&mut e);
                    plain.push(s.done);
                }
                Work::Settle(st) => {
                    settlements.push(st);
                    settlers.push(s.done);
                }
            }
        }
        if !plain.is_empty() {
            let r = queue.enqueue(&events, None).map_err(Arc::new);
            for d in plain {
                let _ = d.send(r.clone());
            }
        }
        if !settlers.is_empty() {
            let r = queue.settle(&settlements).map_err(Arc::new);
            if let Err(e) = &r {
                tracing::error!(error = %e, "could not record delivered events; they will be delivered again");
            }
            for d in settlers {
                let _ = d.send(r.clone());
            }
        }
        wake.notify_one();
    }
}
