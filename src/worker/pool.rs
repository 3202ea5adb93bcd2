//! The Python threads. Each attaches to the interpreter once for its whole life (its
//! thread state is made once), then lives in `lead::python_thread`, detached except while
//! it runs a request.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::lead::{self, Core};
use crate::python::App;

/// Starts `n` Python threads serving `core`.
pub fn start(n: usize, core: &Arc<Core>, app: Arc<App>) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::with_capacity(n);
    for i in 0..n {
        let core = core.clone();
        let app = app.clone();
        let t = std::thread::Builder::new()
            .name(format!("python-{i}"))
            .spawn(move || {
                // A thread state created and destroyed per request would cost an
                // mmap/munmap of its frame stack each time: attach once, and let
                // `App::run` re-attach to this same state for each request.
                crate::python::attached(|py| py.detach(|| lead::python_thread(core, &app)))
            })?;
        threads.push(t);
    }
    Ok(threads)
}
