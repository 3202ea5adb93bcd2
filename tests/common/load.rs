//! Continuous, bounded load: a few clients, each sending one request at a time on a new
//! connection until stopped, recording every answer that is not a 200 with when it came.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use super::fcgi::{self, Request};

pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    handles: Vec<thread::JoinHandle<Vec<(Instant, String)>>>,
}

impl Load {
    /// `clients` clients asking `uri` at `addr`.
    pub fn start(addr: &str, uri: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let handles = (0..clients)
            .map(|_| {
                let (addr, uri, stop, ok) =
                    (addr.to_string(), uri.to_string(), stop.clone(), ok.clone());
                thread::spawn(move || {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let asked = Instant::now();
                        let answer = std::panic::catch_unwind(|| {
                            let r = fcgi::request(&addr, &Request::get(&uri)).cgi();
                            (r.status, r.text())
                        });
                        match answer {
                            Ok((200, _)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok((status, body)) => {
                                failures.push((asked, format!("{status} {body}")))
                            }
                            Err(_) => failures.push((asked, "no answer".into())),
                        }
                    }
                    failures
                })
            })
            .collect();
        Load { stop, ok, handles }
    }

    /// Stops the clients: the requests answered 200, and the others with when each was
    /// sent.
    pub fn finish(self) -> (usize, Vec<(Instant, String)>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self
            .handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}
