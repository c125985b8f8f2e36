//! The durable queue of asynchronous invocations, and the records that travel with it:
//! EventBridge rules, schedule ticks and messages for targets Nimbus only stores (dead-letter
//! queues and SQS/SNS/S3 destinations).
//!
//! The queue works like SQS with a visibility timeout: a leased event becomes due again when its
//! lease runs out, and a restart releases every lease, so an event accepted once is delivered at
//! least once. Everything that follows from settling an event (a destination's invocation, a
//! dead letter) is written in the same transaction that removes it.

use nimbus_model::RuleRecord;

use crate::Result;

/// An asynchronous invocation to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub function: String,
    /// The qualifier the caller addressed (`None` for the unqualified function).
    pub qualifier: Option<String>,
    pub request_id: String,
    pub payload: Vec<u8>,
    /// Decoded `ClientContext` JSON.
    pub client_context: Option<String>,
    /// When it was accepted, ms since the epoch (the event's age counts from here).
    pub enqueued_ms: i64,
    /// When it may first be delivered.
    pub due_ms: i64,
}

/// A leased event, with what its earlier attempts left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub id: i64,
    pub event: NewEvent,
    /// Invocations that reached the function so far.
    pub attempts: u32,
    /// Of those, the ones that ended in a function error.
    pub function_errors: u32,
    /// The last attempt's outcome as JSON (for the destination record), if any.
    pub last_outcome: Option<String>,
}

/// A message for a target Nimbus keeps rather than delivers (SQS, SNS, S3 ARNs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub target_arn: String,
    pub body: Vec<u8>,
    /// Message attributes as a JSON object (`RequestID`, `ErrorCode`, `ErrorMessage` for DLQs).
    pub attributes: String,
    pub created_ms: i64,
}

/// What became of a leased event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// It is finished: remove it, queue what follows from it and keep its messages.
    Done {
        id: i64,
        follow_ups: Vec<NewEvent>,
        messages: Vec<StoredMessage>,
    },
    /// Try again at `due_ms`.
    Retry {
        id: i64,
        due_ms: i64,
        attempts: u32,
        function_errors: u32,
        last_outcome: Option<String>,
    },
}

/// A schedule tick recorded with the events it produced, so that a tick fires once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub rule_key: String,
    pub tick_ms: i64,
}

/// How much waits in the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub events: u64,
    pub leased: u64,
    /// When the oldest waiting event was accepted.
    pub oldest_enqueued_ms: Option<i64>,
}

/// The durable queue.
pub trait Queue: Send + Sync + 'static {
    /// Stores events (one transaction, made durable before returning), optionally recording
    /// the schedule tick they came from.
    fn enqueue(&self, events: &[NewEvent], tick: Option<&Tick>) -> Result<()>;
    /// Leases up to `limit` events due at `now_ms`, the oldest first, at most `per_function`
    /// of any one function and none of the functions in `skip`; they are hidden until
    /// `visible_ms`. (A lease need not be durable: a restart releases them all.)
    fn lease(
        &self,
        now_ms: i64,
        visible_ms: i64,
        limit: usize,
        per_function: usize,
        skip: &[String],
    ) -> Result<Vec<QueuedEvent>>;
    /// Settles leased events (one transaction).
    fn settle(&self, settlements: &[Settlement]) -> Result<()>;
    /// When the next unleased event falls due.
    fn next_due(&self) -> Result<Option<i64>>;
    /// Makes every leased event due now (at start: the leaseholder is gone). Returns how many.
    fn release_leases(&self, now_ms: i64) -> Result<u64>;
    fn depth(&self) -> Result<QueueDepth>;
    /// The last tick fired per schedule.
    fn ticks(&self) -> Result<Vec<Tick>>;
    fn forget_tick(&self, rule_key: &str) -> Result<()>;
    /// Stored messages, oldest first, optionally for one target.
    fn messages(&self, target_arn: Option<&str>, limit: usize) -> Result<Vec<StoredMessage>>;
}

/// EventBridge rules with their targets.
pub trait RuleStore: Send + Sync + 'static {
    fn load_rules(&self) -> Result<Vec<RuleRecord>>;
    /// Inserts or replaces a rule (keyed by bus and name).
    fn put_rule(&self, rule: &RuleRecord) -> Result<()>;
    /// Deletes a rule and its schedule tick.
    fn delete_rule(&self, bus: &str, name: &str) -> Result<()>;
}
