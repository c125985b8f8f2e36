//! What the invoker counts: per function version, the figures Prometheus scrapes and
//! `nimbus stats` shows (invocations, errors, throttles, cold starts, executions in
//! flight, a duration histogram, init time), and the usage the bill is made of (requests,
//! billed milliseconds, init, egress), summed per configuration generation and drained
//! into the store every few seconds. All atomics: nothing here takes a lock on the invoke
//! path beyond the map lookups the pools already do.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use nimbus_model::FunctionRecord;
use nimbus_store::UsageRow;

use crate::InvokeResponse;

/// Upper bounds of the duration histogram, in seconds (Prometheus `le`).
pub const DURATION_BUCKETS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0,
];

/// Counters of one function version since the server started.
#[derive(Debug, Default)]
pub struct VersionMetrics {
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub throttles: AtomicU64,
    pub cold_starts: AtomicU64,
    pub in_flight: AtomicI64,
    pub duration_us: AtomicU64,
    pub init_us: AtomicU64,
    /// Samples per bucket of [`DURATION_BUCKETS`]: each in the first whose bound it does
    /// not exceed (one atomic add per invocation; [`Self::cumulative`] sums for scrapes).
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    /// Invocations through each alias, by name.
    pub via_alias: DashMap<String, AtomicU64>,
}

impl VersionMetrics {
    /// Prometheus' cumulative bucket counts (samples at or below each bound).
    pub fn cumulative(&self) -> [u64; DURATION_BUCKETS.len()] {
        let mut out = [0; DURATION_BUCKETS.len()];
        let mut sum = 0;
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            sum += b.load(Ordering::Relaxed);
            *o = sum;
        }
        out
    }
}

/// Usage of one version under one configuration, not yet written to the store.
#[derive(Debug)]
struct Usage {
    architecture: String,
    memory_mb: i64,
    ephemeral_mb: i64,
    requests: AtomicU64,
    errors: AtomicU64,
    billed_ms: AtomicU64,
    init_ms: AtomicU64,
    /// Response bytes, plus what the environments' network stacks send out for it.
    egress_bytes: Arc<AtomicU64>,
}

#[derive(Hash, PartialEq, Eq, Clone, Debug)]
struct UsageKey {
    name: String,
    version: String,
    generation: u64,
}

/// All of it.
#[derive(Debug, Default)]
pub struct Metrics {
    versions: DashMap<(String, String), Arc<VersionMetrics>>,
    usage: DashMap<UsageKey, Arc<Usage>>,
}

