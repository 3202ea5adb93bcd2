//! Descriptors inherited across exec: the one place where a descriptor number that a parent
//! process passed down (in the worker spec, as fd 0, through `LISTEN_FDS`) becomes a Rust
//! descriptor. Everything past this module holds `OwnedFd`s and `BorrowedFd`s.

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Whether `fd` is an open descriptor of this process.
fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; any integer is a valid argument and
    // a number that is not open just yields EBADF.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
}

/// Takes sole ownership of inherited descriptor `fd`, refused when it is not open.
///
/// For numbers the parent handed this process for one use each: a worker's listeners, its
/// board and its readiness pipe, named in its spec, each taken once at start-up, before the
/// application runs and could open anything.
pub fn take(fd: RawFd, what: &str) -> io::Result<OwnedFd> {
    if !is_open(fd) {
        return Err(io::Error::other(format!(
            "{what}: inherited descriptor {fd} is not open"
        )));
    }
    // SAFETY: `fd` is open (checked above). It was opened by the parent and passed down for
    // this use alone; this process never opened it, and the caller takes each such number
    // once, so nothing else here owns it or will close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Borrows inherited descriptor `fd` for the rest of the process, if it is open.
///
/// For numbers the master inspects and passes on to its workers without taking them over
/// (`fd:N` listeners, fd 0, `LISTEN_FDS`).
pub fn borrow(fd: RawFd) -> Option<BorrowedFd<'static>> {
    if !is_open(fd) {
        return None;
    }
    // SAFETY: `fd` is open (checked above) and was inherited from the parent process. wsgid
    // never takes over or closes a descriptor it did not open itself except through `take`,
    // which the master does not use, so it stays open for the rest of the process: the
    // 'static lifetime holds.
    Some(unsafe { BorrowedFd::borrow_raw(fd) })
}
