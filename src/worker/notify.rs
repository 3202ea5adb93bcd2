//! Tells the reactor what Python threads did: "request R on connection C has output" and
//! "connection C may read again". A mutex-protected queue of notes, drained at every turn;
//! the waker (an eventfd in the poll) is only poked when a leader is blocked in the poll
//! right now, and once per poll, so a thread that will lead next itself, or a burst of
//! notes, costs no wake-up at all.

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

pub struct Notifier {
    waker: Waker,
    queue: Mutex<Queue>,
}

impl Notifier {
    pub fn new(waker: Waker) -> Notifier {
        Notifier {
            waker,
            queue: Mutex::new(Queue {
                notes: Vec::with_capacity(64),
                ..Queue::default()
            }),
        }
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
