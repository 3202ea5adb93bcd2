//! The connection board: how many connections each worker holds, in a few bytes of memory
//! the master creates and every worker maps, so that sibling workers sharing a listening
//! socket can spread connections between them.
//!
//! Every worker is woken for a new connection on the shared socket, and whichever accepts
//! first keeps it. Front ends hold their connections open (nginx's upstream keep-alive
//! pool, `fastcgi_keep_conn`), so the split made in the first milliseconds lasts: on a busy
//! machine, a worker that was not scheduled while nginx opened its pool was left with
//! almost none and idled next to a saturated sibling. With the board a worker that holds
//! clearly more than its least loaded sibling leaves new connections to it for a moment
//! (`worker::event_loop`).
//!
//! The board is advisory: a stale or wrong count costs at most one short wait.
//!
//! Each slot also holds what `wsgid status` shows of its worker: requests taken and in
//! flight, which the worker posts every second.
//!
//! After the slots, one word per listener of the pool, which its workers share for the
//! mount mismatch warning (`worker::mount_watch`), so that the warning is logged once per
//! listener rather than once per worker.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// The count of a slot with no accepting worker behind it (not started yet, stopping, or
/// gone).
pub const VACANT: u32 = u32::MAX;

/// The most connections a slot can count (one below `VACANT`); the configuration caps
/// `max_connections` at this.
pub const MAX_COUNT: usize = (VACANT - 1) as usize;

/// One worker slot: its connection count, and its counters for `wsgid status`.
#[repr(C)]
struct Cell {
    connections: AtomicU32,
    _pad: u32,
    taken: AtomicU64,
    in_flight: AtomicU64,
}

/// What a worker last posted of its work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Posted {
    /// Requests taken since it started.
    pub taken: u64,
    pub in_flight: u64,
    /// Connections held, when it accepts.
    pub connections: Option<u32>,
}

/// One `Cell` per worker slot, then one `AtomicU32` per listener, in shared memory.
pub struct Board {
    base: NonNull<Cell>,
    slots: usize,
    listeners: usize,
}

// SAFETY: the mapping holds only atomics, meant to be shared between processes and threads
// alike; it stays mapped until the board is dropped.
unsafe impl Send for Board {}
// SAFETY: as above; every access goes through `AtomicU32`.
unsafe impl Sync for Board {}

impl Board {
    /// The master's: a new board of `slots` vacant slots and `listeners` listener words
    /// (zero), and the descriptor (close-on-exec) that workers map it from.
    pub fn create(slots: usize, listeners: usize) -> io::Result<(Board, OwnedFd)> {
        let fd = memfd_create("wsgid-board", MFdFlags::MFD_CLOEXEC)?;
        let len = i64::try_from(byte_len(slots, listeners)?.get()).map_err(io::Error::other)?;
        nix::unistd::ftruncate(&fd, len)?;
        let board = Board::map(&fd, slots, listeners)?;
        for i in 0..slots {
            board.vacate(i);
        }
        Ok((board, fd))
    }

    /// A worker's: maps the board passed down as descriptor `fd`, of `slots` slots and
    /// `listeners` listener words, and closes the descriptor (the mapping outlives it).
    pub fn adopt(fd: OwnedFd, slots: usize, listeners: usize) -> io::Result<Board> {
        let st = nix::sys::stat::fstat(&fd)?;
        let need = byte_len(slots, listeners)?.get();
        if !usize::try_from(st.st_size).is_ok_and(|have| have >= need) {
            return Err(io::Error::other(format!(
                "the connection board is {} bytes, {need} expected",
                st.st_size
            )));
        }
        Board::map(&fd, slots, listeners)
    }

    fn map(fd: impl AsFd, slots: usize, listeners: usize) -> io::Result<Board> {
        let len = byte_len(slots, listeners)?;
        // SAFETY: a new shared mapping of a file at least `len` bytes long (made so by
        // `create`, checked by `adopt`), at an address the kernel picks; no Rust reference
        // points into it yet. Page alignment satisfies `Cell`'s.
        let base = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )?
        };
        Ok(Board {
            base: base.cast(),
            slots,
            listeners,
        })
    }

    fn cell(&self, i: usize) -> Option<&Cell> {
        // SAFETY: `i < slots`, so the cell lies inside the mapping, which lives as long as
        // `self` and is zero-filled or written only through atomics (a zeroed `Cell` is
        // valid); every field allows shared mutation but `_pad`, which is never written.
        (i < self.slots).then(|| unsafe { &*self.base.as_ptr().add(i) })
    }

    /// The shared word of listener `i` (see the module doc); None past the last one.
    pub fn listener_word(&self, i: usize) -> Option<&AtomicU32> {
        // SAFETY: the words start right after the `slots` cells (a multiple of `Cell`'s
        // alignment, which is more than `AtomicU32`'s) and `i < listeners` keeps this one
        // inside the mapping (`byte_len`), which lives as long as `self`; a zeroed word is
        // valid and every access is atomic.
        (i < self.listeners).then(|| unsafe {
            let words = self.base.as_ptr().add(self.slots).cast::<AtomicU32>();
            &*words.add(i)
        })
    }

    fn slot(&self, i: usize) -> Option<&AtomicU32> {
        self.cell(i).map(|c| &c.connections)
    }

    /// Posts worker `i`'s counters (a worker's, every second).
    pub fn post(&self, i: usize, taken: u64, in_flight: u64) {
        if let Some(c) = self.cell(i) {
            c.taken.store(taken, Ordering::Relaxed);
            c.in_flight.store(in_flight, Ordering::Relaxed);
        }
    }

    /// What worker `i` last posted.
    pub fn read(&self, i: usize) -> Posted {
        let Some(c) = self.cell(i) else {
            return Posted::default();
        };
        let n = c.connections.load(Ordering::Relaxed);
        Posted {
            taken: c.taken.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            connections: (n != VACANT).then_some(n),
        }
    }

    /// Clears slot `i` for a new worker: vacant, counters at zero.
    pub fn reset(&self, i: usize) {
        self.vacate(i);
        self.post(i, 0, 0);
    }

    /// Records that worker `i` holds `n` connections and accepts more.
    pub fn set(&self, i: usize, n: usize) {
        if let Some(s) = self.slot(i) {
            let n = u32::try_from(n.min(MAX_COUNT)).unwrap_or(VACANT - 1);
            s.store(n, Ordering::Relaxed);
        }
    }

    /// Records that worker `i` accepts no connections.
    pub fn vacate(&self, i: usize) {
        if let Some(s) = self.slot(i) {
            s.store(VACANT, Ordering::Relaxed);
        }
    }

    /// The fewest connections held by an accepting worker other than `me`; None when no
    /// other worker accepts.
    pub fn fewest_besides(&self, me: usize) -> Option<usize> {
        (0..self.slots)
            .filter(|&i| i != me)
            .filter_map(|i| self.slot(i))
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&n| n != VACANT)
            .min()
            .map(|n| n as usize)
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if let Ok(len) = byte_len(self.slots, self.listeners) {
            // SAFETY: unmaps exactly the mapping `map` made; no reference into it outlives
            // `self` (`slot` borrows from `self`).
            let _ = unsafe { munmap(self.base.cast(), len.get()) };
        }
    }
}

