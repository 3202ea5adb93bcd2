//! The mount mismatch warning: when the path params a front end sends disagree with the
//! configured `mount`, wsgid says so once per listener, naming the line that fixes it,
//! instead of silently serving URLs the application builds wrong, or only 404s.
//!
//! Two things are looked for, by [`crate::environ::mount_fit`]:
//! - a SCRIPT_NAME that the request path does not start with (a front end that strips the
//!   mount prefix before passing the request on): warned at the first such request;
//! - requests outside the mount only: warned when the first [`OUTSIDE_BEFORE_WARNING`]
//!   requests on a listener were all outside it. One request inside the mount rules this
//!   out for good: front ends forward some outside requests in correct setups too
//!   (lighttpd at `"/app"` forwards `/appx/z`).
//!
//! Each listener has one word of state, on the pool's board when there is one (shared by
//! the pool's workers, so the warning is logged once per listener, not once per worker),
//! else in the worker. The first [`WATCHED_REQUESTS`] requests on a listener are looked at;
//! after that, or after the warning, a request costs one relaxed load of a flag.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use crate::board::Board;
use crate::config::MountOrigin;
use crate::environ::MountFit;

/// Requests on a listener, its first ones, that must all be outside the mount before the
/// warning: more than the one outside request of a correct setup (a client asking for
/// `/appx`), few enough that a person trying the URL sees it.
pub const OUTSIDE_BEFORE_WARNING: u32 = 3;

/// Requests looked at per listener (by the workers of a pool together), after which the
/// listener is left alone.
pub const WATCHED_REQUESTS: u32 = 64;

/// The warning was logged (by some worker).
const WARNED: u32 = 1 << 31;
/// A request inside the mount was seen.
const INSIDE: u32 = 1 << 30;
/// Requests looked at, in the low bits (at most `WATCHED_REQUESTS`).
const COUNT: u32 = 0xffff;

/// What one request showed, for the shared word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Inside,
    Outside,
    Mismatch,
}

/// Whether the watch of a listener whose word is `word` is over.
fn over(word: u32) -> bool {
    word & WARNED != 0 || word & COUNT >= WATCHED_REQUESTS
}

/// The word after one more request that showed `seen`; None when the watch is over. The
/// warning is due when the result has `WARNED` and `word` had not.
fn next_word(word: u32, seen: Seen) -> Option<u32> {
    if over(word) {
        return None;
    }
    let count = (word & COUNT) + 1;
    let mut next = (word & !COUNT) | count;
    match seen {
        Seen::Inside => next |= INSIDE,
        Seen::Mismatch => next |= WARNED,
        Seen::Outside if word & INSIDE == 0 && count >= OUTSIDE_BEFORE_WARNING => next |= WARNED,
        Seen::Outside => {}
    }
    Some(next)
}

/// The mount watch of one listener in one worker.
pub struct MountWatch {
    /// The watch is over: nothing more to look at.
    over: AtomicBool,
    /// The listener's word when there is no board.
    own: AtomicU32,
    /// The board and this listener's index on it.
    board: Option<(Arc<Board>, usize)>,
    /// "fastcgi 127.0.0.1:9000".
    listener: String,
    /// The mount point, normalised ("" for the root).
    mount: String,
    origin: MountOrigin,
}

impl MountWatch {
    pub fn new(
        listener: String,
        mount: String,
        origin: MountOrigin,
        board: Option<(Arc<Board>, usize)>,
    ) -> MountWatch {
        MountWatch {
            over: AtomicBool::new(false),
            own: AtomicU32::new(0),
            board,
            listener,
            mount,
            origin,
        }
    }

    fn word(&self) -> &AtomicU32 {
        self.board
            .as_ref()
            .and_then(|(b, i)| b.listener_word(*i))
            .unwrap_or(&self.own)
    }

