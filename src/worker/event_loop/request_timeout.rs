//! `request_timeout` in the reactor: a request still running that long after its params
//! were read is ended here (504, or a cut-off response once its headers went out), its
//! Python thread gets `wsgid.RequestTimeout`, and if that thread has not returned
//! `request_timeout_grace` later the worker asks the master for a replacement.
//!
//! The limit is the same for every request, so request deadlines come in dispatch order:
//! a request dispatched after the earliest deadline was set has a later one. The reactor
//! keeps only that earliest deadline (`Shared::request_check`, set at dispatch from the
//! timestamp of the read that completed the params: no clock read of its own), and looks
//! at the requests in flight only when it comes, at most once per [`gap`]: nothing per
//! request beyond that.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::EventLoop;
use crate::worker::exchange::{Ending, Exchange};
use crate::worker::report::Replace;

/// The timed requests that are not on a connection any more, and the timed-out ones
/// whose threads are given their grace period.
pub struct RequestTimer {
    limit: Duration,
    grace: Duration,
    /// Requests whose connection closed while their job was still to be done: still
    /// timed (their thread may be stuck), with nobody to answer.
    orphans: Vec<Arc<Exchange>>,
    /// Requests timed out, each with the end of its grace period (in order: the grace is
    /// the same for all).
    overdue: VecDeque<(Instant, Arc<Exchange>)>,
}

/// The least time between two looks at the requests in flight: a timeout fires up to
/// this late, so that requests whose deadlines are close together cost one look.
fn gap(limit: Duration) -> Duration {
    (limit / 64).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl RequestTimer {
    pub fn new(limit: Duration, grace: Duration) -> RequestTimer {
        RequestTimer {
            limit,
            grace,
            orphans: Vec::new(),
            overdue: VecDeque::new(),
        }
    }

    /// When the next grace period ends.
    pub fn next_grace(&self) -> Option<Instant> {
        self.overdue.front().map(|(at, _)| *at)
    }

    /// Keeps timing the unfinished requests of a connection that closed.
    pub fn adopt<'a>(&mut self, requests: impl Iterator<Item = &'a Arc<Exchange>>) {
        for ex in requests {
            if !ex.is_finished() {
                self.orphans.push(ex.clone());
            }
        }
    }
}

/// Raises `RequestTimeout` in the threads running `requests`, from a thread of its own:
/// that takes the interpreter, which the reactor never waits for (a thread blocked in C
/// code that does not release it would stop the reactor, and with it the grace check
/// that gets the worker replaced). A thread waiting inside wsgid was woken already, and
/// raises the exception itself.
fn interrupt(requests: Vec<Arc<Exchange>>) {
    let spare = requests.clone();
    let spawned = std::thread::Builder::new()
        .name("wsgid-timeout".into())
        .spawn(move || crate::python::interrupt(&requests));
    if let Err(e) = spawned {
        warn!("cannot start a thread to raise RequestTimeout ({e}); raising it from here");
        crate::python::interrupt(&spare);
    }
}

/// Logs a request timed out.
fn log_timeout(ex: &Exchange, now: Instant, limit: Duration, outcome: &str) {
    let elapsed = now.saturating_duration_since(ex.started);
    let thread = if ex.runner() != 0 {
        "raising wsgid.RequestTimeout in its thread"
    } else {
        "it had not started"
    };
    warn!(
        request = %ex.ident(),
        request_timeout_ms = limit.as_millis() as u64,
        elapsed_ms = elapsed.as_millis() as u64,
        "request timeout: running for {:.3} s, past request_timeout ({:.3} s); {outcome}; {thread}",
        elapsed.as_secs_f64(),
        limit.as_secs_f64(),
    );
}

