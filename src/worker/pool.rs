//! The pool of Python threads. The I/O thread submits decoded requests; each thread waits
//! for one (detached from the interpreter), runs it to completion under the interpreter,
//! and waits again.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::exchange::Exchange;
use super::framing::Framing;
use crate::environ::Local;
use crate::protocol::Params;
use crate::python::App;

/// One request, ready to run.
pub struct Job {
    pub params: Params,
    pub exchange: Arc<Exchange>,
    pub framing: Framing,
    pub local: Arc<Local>,
}

pub struct Pool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `n` threads; at most `queue` jobs wait for a free thread.
    pub fn start(n: usize, queue: usize, app: Arc<App>) -> std::io::Result<Pool> {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = crossbeam_channel::bounded(queue.max(1));
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rx = rx.clone();
            let app = app.clone();
            let t = std::thread::Builder::new()
                .name(format!("python-{i}"))
                .spawn(move || {
                    // Attach once for the thread's lifetime so its Python thread state
                    // lives as long as the thread: a state created and destroyed per request
                    // costs an mmap/munmap of its frame stack each time. Waiting for work
                    // happens detached; each request re-attaches to this same state.
                    crate::python::attached(|py| {
                        py.detach(|| {
                            while let Ok(job) = rx.recv() {
                                app.run(job);
                            }
                        })
                    })
                })?;
            threads.push(t);
        }
        Ok(Pool {
            tx: Some(tx),
            threads,
        })
    }

    /// Hands a job to a Python thread; gives it back when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        match &self.tx {
            Some(tx) => tx.try_send(job).map_err(|e| match e {
                TrySendError::Full(j) | TrySendError::Disconnected(j) => j,
            }),
            None => Err(job),
        }
    }

    /// Lets the threads finish their current request and exit; waits for them.
    pub fn join(mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