    /// Whether the next request on the listener is to be looked at ([`observe`]).
    ///
    /// [`observe`]: MountWatch::observe
    pub fn watching(&self) -> bool {
        if self.over.load(Ordering::Relaxed) {
            return false;
        }
        if over(self.word().load(Ordering::Relaxed)) {
            self.over.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counts one request's `fit`, and logs the warning if it is due; `request` names the
    /// request in it.
    pub fn observe(&self, fit: &MountFit<'_>, request: &dyn Display) {
        let seen = match fit {
            MountFit::Inside => Seen::Inside,
            MountFit::Outside => Seen::Outside,
            MountFit::ScriptNameMismatch { .. } => Seen::Mismatch,
            MountFit::Unknown => return,
        };
        let word = self.word();
        let old =
            match word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| next_word(w, seen)) {
                Ok(old) => old,
                Err(_) => {
                    self.over.store(true, Ordering::Relaxed);
                    return;
                }
            };
        let Some(new) = next_word(old, seen) else {
            return;
        };
        if new & WARNED != 0 && old & WARNED == 0 {
            tracing::warn!("{}", self.message(fit, request));
        }
        if over(new) {
            self.over.store(true, Ordering::Relaxed);
        }
    }

    /// The warning for `fit`.
    fn message(&self, fit: &MountFit<'_>, request: &dyn Display) -> String {
        let listener = &self.listener;
        match fit {
            MountFit::ScriptNameMismatch {
                script_name,
                param,
                value,
                stripped,
            } => {
                let stripped = stripped.as_deref().map(String::from_utf8_lossy);
                let fix = match stripped.as_deref() {
                    Some(m) if m == self.mount => {
                        format!("keep the mount point as it is ({})", self.mount_text())
                    }
                    Some(m) => self.set_to(m),
                    None => self.set_unknown("the path the front end is mounted at"),
                };
                format!(
                    "mount mismatch on {listener}: the front end sent SCRIPT_NAME {:?} with \
                     {param} {:?}, which does not start with it ({request}); wsgid makes \
                     SCRIPT_NAME from its mount point ({}) and the request path, so the \
                     application's SCRIPT_NAME and PATH_INFO do not spell the URL the client \
                     asked for. Fix: have the front end pass the path as the client sent it \
                     (no nginx, Apache or lighttpd rewrite that strips the prefix, no \
                     SCRIPT_NAME param set by hand), and {fix}",
                    String::from_utf8_lossy(script_name),
                    String::from_utf8_lossy(value),
                    self.mount_text(),
                )
            }
            _ => {
                let m = &self.mount;
                format!(
                    "mount mismatch on {listener}: the first {OUTSIDE_BEFORE_WARNING} requests \
                     were all outside the mount point {m:?} and got 404 (the last: {request}): \
                     the front end forwards paths without the {m:?} prefix, or wsgid's mount \
                     is wrong. Fix: {}; or have the front end forward {m}/ with the whole path \
                     (nginx: location {m}/ and no rewrite that strips it; Apache: ProxyPass \
                     {m} or <Location {m}>; lighttpd: fastcgi.server = ( \"{m}\" => ... ))",
                    self.set_unknown("the path the front end forwards"),
                )
            }
        }
    }

    /// The mount point as the warning names it.
    fn mount_text(&self) -> String {
        if self.mount.is_empty() {
            "/, the root".to_string()
        } else {
            format!("{:?}", self.mount)
        }
    }

    /// How to set the mount to `value` ("" for the root), where it is set.
    fn set_to(&self, value: &str) -> String {
        let shown = if value.is_empty() { "/" } else { value };
        match &self.origin {
            MountOrigin::Cli => format!("start wsgid with --mount {shown}"),
            MountOrigin::File { path, line } => {
                format!("set mount = {shown:?} at {}", place(path, *line))
            }
            MountOrigin::UnsetInFile {
                path,
                table_line: Some(line),
            } => format!("add mount = {shown:?} to the [[app]] table at {path}:{line}"),
            MountOrigin::UnsetInFile {
                path,
                table_line: None,
            } => format!("add mount = {shown:?} to {path}"),
            MountOrigin::Unset => format!("start wsgid with --mount {shown}"),
        }
    }

    /// How to change the mount to a value the warning cannot tell, described as `what`.
    fn set_unknown(&self, what: &str) -> String {
        let m = &self.mount;
        match &self.origin {
            MountOrigin::Cli => {
                format!("change --mount {m} to {what} (--mount / for the root)")
            }
            MountOrigin::File { path, line } => format!(
                "change mount = {m:?} at {} to {what} (\"/\" for the root)",
                place(path, *line)
            ),
            MountOrigin::UnsetInFile {
                path,
                table_line: Some(line),
            } => format!("add mount = \"...\" ({what}) to the [[app]] table at {path}:{line}"),
            MountOrigin::UnsetInFile {
                path,
                table_line: None,
            } => format!("add mount = \"...\" ({what}) to {path}"),
            MountOrigin::Unset => format!("start wsgid with --mount set to {what}"),
        }
    }
}

/// `FILE:LINE`, or `FILE` when the line is not known.
fn place(path: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{path}:{l}"),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word after `seen`, in order, from a fresh listener; and how many warnings.
    fn run(seen: &[Seen]) -> (u32, usize) {
        let mut word = 0;
        let mut warnings = 0;
        for &s in seen {
            if let Some(next) = next_word(word, s) {
                if next & WARNED != 0 && word & WARNED == 0 {
                    warnings += 1;
                }
                word = next;
            }
        }
        (word, warnings)
    }

    #[test]
    fn outside_requests_warn_only_as_the_first_few() {
        use Seen::*;
        let n = OUTSIDE_BEFORE_WARNING as usize;
        assert_eq!(run(&vec![Outside; n - 1]).1, 0, "one short of the limit");
        assert_eq!(run(&vec![Outside; n]).1, 1, "at the limit");
        assert_eq!(run(&vec![Outside; 3 * n]).1, 1, "past it: still once");
        let mut inside_first = vec![Inside];
        inside_first.extend(vec![Outside; 3 * n]);
        assert_eq!(run(&inside_first).1, 0, "a request inside rules it out");
        let mut inside_late = vec![Outside; n - 1];
        inside_late.push(Inside);
        inside_late.extend(vec![Outside; 3 * n]);
        assert_eq!(run(&inside_late).1, 0);
    }

    #[test]
    fn a_mismatch_warns_once_and_ends_the_watch() {
        use Seen::*;
        let (word, warnings) = run(&[Inside, Mismatch, Mismatch, Outside, Outside, Outside]);
        assert_eq!(warnings, 1);
        assert!(over(word));
        assert_eq!(next_word(word, Mismatch), None);
    }

    #[test]
    fn the_watch_ends_after_the_watched_requests() {
        use Seen::*;
        let mut seen = vec![Inside; WATCHED_REQUESTS as usize - 1];
        let (word, _) = run(&seen);
        assert!(!over(word), "one request before the end");
        seen.push(Inside);
        let (word, _) = run(&seen);
        assert!(over(word), "at the end");
        seen.push(Mismatch);
        assert_eq!(
            run(&seen),
            (word, 0),
            "a mismatch past the end is not looked at"
        );
    }

    #[test]
    fn the_warning_names_where_the_mount_is_set() {
        let watch = |mount: &str, origin| {
            MountWatch::new("fastcgi 127.0.0.1:9000".into(), mount.into(), origin, None)
        };
        let mismatch = MountFit::ScriptNameMismatch {
            script_name: b"/x",
            param: "REQUEST_URI",
            value: b"/app/x",
            stripped: Some(b"/app".to_vec()),
        };
        let req = "GET /app/x (fcgi 1)";
        let file = MountOrigin::File {
            path: "/etc/wsgid.toml".into(),
            line: Some(7),
        };
        let m = watch("", MountOrigin::Cli).message(&mismatch, &req);
        assert!(m.contains("start wsgid with --mount /app"), "{m}");
        assert!(
            m.contains("SCRIPT_NAME \"/x\" with REQUEST_URI \"/app/x\""),
            "{m}"
        );
        assert!(m.contains(req), "{m}");
        let m = watch("/other", file.clone()).message(&mismatch, &req);
        assert!(
            m.contains("set mount = \"/app\" at /etc/wsgid.toml:7"),
            "{m}"
        );
        let m = watch("/app", file.clone()).message(&mismatch, &req);
        assert!(m.contains("keep the mount point as it is"), "{m}");
        let table = MountOrigin::UnsetInFile {
            path: "/etc/wsgid.d/a.toml".into(),
            table_line: Some(3),
        };
        let m = watch("", table).message(&mismatch, &req);
        assert!(
            m.contains("add mount = \"/app\" to the [[app]] table at /etc/wsgid.d/a.toml:3"),
            "{m}"
        );
        let m = watch("/app", MountOrigin::Cli).message(&MountFit::Outside, &"GET /x (scgi)");
        assert!(m.contains("change --mount /app to"), "{m}");
        assert!(m.contains("the last: GET /x (scgi)"), "{m}");
        let m = watch("/app", file).message(&MountFit::Outside, &"GET /x (scgi)");
        assert!(m.contains("mount = \"/app\" at /etc/wsgid.toml:7"), "{m}");
    }
}