/// Keeps a version's in-flight count up while an invocation runs.
pub struct Running(Arc<VersionMetrics>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn version(&self, f: &FunctionRecord) -> Arc<VersionMetrics> {
        let key = (f.name.clone(), f.version.clone());
        if let Some(v) = self.versions.get(&key) {
            return v.clone();
        }
        self.versions.entry(key).or_default().clone()
    }

    pub fn running(v: &Arc<VersionMetrics>) -> Running {
        v.in_flight.fetch_add(1, Ordering::Relaxed);
        Running(v.clone())
    }

    /// Records a finished invocation: its counters and its usage.
    pub fn record(
        &self,
        v: &VersionMetrics,
        f: &FunctionRecord,
        invoked_arn: &str,
        r: &InvokeResponse,
    ) {
        v.invocations.fetch_add(1, Ordering::Relaxed);
        if r.function_error {
            v.errors.fetch_add(1, Ordering::Relaxed);
        }
        v.duration_us
            .fetch_add((r.duration_ms * 1000.0) as u64, Ordering::Relaxed);
        let secs = r.duration_ms / 1000.0;
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| secs <= *b) {
            v.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(init) = r.init_ms {
            v.cold_starts.fetch_add(1, Ordering::Relaxed);
            v.init_us
                .fetch_add((init * 1000.0) as u64, Ordering::Relaxed);
        }
        if let Some(alias) = alias_of(invoked_arn) {
            match v.via_alias.get(alias) {
                Some(c) => {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    v.via_alias
                        .entry(alias.to_string())
                        .or_default()
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }

        let u = self.usage(f);
        let init = r.init_ms.unwrap_or(0.0);
        u.requests.fetch_add(1, Ordering::Relaxed);
        if r.function_error {
            u.errors.fetch_add(1, Ordering::Relaxed);
        }
        // Lambda bills duration plus init (since August 2025), rounded up to 1 ms.
        u.billed_ms
            .fetch_add(billed_ms(r.duration_ms + init), Ordering::Relaxed);
        u.init_ms.fetch_add(init.ceil() as u64, Ordering::Relaxed);
        u.egress_bytes
            .fetch_add(r.body.len() as u64, Ordering::Relaxed);
    }

    /// The usage of `f` under its current configuration.
    fn usage(&self, f: &FunctionRecord) -> Arc<Usage> {
        let key = UsageKey {
            name: f.name.clone(),
            version: f.version.clone(),
            generation: f.generation,
        };
        match self.usage.get(&key) {
            Some(u) => u.clone(),
            None => self
                .usage
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(Usage {
                        architecture: f
                            .config
                            .architectures
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "x86_64".into()),
                        memory_mb: i64::from(f.config.memory_mb),
                        ephemeral_mb: i64::from(f.config.ephemeral_mb),
                        requests: AtomicU64::new(0),
                        errors: AtomicU64::new(0),
                        billed_ms: AtomicU64::new(0),
                        init_ms: AtomicU64::new(0),
                        egress_bytes: Arc::default(),
                    })
                })
                .clone(),
        }
    }

    /// The counter an environment of `f` adds the bytes it sends to the network to.
    pub fn egress_meter(&self, f: &FunctionRecord) -> Arc<AtomicU64> {
        self.usage(f).egress_bytes.clone()
    }

    /// Every version's counters.
    pub fn versions(&self) -> Vec<((String, String), Arc<VersionMetrics>)> {
        let mut out: Vec<_> = self
            .versions
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Forgets a deleted function's counters.
    pub fn forget(&self, name: &str) {
        self.versions.retain(|k, _| k.0 != name);
    }

    /// The usage recorded since the last call, as store rows stamped with `minute`.
    pub fn drain_usage(&self, minute: i64) -> Vec<UsageRow> {
        let mut rows = Vec::new();
        for e in self.usage.iter() {
            let u = e.value();
            let requests = u.requests.swap(0, Ordering::Relaxed);
            let errors = u.errors.swap(0, Ordering::Relaxed);
            let billed = u.billed_ms.swap(0, Ordering::Relaxed);
            let init = u.init_ms.swap(0, Ordering::Relaxed);
            let egress = u.egress_bytes.swap(0, Ordering::Relaxed);
            if requests == 0 && egress == 0 {
                continue;
            }
            let n = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
            rows.push(UsageRow {
                minute,
                function: e.key().name.clone(),
                version: e.key().version.clone(),
                architecture: u.architecture.clone(),
                memory_mb: u.memory_mb,
                ephemeral_mb: u.ephemeral_mb,
                requests: n(requests),
                errors: n(errors),
                billed_ms: n(billed),
                init_ms: n(init),
                egress_bytes: n(egress),
            });
        }
        rows
    }
}

/// Billed milliseconds for a duration: rounded up, at least 1.
pub fn billed_ms(duration_ms: f64) -> u64 {
    (duration_ms.ceil() as u64).max(1)
}

/// The alias an invoked ARN names, if any (`…:function:name:alias`).
fn alias_of(arn: &str) -> Option<&str> {
    let q = arn.split(":function:").nth(1)?.split_once(':')?.1;
    (q != "$LATEST" && !q.bytes().all(|b| b.is_ascii_digit())).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_told_from_versions() {
        assert_eq!(alias_of("arn:aws:lambda:r:1:function:f:live"), Some("live"));
        assert_eq!(alias_of("arn:aws:lambda:r:1:function:f:3"), None);
        assert_eq!(alias_of("arn:aws:lambda:r:1:function:f:$LATEST"), None);
        assert_eq!(alias_of("arn:aws:lambda:r:1:function:f"), None);
    }

    #[test]
    fn billing_rounds_up_to_the_millisecond() {
        assert_eq!(billed_ms(0.2), 1);
        assert_eq!(billed_ms(12.01), 13);
        assert_eq!(billed_ms(12.0), 12);
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::*;

    #[test]
    fn buckets_are_summed_for_prometheus() {
        let v = VersionMetrics::default();
        v.buckets[0].fetch_add(1, Ordering::Relaxed);
        v.buckets[2].fetch_add(2, Ordering::Relaxed);
        let c = v.cumulative();
        assert_eq!(&c[..4], &[1, 1, 3, 3]);
        assert_eq!(c[DURATION_BUCKETS.len() - 1], 3);
    }
}
