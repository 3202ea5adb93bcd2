//! Tells the reactor what Python threads did: "request R on connection C has output" and
//! "connection C may read again". A mutex-protected queue of notes, drained at every turn;
//! the waker (an eventfd in the poll) is only poked when a leader is blocked in the poll
//! right now, and once per poll, so a thread that will lead next itself, or a burst of
//! notes, costs no wake-up at all.
//!
//! It is also how a Python thread waits for its request's state to change: the worker
//! gives it the waiting strategy (`lead::wait_io`: lead the reactor meanwhile if nobody
//! does), so the request state it serves (`Exchange`) needs nothing of the leader/follower
//! machinery.

use std::sync::Mutex;

use mio::Waker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Output { conn: (usize, u32), id: u16 },
    ResumeReading { conn: (usize, u32) },
}

#[derive(Default)]
struct Queue {
    notes: Vec<Note>,
    /// A leader is blocked in the poll (between `begin_poll` and `end_poll`).
    polling: bool,
    /// It was already woken during this poll.
    woken: bool,
}

/// Waits, detached from the interpreter, until the condition holds (or spuriously
/// earlier: callers check again).
pub type WaitIo = fn(&dyn Fn() -> bool);

pub struct Notifier {
    waker: Waker,
    queue: Mutex<Queue>,
    wait_io: WaitIo,
}

impl Notifier {
    pub fn new(waker: Waker, wait_io: WaitIo) -> Notifier {
        Notifier {
            waker,
            wait_io,
            queue: Mutex::new(Queue {
                notes: Vec::with_capacity(64),
                ..Queue::default()
            }),
        }
    }

    /// Waits until `ready()`, as the worker waits (see the module doc).
    pub fn wait_io(&self, ready: &dyn Fn() -> bool) {
        (self.wait_io)(ready)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Plain data: a panic elsewhere while holding the lock leaves it consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, note: Note) {
        let mut q = self.lock();
        q.notes.push(note);
        let wake = q.polling && !q.woken;
        if wake {
            q.woken = true;
        }
        drop(q);
        if wake {
            self.poke();
        }
    }

    /// Interrupts the poll now (handing leadership over to a waiting thread).
    pub fn poke(&self) {
        // A failed wake (only possible if the poll is gone) means the worker is exiting.
        let _ = self.waker.wake();
    }

    pub fn output_ready(&self, conn: (usize, u32), id: u16) {
        self.push(Note::Output { conn, id });
    }

    pub fn resume_reading(&self, conn: (usize, u32)) {
        self.push(Note::ResumeReading { conn });
    }

    /// The leader is about to block in the poll: from now on a note wakes it. False (and
    /// nothing announced) when notes are already waiting: the poll must not block.
    pub fn begin_poll(&self) -> bool {
        let mut q = self.lock();
        if !q.notes.is_empty() {
            return false;
        }
        q.polling = true;
        q.woken = false;
        true
    }

    pub fn end_poll(&self) {
        self.lock().polling = false;
    }

    /// Notes are waiting to be drained.
    pub fn pending(&self) -> bool {
        !self.lock().notes.is_empty()
    }

    /// Moves every pending note into `out`.
    pub fn drain(&self, out: &mut Vec<Note>) {
        let mut q = self.lock();
        out.append(&mut q.notes);
    }
}
