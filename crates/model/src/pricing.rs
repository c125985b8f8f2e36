//! Lambda's price list (us-east-1, on-demand) and the formula that turns usage into a bill.
//! Pure arithmetic, checked against hand-computed examples below.

/// Dollars per request ($0.20 per million).
pub const PER_REQUEST: f64 = 0.20 / 1_000_000.0;
/// Ephemeral storage above 512 MB, per GB-second.
pub const EPHEMERAL_PER_GB_S: f64 = 0.000_000_030_9;
/// Data out to the internet, per GB after the free 100 GB a month (EC2 rates).
pub const EGRESS_PER_GB: f64 = 0.09;
/// The monthly free tier: requests, GB-seconds, egress GB.
pub const FREE_REQUESTS: f64 = 1_000_000.0;
pub const FREE_GB_S: f64 = 400_000.0;
pub const FREE_EGRESS_GB: f64 = 100.0;

/// Duration price tiers per architecture: `(GB-seconds in the tier, $ per GB-second)`; the
/// last tier is unbounded.
const X86_TIERS: [(f64, f64); 3] = [
    (6.0e9, 0.000_016_666_7),
    (9.0e9, 0.000_015),
    (f64::INFINITY, 0.000_013_333_4),
];
const ARM_TIERS: [(f64, f64); 3] = [
    (7.5e9, 0.000_013_333_4),
    (11.25e9, 0.000_012_000_1),
    (f64::INFINITY, 0.000_010_666_7),
];

/// How the init phase is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitBilling {
    /// Since August 2025: init is billed like duration for every function.
    Always,
    /// The rule before: init was free for managed runtimes unless it ran past 10 s — which
    /// in Nimbus is an init timeout (the invocation fails), so init is simply not billed.
    Legacy,
}

/// Usage of one configuration (the inputs of the formula).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub requests: f64,
    /// Billed milliseconds, init included (Lambda's REPORT `Billed Duration`).
    pub billed_ms: f64,
    /// Of those, init milliseconds.
    pub init_ms: f64,
    pub memory_mb: f64,
    pub ephemeral_mb: f64,
    pub egress_bytes: f64,
    pub arm64: bool,
}

/// A priced bill line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub gb_seconds: f64,
    pub request_usd: f64,
    pub duration_usd: f64,
    pub ephemeral_usd: f64,
    pub egress_usd: f64,
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.request_usd + self.duration_usd + self.ephemeral_usd + self.egress_usd
    }
}

/// GB-seconds of `billed_ms` at `memory_mb`.
pub fn gb_seconds(memory_mb: f64, billed_ms: f64) -> f64 {
    memory_mb / 1024.0 * billed_ms / 1000.0
}

/// Dollars for `gb_s` GB-seconds of duration, tiers applied from the first (`already` GB-s
/// of the same architecture were billed before in the period).
pub fn duration_usd(gb_s: f64, already: f64, arm64: bool) -> f64 {
    let tiers = if arm64 { &ARM_TIERS } else { &X86_TIERS };
    let (mut left, mut floor, mut usd) = (gb_s, 0.0, 0.0);
    let mut start = already;
    for (size, price) in tiers {
        let ceiling = floor + size;
        if start < ceiling && left > 0.0 {
            let take = left.min(ceiling - start);
            usd += take * price;
            left -= take;
            start += take;
        }
        floor = ceiling;
    }
    usd
}

