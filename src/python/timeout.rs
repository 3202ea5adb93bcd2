//! `wsgid.RequestTimeout`: the exception a request past `request_timeout` gets in its
//! Python thread, raised there from the reactor with `PyThreadState_SetAsyncExc`.
//!
//! CPython delivers such an exception only when the thread next runs bytecode: a thread
//! blocked in C (`time.sleep`, a socket read in an extension) sees it when that call
//! returns. A thread waiting inside wsgid (for body bytes, or for the front end to take
//! output) is woken by the reactor instead, and the call it waits in raises
//! `RequestTimeout` itself; the exception left pending by the reactor is then cleared, so
//! the application sees it once. Whatever is still pending when the request ends is
//! cleared too: it must not hit the thread's next request.
//!
//! Who may interrupt and who is running are decided with the interpreter attached on both
//! sides (`Exchange::runner`, `Exchange::mark_interrupted`): the reactor never interrupts a
//! thread that has moved on to another request.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::worker::exchange::Exchange;

pyo3::create_exception!(
    wsgid,
    RequestTimeout,
    pyo3::exceptions::PyBaseException,
    "Raised in a request's thread when the request has run past wsgid's request_timeout: \
     the front end got 504 Gateway Timeout (or, if the response had started, a cut-off \
     response). A BaseException, like KeyboardInterrupt, so that `except Exception:` does \
     not swallow it; clean up in `finally:` and let it propagate."
);

/// The calling thread's id, as CPython's thread states record it.
// `c_ulong` is u32 on some targets.
#[allow(clippy::useless_conversion)]
pub fn thread_ident() -> u64 {
    // SAFETY: PyThread_get_thread_ident only reads the calling thread's id (pthread_self);
    // it needs no thread state and no lock.
    u64::from(unsafe { pyo3::ffi::PyThread_get_thread_ident() })
}

/// Sets (`exc` a type object) or clears (`exc` null) the exception pending for thread
/// `thread`.
fn set_async_exc(_py: Python<'_>, thread: u64, exc: *mut pyo3::ffi::PyObject) {
    // SAFETY: attached to the interpreter (`_py`), which PyThreadState_SetAsyncExc requires.
    // `exc` is null or an exception type object kept alive by its `PyOnceLock` for the
    // interpreter's life; the call takes its own reference. The id is `unsigned long` in
    // CPython; pyo3-ffi declares it `long`, of the same width, so the cast keeps its bits.
    // An id no thread state has is no error: nothing is changed.
    unsafe {
        pyo3::ffi::PyThreadState_SetAsyncExc(thread as std::ffi::c_long, exc);
    }
}

/// Raises `RequestTimeout` in the threads still running these requests (once the reactor
/// has timed them out). A request not started yet, or already left by its thread, is
/// skipped; so is one whose thread raised or was sent the exception already. Attaches for
/// it, so waits for the interpreter: the caller holds no lock that a thread holding the
/// interpreter may wait on.
pub fn interrupt(requests: &[Arc<Exchange>]) {
    Python::attach(|py| {
        let exc = py.get_type::<RequestTimeout>();
        for ex in requests {
            let thread = ex.runner();
            if thread == 0 || ex.mark_interrupted() {
                continue;
            }
            set_async_exc(py, thread, exc.as_ptr());
        }
    })
}

/// The calling thread is about to raise `RequestTimeout` itself (from a wait inside wsgid
/// that the timeout ended), or has stopped the response for it: the exception the reactor
/// may have left pending would come a second time, at the next bytecode. Clears it, and
/// keeps the reactor from sending one later.
pub fn disarm(py: Python<'_>, ex: &Exchange) {
    if ex.mark_interrupted() {
        set_async_exc(py, thread_ident(), std::ptr::null_mut());
    }
}

/// The `RequestTimeout` a wait inside wsgid raises when the timeout ended it.
pub fn raised_here(py: Python<'_>, ex: &Exchange, during: &str) -> PyErr {
    disarm(py, ex);
    RequestTimeout::new_err(format!(
        "the request ran past request_timeout (while {during})"
    ))
}

/// The calling thread starts running `ex` (with `request_timeout` set).
pub fn start(_py: Python<'_>, ex: &Exchange) {
    ex.set_runner(thread_ident());
}

/// The calling thread is done with `ex`: from now on the reactor leaves it alone, and an
/// exception it left pending is cleared.
pub fn done(py: Python<'_>, ex: &Exchange) {
    ex.set_runner(0);
    if ex.interrupted() {
        set_async_exc(py, thread_ident(), std::ptr::null_mut());
    }
}

/// Whether `e` is `RequestTimeout`.
pub fn is_timeout(py: Python<'_>, e: &PyErr) -> bool {
    e.is_instance_of::<RequestTimeout>(py)
}
