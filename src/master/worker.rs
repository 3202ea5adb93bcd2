//! The master's view of one worker process: its pid, age, board slot, and what it has said
//! on its report pipe (`worker::report`): loaded, ready, or asking to be replaced.

use std::fs::File;
use std::io::{self, Read};
use std::time::Instant;

use nix::unistd::Pid;

use super::recycle::Reason;
use crate::config::{LOADED, READY, REPLACE_MAX_REQUESTS, REPLACE_STUCK};

pub struct Worker {
    pub pid: Pid,
    pub started: Instant,
    /// Its slot on the connection board.
    pub board_slot: usize,
    /// Open until end of file: the worker reports while it lives.
    report: Option<File>,
    /// It loaded the application: a later exit is not a failure to load.
    pub loaded: bool,
    pub ready: bool,
    /// It was told to stop (it was replaced, or wsgid is stopping); for a replaced worker,
    /// when it is killed if it has not exited.
    pub retiring: Option<Instant>,
    /// It asked to be replaced and has no successor yet.
    pub wants_replacement: Option<Reason>,
}

/// What a read of the report pipe brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct News {
    /// The worker became ready just now.
    pub ready: bool,
    /// It asks to be replaced.
    pub replace: Option<Reason>,
}

impl Worker {
    pub fn new(pid: Pid, report: Option<File>, board_slot: usize) -> Worker {
        Worker {
            pid,
            started: Instant::now(),
            board_slot,
            report,
            loaded: false,
            ready: false,
            retiring: None,
            wants_replacement: None,
        }
    }

    /// The report pipe, while it is open.
    pub fn report_pipe(&self) -> Option<&File> {
        self.report.as_ref()
    }

    /// Reads what the worker has written since the last call (the pipe is non-blocking).
    /// `who` names it in warnings.
    pub fn read_report(&mut self, who: &str) -> News {
        let mut news = News::default();
        let Some(pipe) = &mut self.report else {
            return news;
        };
        let mut bytes = [0u8; 64];
        loop {
            match pipe.read(&mut bytes) {
                Ok(0) => {
                    tracing::debug!("{who} closed its report pipe");
                    self.report = None;
                    return news;
                }
                Ok(n) => {
                    for &byte in &bytes[..n] {
                        match byte {
                            LOADED => self.loaded = true,
                            READY if !self.ready => {
                                self.loaded = true;
                                self.ready = true;
                                news.ready = true;
                            }
                            READY => {}
                            REPLACE_MAX_REQUESTS => news.replace = Some(Reason::MaxRequests),
                            REPLACE_STUCK => news.replace = Some(Reason::Stuck),
                            other => tracing::warn!(
                                "{who}: unexpected byte {other:#04x} on its report pipe"
                            ),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return news,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.report = None;
                    tracing::warn!("{who}: report pipe: {e}");
                    return news;
                }
            }
        }
    }
}
