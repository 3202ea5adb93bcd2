//! What a worker tells the master, over the pipe whose write end the master passed down
//! (`WorkerSpec::ready_fd`): how far it got while starting ([`LOADED`], [`READY`]), and later
//! that it wants to be replaced ([`REPLACE_MAX_REQUESTS`], [`REPLACE_STUCK`]). The master
//! starts a replacement, waits until it serves, then stops this worker gracefully: a worker
//! never stops accepting before its successor accepts.
//!
//! Each message is one byte, written whole (a pipe write of at most `PIPE_BUF` bytes is
//! atomic), so Python threads and the reactor may write concurrently.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::warn;

use crate::config::{WorkerSpec, LOADED, READY, REPLACE_MAX_REQUESTS, REPLACE_STUCK};
use crate::inherit;

/// Why a worker asks to be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// It has taken `max_requests` requests.
    MaxRequests,
    /// A request outlived `request_timeout` and its grace period: its thread may never
    /// come back.
    Stuck,
}

/// The worker's end of the pipe to the master.
pub struct Report {
    pipe: Option<File>,
    /// A replacement was asked for: the master needs to hear it once.
    asked: AtomicBool,
}

impl Report {
    /// Takes the pipe's write end (once, before the application runs); the master made it
    /// for this worker alone.
    pub fn from_spec(spec: &WorkerSpec) -> Report {
        let pipe = spec.ready_fd.and_then(|fd| {
            inherit::take(fd, "report pipe")
                .map_err(|e| warn!("cannot report to the master: {e}"))
                .ok()
        });
        Report {
            pipe: pipe.map(|fd| {
                // Not for processes the application starts: the master reads end of file
                // as this worker's end.
                let cloexec = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC);
                if let Err(e) = nix::fcntl::fcntl(&fd, cloexec) {
                    warn!("cannot make the report pipe close-on-exec: {e}");
                }
                File::from(fd)
            }),
            asked: AtomicBool::new(false),
        }
    }

    /// The application is loaded: an exit from now on is not a failure to load.
    pub fn loaded(&self) {
        self.tell(LOADED);
    }

    /// The worker accepts connections.
    pub fn ready(&self) {
        self.tell(READY);
    }

    /// Asks the master for a replacement, once: later calls (for any reason) do nothing,
    /// the first one is being acted on. The worker goes on serving until the master stops
    /// it.
    pub fn ask_replacement(&self, why: Replace) {
        if self.asked.swap(true, Ordering::Relaxed) {
            return;
        }
        self.tell(match why {
            Replace::MaxRequests => REPLACE_MAX_REQUESTS,
            Replace::Stuck => REPLACE_STUCK,
        });
    }

    fn tell(&self, byte: u8) {
        if let Some(mut f) = self.pipe.as_ref() {
            if let Err(e) = f.write_all(&[byte]) {
                warn!("cannot report to the master: {e}");
            }
        }
    }
}
