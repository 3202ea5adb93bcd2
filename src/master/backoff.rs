//! Respawn delays: a worker that keeps dying is replaced ever more slowly (0.1 s doubling
//! up to 10 s), so an application that fails at import does not make wsgid spin; a worker
//! that had run for 10 s or more counts as healthy and resets the delay.

use std::time::Duration;

/// Delay before the first replacement.
pub const INITIAL: Duration = Duration::from_millis(100);
/// Longest delay between replacements.
pub const MAX: Duration = Duration::from_secs(10);
/// A worker that lived this long resets the delay.
pub const STABLE: Duration = Duration::from_secs(10);

/// Respawn delay state of one worker slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL }
    }
}

impl Backoff {
    /// The delay before replacing a worker that lived `lived`.
    pub fn after_exit(&mut self, lived: Duration) -> Duration {
        if lived >= STABLE {
            self.next = INITIAL;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(50);
        let delays: Vec<u128> = (0..10).map(|_| b.after_exit(quick).as_millis()).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
    }

    #[test]
    fn a_long_lived_worker_resets_the_delay() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.after_exit(Duration::ZERO);
        }
        assert_eq!(
            b.after_exit(STABLE - Duration::from_millis(1)),
            Duration::from_millis(3200)
        );
        assert_eq!(b.after_exit(STABLE), INITIAL);
        assert_eq!(b.after_exit(Duration::ZERO), Duration::from_millis(200));
    }
}
