//! Repeated warnings, said at most once per interval.
//!
//! Some warnings come once per request or per commit while a condition lasts: a mount at its
//! `--max-memory` gave up 715 commits in 20 s of stress-ng, each with its own line. A
//! [`LogThrottle`] lets the first line through, counts the ones that follow within its
//! interval, and lets the next line after it say how many were left out.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One call site's throttle; keep it in a `static`.
pub struct LogThrottle {
    every: Duration,
    /// When a line was last let through, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogThrottle {
    pub const fn new(every: Duration) -> LogThrottle {
        LogThrottle {
            every,
            state: parking_lot::const_mutex((None, 0)),
        }
    }

    /// `Some(held back since the last line)` when a line may be logged now; `None` (and one
    /// more held back) otherwise.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        let (last, held) = &mut *state;
        if last.is_some_and(|at| now.saturating_duration_since(at) < self.every) {
            *held += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_next_counts_those_held_back() {
        let throttle = LogThrottle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(throttle.admit_at(at(0)), Some(0));
        assert_eq!(throttle.admit_at(at(1)), None);
        assert_eq!(throttle.admit_at(at(9)), None);
        assert_eq!(throttle.admit_at(at(10)), Some(2));
        assert_eq!(throttle.admit_at(at(30)), Some(0));
        assert_eq!(throttle.admit_at(at(31)), None);
        assert_eq!(throttle.admit_at(at(45)), Some(1));
    }
}
