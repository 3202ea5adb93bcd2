//! Wakes the I/O thread from Python threads: "request R on connection C has output" and
//! "connection C may read again". One mio `Waker` and a mutex-protected queue; the waker is
//! only poked when the queue goes from empty to non-empty, so a burst of notifications
//! costs one wake-up.

use std::sync::Mutex;

use mio::Waker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Output { conn: (usize, u32), id: u16 },
    ResumeReading { conn: (usize, u32) },
}

pub struct Notifier {
    waker: Waker,
    queue: Mutex<Vec<Note>>,
}

impl Notifier {
    pub fn new(waker: Waker) -> Notifier {
        Notifier {
            waker,
            queue: Mutex::new(Vec::with_capacity(64)),
        }
    }

    fn push(&self, note: Note) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        q.push(note);
        drop(q);
        if was_empty {
            // A failed wake (only possible if the poll is gone) means the loop is exiting.
            let _ = self.waker.wake();
        }
    }

    pub fn output_ready(&self, conn: (usize, u32), id: u16) {
        self.push(Note::Output { conn, id });
    }

    pub fn resume_reading(&self, conn: (usize, u32)) {
        self.push(Note::ResumeReading { conn });
    }

    /// Moves every pending note into `out`.
    pub fn drain(&self, out: &mut Vec<Note>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        out.append(&mut q);
    }
}
