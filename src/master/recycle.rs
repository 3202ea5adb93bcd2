//! When a worker is replaced by a fresh one, and why: the limits of `Recycle` that the
//! master checks itself (age, resident memory, CPU time, every `CHECK_INTERVAL`), the ones
//! a worker reports (its `max_requests`, a request stuck past its timeout), and reloads.
//! A replacement is graceful and is no crash: it does not back off.

use std::fmt;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use super::usage::Usage;
use crate::config::Recycle;

/// How often the master reads each worker's memory and CPU time, when a limit on either
/// is set.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Why a worker is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It took its `max_requests` (it said so).
    MaxRequests,
    /// A request outlived `request_timeout` and its grace period (it said so).
    Stuck,
    MaxRss {
        rss: u64,
        max: u64,
    },
    MaxCpuTime {
        cpu: Duration,
        max: Duration,
    },
    MaxLifetime {
        max: Duration,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::MaxRequests => f.write_str("max_requests reached"),
            Reason::Stuck => f.write_str("a request is stuck past request_timeout"),
            Reason::MaxRss { rss, max } => {
                write!(f, "max_rss: {} resident, above {}", mib(*rss), mib(*max))
            }
            Reason::MaxCpuTime { cpu, max } => write!(
                f,
                "max_cpu_time: {:.1} s of CPU time, at least {:.1} s",
                cpu.as_secs_f64(),
                max.as_secs_f64()
            ),
            Reason::MaxLifetime { max } => {
                write!(f, "max_lifetime: {:.1} s old", max.as_secs_f64())
            }
        }
    }
}

/// "512.0 MiB".
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// The master's own checks of a worker started at `started`, with `usage` if it was read.
pub fn due(
    limits: &Recycle,
    started: Instant,
    now: Instant,
    usage: Option<Usage>,
) -> Option<Reason> {
    if let Some(ms) = limits.max_lifetime_ms {
        let max = Duration::from_millis(ms);
        if now.saturating_duration_since(started) >= max {
            return Some(Reason::MaxLifetime { max });
        }
    }
    let usage = usage?;
    if let Some(max) = limits.max_rss {
        if usage.rss_bytes > max {
            return Some(Reason::MaxRss {
                rss: usage.rss_bytes,
                max,
            });
        }
    }
    if let Some(ms) = limits.max_cpu_time_ms {
        let max = Duration::from_millis(ms);
        if usage.cpu >= max {
            return Some(Reason::MaxCpuTime {
                cpu: usage.cpu,
                max,
            });
        }
    }
    None
}

/// Whether the master needs to read workers' usage at all.
pub fn watches_usage(limits: &Recycle) -> bool {
    limits.max_rss.is_some() || limits.max_cpu_time_ms.is_some()
}

/// A worker's `max_requests`: the configured one plus a jitter drawn uniformly from
/// `0..=max_requests_jitter`.
pub fn max_requests(limits: &Recycle) -> Option<u64> {
    let base = limits.max_requests?;
    let jitter = limits.max_requests_jitter;
    if jitter == 0 {
        return Some(base);
    }
    // Each RandomState is seeded afresh by the standard library: a new draw per worker.
    let draw = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let extra = draw % jitter.saturating_add(1);
    Some(base.saturating_add(extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Recycle {
        Recycle {
            max_requests: Some(100),
            max_requests_jitter: 10,
            max_rss: Some(1000),
            max_cpu_time_ms: Some(2000),
            max_lifetime_ms: Some(60_000),
        }
    }

    #[test]
    fn each_limit_at_and_past_its_boundary() {
        let l = limits();
        let t0 = Instant::now();
        let use_ = |rss, cpu_ms| {
            Some(Usage {
                rss_bytes: rss,
                cpu: Duration::from_millis(cpu_ms),
            })
        };
        assert_eq!(due(&l, t0, t0, use_(1000, 1999)), None);
        assert_eq!(
            due(&l, t0, t0, use_(1001, 0)),
            Some(Reason::MaxRss {
                rss: 1001,
                max: 1000
            })
        );
        assert!(matches!(
            due(&l, t0, t0, use_(0, 2000)),
            Some(Reason::MaxCpuTime { .. })
        ));
        let later = t0 + Duration::from_millis(59_999);
        assert_eq!(due(&l, t0, later, None), None);
        assert!(matches!(
            due(&l, t0, t0 + Duration::from_secs(60), None),
            Some(Reason::MaxLifetime { .. })
        ));
        assert_eq!(
            due(&Recycle::default(), t0, later, use_(u64::MAX, 1 << 40)),
            None
        );
    }

    #[test]
    fn jitter_stays_within_its_range_and_varies() {
        let l = limits();
        let draws: Vec<u64> = (0..200).map(|_| max_requests(&l).unwrap()).collect();
        assert!(draws.iter().all(|&n| (100..=110).contains(&n)), "{draws:?}");
        let distinct: std::collections::BTreeSet<u64> = draws.iter().copied().collect();
        assert!(distinct.len() > 3, "{distinct:?}");
        let fixed = Recycle {
            max_requests_jitter: 0,
            ..l
        };
        assert_eq!(max_requests(&fixed), Some(100));
        assert_eq!(max_requests(&Recycle::default()), None);
    }

    #[test]
    fn reasons_are_worded() {
        assert_eq!(
            Reason::MaxRss {
                rss: 600 << 20,
                max: 512 << 20
            }
            .to_string(),
            "max_rss: 600.0 MiB resident, above 512.0 MiB"
        );
    }
}