/// Prices one usage line. `free` is the part of the free tier still available to it
/// (requests, GB-seconds, egress GB); what it uses is subtracted.
pub fn price(u: &Usage, rule: InitBilling, already_gb_s: f64, free: &mut (f64, f64, f64)) -> Cost {
    let billed_ms = match rule {
        InitBilling::Always => u.billed_ms,
        InitBilling::Legacy => u.billed_ms - u.init_ms,
    };
    let gb_s = gb_seconds(u.memory_mb, billed_ms);
    let requests = (u.requests - free.0).max(0.0);
    free.0 = (free.0 - u.requests).max(0.0);
    let paid_gb_s = (gb_s - free.1).max(0.0);
    free.1 = (free.1 - gb_s).max(0.0);
    let egress_gb = u.egress_bytes / 1e9;
    let paid_egress = (egress_gb - free.2).max(0.0);
    free.2 = (free.2 - egress_gb).max(0.0);
    let extra_storage_gb = ((u.ephemeral_mb - 512.0) / 1024.0).max(0.0);
    Cost {
        gb_seconds: gb_s,
        request_usd: requests * PER_REQUEST,
        duration_usd: duration_usd(paid_gb_s, already_gb_s, u.arm64),
        ephemeral_usd: extra_storage_gb * billed_ms / 1000.0 * EPHEMERAL_PER_GB_S,
        egress_usd: paid_egress * EGRESS_PER_GB,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn the_documented_example() {
        // 3 million requests at 512 MB, 1 s each, x86, no free tier:
        // 1.5 M GB-s × $0.0000166667 = $25.00005, requests 3 × $0.20 = $0.60.
        let u = Usage {
            requests: 3e6,
            billed_ms: 3e9,
            memory_mb: 512.0,
            ephemeral_mb: 512.0,
            ..Default::default()
        };
        let c = price(&u, InitBilling::Always, 0.0, &mut (0.0, 0.0, 0.0));
        assert!(close(c.gb_seconds, 1.5e6));
        assert!(close(c.duration_usd, 25.000_05));
        assert!(close(c.request_usd, 0.60));
        assert_eq!(c.ephemeral_usd, 0.0);
    }

    #[test]
    fn the_free_tier_and_arm() {
        // The same on arm64 with the free tier: 1.1 M GB-s × $0.0000133334 = $14.66674,
        // 2 M paid requests = $0.40.
        let u = Usage {
            requests: 3e6,
            billed_ms: 3e9,
            memory_mb: 512.0,
            arm64: true,
            ..Default::default()
        };
        let mut free = (FREE_REQUESTS, FREE_GB_S, FREE_EGRESS_GB);
        let c = price(&u, InitBilling::Always, 0.0, &mut free);
        assert!(close(c.duration_usd, 1.1e6 * 0.000_013_333_4));
        assert!(close(c.request_usd, 0.40));
        assert_eq!(free, (0.0, 0.0, FREE_EGRESS_GB));
    }

    #[test]
    fn ephemeral_storage_and_egress() {
        // 10 GB of /tmp for 1,000 s of billed time: 9.5 GB extra × 1,000 s × $0.0000000309.
        let u = Usage {
            requests: 1.0,
            billed_ms: 1e6,
            memory_mb: 1024.0,
            ephemeral_mb: 10_240.0,
            egress_bytes: 2e9,
            ..Default::default()
        };
        let c = price(&u, InitBilling::Always, 0.0, &mut (0.0, 0.0, 0.0));
        assert!(close(c.ephemeral_usd, 9.5 * 1000.0 * 0.000_000_030_9));
        assert!(close(c.egress_usd, 2.0 * 0.09));
    }

    #[test]
    fn init_billing_rules() {
        // 100 ms handlers, one 400 ms init: billed 500 ms today, 100 ms under the old rule.
        let u = Usage {
            requests: 1.0,
            billed_ms: 500.0,
            init_ms: 400.0,
            memory_mb: 1024.0,
            ..Default::default()
        };
        let now = price(&u, InitBilling::Always, 0.0, &mut (0.0, 0.0, 0.0));
        let old = price(&u, InitBilling::Legacy, 0.0, &mut (0.0, 0.0, 0.0));
        assert!(close(now.gb_seconds, 0.5));
        assert!(close(old.gb_seconds, 0.1));
    }

    #[test]
    fn tiers_apply_in_order() {
        // 1 B GB-s beyond the first 5.5 B: 0.5 B at tier 1, 0.5 B at tier 2.
        let usd = duration_usd(1e9, 5.5e9, false);
        assert!(close(usd, 0.5e9 * 0.000_016_666_7 + 0.5e9 * 0.000_015));
    }
}
