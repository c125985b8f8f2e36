//! Concurrency accounting (lambda-interfaces.md §1.4, §5): an account-wide limit shared by
//! every function, reserved concurrency that both caps and guarantees a function's share,
//! and the unreserved pool the other functions share. Lock-free: a slot is taken with a
//! compare-and-swap and given back when its guard drops.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

/// Why an invocation was refused, as Lambda's `TooManyRequestsException.Reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// The account's unreserved pool is full.
    ConcurrentInvocationLimitExceeded,
    /// The function's reserved concurrency is used up (or is 0).
    ReservedFunctionConcurrentInvocationLimitExceeded,
    /// The function started new environments faster than its burst scaling rate allows.
    FunctionScalingRateExceeded,
}

impl Throttle {
    pub fn reason(self) -> &'static str {
        match self {
            Throttle::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
            Throttle::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
            // AWS reports scaling throttles with its invocation-rate reason.
            Throttle::FunctionScalingRateExceeded => "FunctionInvocationRateLimitExceeded",
        }
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveError {
    pub min_unreserved: u32,
}

/// A pool of slots: one function's reservation, or the account's unreserved share.
#[derive(Debug, Default)]
struct Pool {
    limit: u32,
    in_flight: AtomicU32,
    /// Signalled when a slot is given back, for callers that would rather wait than be
    /// throttled (asynchronous delivery).
    freed: tokio::sync::Notify,
}

/// The account's concurrency.
#[derive(Debug)]
pub struct Concurrency {
    limit: u32,
    min_unreserved: u32,
    /// The unreserved pool; its `limit` is unused (it moves with the reservations).
    unreserved: Arc<Pool>,
    reserved: DashMap<String, Arc<Pool>>,
    /// Sum of the reservations, kept so the invoke path need not add them up.
    reserved_sum: AtomicU32,
}

/// A taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot {
    counter: Arc<dyn SlotCounter>,
}

trait SlotCounter: Send + Sync + std::fmt::Debug {
    fn release(&self);
}

impl SlotCounter for Pool {
    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counter.release();
    }
}