impl EventLoop {
    /// When the reactor must next look at timed requests (None: none is timed).
    pub(super) fn next_request_timer(&self) -> Option<Instant> {
        let timer = self.timer.as_ref()?;
        match (self.sh.request_check, timer.next_grace()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Times out the requests past `request_timeout`, and asks for a replacement when a
    /// timed-out request's thread outlives its grace period.
    pub(super) fn time_requests(&mut self, now: Instant) {
        let Some((limit, grace)) = self.timer.as_ref().map(|t| (t.limit, t.grace)) else {
            return;
        };
        if self.sh.request_check.is_some_and(|at| now >= at) {
            let (mut fired, next) = self.time_out_on_connections(limit, now);
            let Some(timer) = self.timer.as_mut() else {
                return;
            };
            let next = timer.time_out_orphans(now, next, &mut fired);
            self.sh.request_check = next.map(|at| at.max(now + gap(limit)));
            if !fired.is_empty() {
                interrupt(fired.clone());
                timer
                    .overdue
                    .extend(fired.into_iter().map(|ex| (now + grace, ex)));
            }
        }
        let Some(timer) = self.timer.as_mut() else {
            return;
        };
        while timer.overdue.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, ex)) = timer.overdue.pop_front() else {
                break;
            };
            if ex.runner() == 0 {
                continue;
            }
            error!(
                request = %ex.ident(),
                request_timeout_grace_ms = grace.as_millis() as u64,
                "request still running {:.3} s after request_timeout ended it: its thread is \
                 stuck (blocked outside Python code, or it caught wsgid.RequestTimeout); asking \
                 the master for a replacement",
                now.saturating_duration_since(ex.started + limit)
                    .as_secs_f64(),
            );
            self.sh.report.ask_replacement(Replace::Stuck);
        }
    }

    /// Ends every request on a connection past its deadline: the requests whose threads
    /// may still run them, and the earliest deadline left.
    fn time_out_on_connections(
        &mut self,
        limit: Duration,
        now: Instant,
    ) -> (Vec<Arc<Exchange>>, Option<Instant>) {
        let mut next = None;
        let mut fired = Vec::new();
        let mut ended: Vec<u16> = Vec::new();
        for slot in 0..self.conns.len() {
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            for r in &c.reqs {
                let deadline = r.ex.started + limit;
                if deadline > now {
                    next = earliest(next, deadline);
                    continue;
                }
                let Some((ending, answered)) = r.ex.time_out() else {
                    continue; // finished: its output is on its way
                };
                let outcome = match (ending, answered) {
                    (_, true) => "answered 504 Gateway Timeout",
                    (Ending::Broken, _) => "its response had started: cut off",
                    (Ending::Complete, _) => "it was stopped already",
                };
                log_timeout(&r.ex, now, limit, outcome);
                ended.push(r.id);
                fired.push(r.ex.clone());
            }
            if ended.is_empty() {
                continue;
            }
            for id in ended.drain(..) {
                c.pull_output(&mut self.sh, id, &mut self.spare);
            }
            let v = c.after_progress(&mut self.sh);
            self.settle(slot, v);
        }
        (fired, next)
    }
}

impl RequestTimer {
    /// The same for requests whose connection closed (nobody to answer); `next` with
    /// their deadlines.
    fn time_out_orphans(
        &mut self,
        now: Instant,
        mut next: Option<Instant>,
        fired: &mut Vec<Arc<Exchange>>,
    ) -> Option<Instant> {
        let limit = self.limit;
        self.orphans.retain(|ex| {
            if ex.is_finished() {
                return false;
            }
            let deadline = ex.started + limit;
            if deadline > now {
                next = earliest(next, deadline);
                return true;
            }
            if ex.time_out().is_some() {
                log_timeout(ex, now, limit, "its connection was closed already");
                fired.push(ex.clone());
            }
            false
        });
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_are_spaced_by_a_fraction_of_the_limit() {
        assert_eq!(gap(Duration::from_millis(1)), Duration::from_millis(1));
        assert_eq!(
            gap(Duration::from_millis(1500)),
            Duration::from_nanos(23_437_500)
        );
        assert_eq!(gap(Duration::from_secs(60)), Duration::from_millis(100));
    }
}
