//! The master's signals: SIGTERM, SIGINT, SIGQUIT and SIGHUP set flags, and these and SIGCHLD write a
//! byte to a self-pipe so the supervision loop, blocked in poll(2), wakes up. Handlers do
//! nothing else (signal-hook keeps them async-signal-safe).

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// A signal the supervision loop acts on. SIGCHLD is not reported: the loop reaps children
/// on every wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
    Quit,
    Hup,
}

/// Installed signal handlers and the read end of their self-pipe.
pub struct Signals {
    wake: UnixStream,
    flags: [(Signal, Arc<AtomicBool>); 4],
}

impl Signals {
    /// Installs the handlers. Call before the first worker is started, so no SIGCHLD is lost.
    pub fn install() -> io::Result<Signals> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let flags = [
            (Signal::Term, SIGTERM),
            (Signal::Int, SIGINT),
            (Signal::Quit, SIGQUIT),
            (Signal::Hup, SIGHUP),
        ]
        .map(|(s, n)| (s, n, Arc::new(AtomicBool::new(false))));
        for (_, n, flag) in &flags {
            signal_hook::flag::register(*n, flag.clone())?;
        }
        for n in [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD] {
            signal_hook::low_level::pipe::register(n, notify.try_clone()?)?;
        }
        Ok(Signals {
            wake,
            flags: flags.map(|(s, _, f)| (s, f)),
        })
    }

    /// Readable when a signal arrived since the last `take`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// The signals that arrived since the last call, in a fixed order (SIGTERM, SIGINT,
    /// SIGQUIT, SIGHUP), and empties the self-pipe.
    pub fn take(&self) -> Vec<Signal> {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, flag)| flag.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
    }
}