/// The mapping's length: at least one cell, then the listener words.
fn byte_len(slots: usize, listeners: usize) -> io::Result<NonZeroUsize> {
    slots
        .max(1)
        .checked_mul(size_of::<Cell>())
        .and_then(|cells| cells.checked_add(listeners.checked_mul(size_of::<AtomicU32>())?))
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| io::Error::other("connection board too large"))
}

#[cfg(test)]
mod tests {
    use super::{Board, VACANT};
    use std::sync::atomic::Ordering;

    #[test]
    fn counts_written_by_one_mapping_are_read_by_another() {
        let (master, fd) = Board::create(3, 2).expect("board");
        assert_eq!(master.fewest_besides(0), None, "all slots start vacant");
        // A second mapping of the same memory, as a worker makes from the inherited fd.
        let dup = nix::unistd::dup(&fd).expect("dup");
        let worker = Board::adopt(dup, 3, 2).expect("adopt");
        worker.set(1, 7);
        worker.set(2, 4);
        assert_eq!(master.fewest_besides(0), Some(4));
        assert_eq!(
            master.fewest_besides(2),
            Some(7),
            "a worker's own slot is left out"
        );
        master.vacate(2);
        assert_eq!(worker.fewest_besides(0), Some(7));
        worker.set(1, usize::MAX);
        assert_eq!(
            master.fewest_besides(0),
            Some(VACANT as usize - 1),
            "a huge count never reads as vacant"
        );
        // Out-of-range slots are ignored rather than written past the mapping.
        worker.set(3, 1);
        worker.post(3, 1, 1);
        assert_eq!(master.fewest_besides(0), Some(VACANT as usize - 1));
        worker.post(2, 10, 2);
        worker.set(2, 3);
        assert_eq!(
            master.read(2),
            super::Posted {
                taken: 10,
                in_flight: 2,
                connections: Some(3)
            }
        );
        master.reset(2);
        assert_eq!(master.read(2), super::Posted::default());
    }

    #[test]
    fn listener_words_are_shared_and_apart_from_the_slots() {
        let (master, fd) = Board::create(2, 3).expect("board");
        let dup = nix::unistd::dup(&fd).expect("dup");
        let worker = Board::adopt(dup, 2, 3).expect("adopt");
        let word = |b: &Board, i| b.listener_word(i).map(|w| w.load(Ordering::Relaxed));
        assert_eq!((word(&master, 0), word(&master, 2)), (Some(0), Some(0)));
        assert_eq!(word(&master, 3), None, "past the last listener");
        worker
            .listener_word(2)
            .expect("word 2")
            .fetch_or(5, Ordering::Relaxed);
        assert_eq!(word(&master, 2), Some(5));
        // Slots and words do not overlap.
        master.set(1, 9);
        master.post(1, u64::MAX, u64::MAX);
        assert_eq!(
            (word(&worker, 0), word(&worker, 1), word(&worker, 2)),
            (Some(0), Some(0), Some(5))
        );
        assert_eq!(worker.read(1).connections, Some(9));
    }

    #[test]
    fn a_descriptor_too_small_for_the_slots_is_refused() {
        let (_board, fd) = Board::create(2, 1).expect("board");
        let dup = nix::unistd::dup(&fd).expect("dup");
        let err = Board::adopt(dup, 2, 2)
            .err()
            .expect("a board of 1 listener word adopted with 2");
        assert!(err.to_string().contains("expected"), "{err}");
        let dup = nix::unistd::dup(&fd).expect("dup");
        let err = Board::adopt(dup, 64, 1)
            .err()
            .expect("a 2-slot board adopted as 64 slots");
        assert!(err.to_string().contains("expected"), "{err}");
    }
}