/// Takes one slot of `counter` if fewer than `max` are taken.
fn take(counter: &AtomicU32, max: u32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

impl Concurrency {
    /// `limit` concurrent executions for the account, of which `min_unreserved` can never
    /// be reserved.
    pub fn new(limit: u32, min_unreserved: u32) -> Self {
        Concurrency {
            limit,
            min_unreserved: min_unreserved.min(limit),
            unreserved: Arc::new(Pool::default()),
            reserved: DashMap::new(),
            reserved_sum: AtomicU32::new(0),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    fn reserved_total(&self) -> u32 {
        self.reserved.iter().map(|r| r.limit).sum()
    }

    /// `UnreservedConcurrentExecutions`.
    pub fn unreserved(&self) -> u32 {
        self.limit
            .saturating_sub(self.reserved_sum.load(Ordering::Acquire))
    }

    pub fn reservation(&self, function: &str) -> Option<u32> {
        self.reserved.get(function).map(|r| r.limit)
    }

    /// Sets a function's reserved concurrency, keeping `min_unreserved` free.
    pub fn reserve(&self, function: &str, limit: u32) -> Result<(), ReserveError> {
        let others: u32 = self
            .reserved
            .iter()
            .filter(|r| r.key() != function)
            .map(|r| r.limit)
            .sum();
        if self.limit.saturating_sub(others).saturating_sub(limit) < self.min_unreserved
            || others + limit > self.limit
        {
            return Err(ReserveError {
                min_unreserved: self.min_unreserved,
            });
        }
        // Keep the in-flight count of a changed reservation: its invocations still run.
        let in_flight = self
            .reserved
            .get(function)
            .map_or(0, |r| r.in_flight.load(Ordering::Acquire));
        let entry = Arc::new(Pool {
            limit,
            in_flight: AtomicU32::new(in_flight),
            freed: Default::default(),
        });
        self.reserved.insert(function.to_string(), entry);
        self.reserved_sum
            .store(self.reserved_total(), Ordering::Release);
        Ok(())
    }

    /// Removes a reservation: the function goes back to the unreserved pool.
    pub fn unreserve(&self, function: &str) {
        self.reserved.remove(function);
        self.reserved_sum
            .store(self.reserved_total(), Ordering::Release);
    }

    /// Takes a slot for one invocation of `function`, or says why not.
    pub fn acquire(&self, function: &str) -> Result<Slot, Throttle> {
        if let Some(r) = self.reserved.get(function).map(|r| r.clone()) {
            return if take(&r.in_flight, r.limit) {
                Ok(Slot { counter: r })
            } else {
                Err(Throttle::ReservedFunctionConcurrentInvocationLimitExceeded)
            };
        }
        if take(&self.unreserved.in_flight, self.unreserved()) {
            Ok(Slot {
                counter: self.unreserved.clone(),
            })
        } else {
            Err(Throttle::ConcurrentInvocationLimitExceeded)
        }
    }

    /// Resolves when a slot of the pool `function` draws from is given back (it may be
    /// taken again by the time the caller tries).
    pub async fn freed(&self, function: &str) {
        let pool = match self.reserved.get(function) {
            Some(r) => r.clone(),
            None => self.unreserved.clone(),
        };
        pool.freed.notified().await;
    }

    /// Executions running now (`ConcurrentExecutions`).
    pub fn in_flight(&self) -> u32 {
        self.unreserved.in_flight.load(Ordering::Acquire)
            + self
                .reserved
                .iter()
                .map(|r| r.in_flight.load(Ordering::Acquire))
                .sum::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_caps_and_unreserved_pool() {
        let c = Concurrency::new(10, 2);
        c.reserve("a", 2).unwrap();
        assert_eq!(c.unreserved(), 8);
        let a1 = c.acquire("a").unwrap();
        let _a2 = c.acquire("a").unwrap();
        assert_eq!(
            c.acquire("a").unwrap_err(),
            Throttle::ReservedFunctionConcurrentInvocationLimitExceeded
        );
        drop(a1);
        let _a3 = c.acquire("a").unwrap();
        let others: Vec<Slot> = (0..8).map(|_| c.acquire("b").unwrap()).collect();
        assert_eq!(
            c.acquire("c").unwrap_err(),
            Throttle::ConcurrentInvocationLimitExceeded
        );
        assert_eq!(c.in_flight(), 10);
        drop(others);
        assert_eq!(c.in_flight(), 2);
    }

    #[test]
    fn reservations_keep_the_minimum_unreserved() {
        let c = Concurrency::new(10, 2);
        assert!(c.reserve("a", 8).is_ok());
        assert!(c.reserve("b", 1).is_err());
        assert!(c.reserve("a", 9).is_err());
        c.reserve("z", 0).unwrap();
        assert_eq!(
            c.acquire("z").unwrap_err(),
            Throttle::ReservedFunctionConcurrentInvocationLimitExceeded
        );
        c.unreserve("a");
        assert_eq!(c.unreserved(), 10);
    }

    #[test]
    fn contention_never_exceeds_the_cap() {
        let c = Arc::new(Concurrency::new(1000, 100));
        c.reserve("f", 5).unwrap();
        let max = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, max) = (c.clone(), max.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Ok(slot) = c.acquire("f") {
                            max.fetch_max(
                                c.reserved
                                    .get("f")
                                    .unwrap()
                                    .in_flight
                                    .load(Ordering::Acquire),
                                Ordering::AcqRel,
                            );
                            drop(slot);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(max.load(Ordering::Acquire) <= 5);
        assert_eq!(c.in_flight(), 0);
    }
}

#[cfg(test)]
mod wake_tests {
    use super::*;

    #[tokio::test]
    async fn a_freed_slot_wakes_a_waiter() {
        let c = Arc::new(Concurrency::new(10, 2));
        c.reserve("f", 1).unwrap();
        let slot = c.acquire("f").unwrap();
        let c2 = c.clone();
        let waiter = tokio::spawn(async move {
            c2.freed("f").await;
            c2.acquire("f").is_ok()
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(slot);
        let ok = tokio::time::timeout(std::time::Duration::from_millis(500), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(ok);
    }
}

/// Lambda's burst scaling limit: each function may start at most `per_10s` new environments
/// every 10 seconds, refilled continuously (no banking beyond one window). Only cold starts
/// draw on it, so warm invocations never touch its lock.
#[derive(Debug)]
pub struct ScaleLimiter {
    per_10s: f64,
    buckets: DashMap<String, std::sync::Mutex<(f64, std::time::Instant)>>,
}

impl ScaleLimiter {
    pub fn new(per_10s: u32) -> Self {
        ScaleLimiter {
            per_10s: f64::from(per_10s.max(1)),
            buckets: DashMap::new(),
        }
    }

    /// Takes one environment start for `function`, or says it is scaling too fast.
    pub fn take(&self, function: &str) -> Result<(), Throttle> {
        let now = std::time::Instant::now();
        let bucket = match self.buckets.get(function) {
            Some(b) => b,
            None => {
                self.buckets
                    .entry(function.to_string())
                    .or_insert_with(|| std::sync::Mutex::new((self.per_10s, now)));
                self.buckets
                    .get(function)
                    .ok_or(Throttle::FunctionScalingRateExceeded)?
            }
        };
        let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
        let refill = now.duration_since(b.1).as_secs_f64() * self.per_10s / 10.0;
        b.0 = (b.0 + refill).min(self.per_10s);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            Ok(())
        } else {
            Err(Throttle::FunctionScalingRateExceeded)
        }
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    #[test]
    fn a_burst_is_capped_then_refills() {
        let s = ScaleLimiter::new(100);
        for _ in 0..100 {
            s.take("f").unwrap();
        }
        assert_eq!(s.take("f"), Err(Throttle::FunctionScalingRateExceeded));
        s.take("g").expect("each function has its own budget");
        std::thread::sleep(std::time::Duration::from_millis(250));
        s.take("f")
            .expect("a start refills every 100 ms at 100 per 10 s");
    }
}
