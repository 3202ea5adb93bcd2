//! Runs one request on a Python thread: builds the environ, calls the app, sends what it
//! returns, and always calls the iterable's close() (on success, on app error, on abort).
//! An exception before any body byte went out becomes a 500 with a short body and the
//! traceback in the log only; after that, the response is cut off as an error.

use std::os::fd::BorrowedFd;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::file_wrapper::FileWrapper;
use super::respond::{Responder, Stopped};
use super::App;
use crate::worker::exchange::{Abort, Ending};

/// Why sending a response stopped early.
pub enum Failure {
    App(PyErr),
    Stopped(Abort),
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Failure {
        Failure::App(e)
    }
}

impl From<Stopped> for Failure {
    fn from(s: Stopped) -> Failure {
        Failure::Stopped(s.0)
    }
}

const FILE_CHUNK: usize = 256 * 1024;

impl App {
    /// Calls the app and sends its response; `responder` carries the exchange.
    pub(super) fn respond(
        &self,
        py: Python<'_>,
        environ: Bound<'_, PyAny>,
        responder: &Bound<'_, Responder>,
    ) {
        let start_response = match responder.getattr(intern!(py, "start_response")) {
            Ok(s) => s,
            Err(e) => return self.failed(py, responder, Failure::App(e)),
        };
        let callable = self.callable_for(responder.borrow().ex.role());
        let result = match callable.bind(py).call1((environ, start_response)) {
            Ok(r) => r,
            Err(e) => return self.failed(py, responder, Failure::App(e)),
        };
        let outcome = self.consume(py, &result, responder);
        if let Err(Failure::Stopped(Abort::RequestTimeout)) = &outcome {
            // Stopped inside wsgid (a wait for room): the exception the reactor may have
            // left pending would go off in close().
            super::timeout::disarm(py, &responder.borrow().ex);
        }
        // PEP 3333: close() must be called whatever happened.
        let closed = close(py, &result);
        match (outcome, closed) {
            (Ok(()), Ok(())) => self.finished(py, responder),
            (Ok(()), Err(e)) | (Err(Failure::App(e)), _) => {
                self.failed(py, responder, Failure::App(e))
            }
            (Err(stop @ Failure::Stopped(_)), closed) => {
                if let Err(e) = closed {
                    self.log_exception(py, responder, &e);
                }
                self.failed(py, responder, stop)
            }
        }
    }

    fn consume(
        &self,
        py: Python<'_>,
        result: &Bound<'_, PyAny>,
        responder: &Bound<'_, Responder>,
    ) -> Result<(), Failure> {
        // A list or tuple: every block is there already, so send headers, body and the end
        // of the response in one piece (one note to the reactor, one write).
        if let Ok(list) = result.cast::<PyList>() {
            return self.whole(responder, list.iter());
        }
        if let Ok(t) = result.cast::<PyTuple>() {
            return self.whole(responder, t.iter());
        }
        if let Ok(fw) = result.cast::<FileWrapper>() {
            if self.stream_file(py, &fw.borrow(), responder)? {
                return Ok(());
            }
        }
        for item in result.try_iter()? {
            let item = item?;
            let chunk = item.cast::<PyBytes>().map_err(|_| not_bytes(&item))?;
            let mut r = responder.borrow_mut();
            if r.head.is_none() && !chunk.as_bytes().is_empty() {
                return Err(no_start_response());
            }
            r.send(py, chunk.as_bytes())?;
        }
        Ok(())
    }

    fn whole<'py>(
        &self,
        responder: &Bound<'py, Responder>,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
    ) -> Result<(), Failure> {
        // One block (the usual case) is framed straight from its `bytes`; more are joined.
        let mut first: Option<Bound<'py, PyBytes>> = None;
        let mut joined: Vec<u8> = Vec::new();
        for (k, item) in items.enumerate() {
            let chunk = item
                .cast_into::<PyBytes>()
                .map_err(|e| not_bytes(&e.into_inner()))?;
            match (k, &first) {
                (0, _) => first = Some(chunk),
                (1, Some(f)) => {
                    joined.extend_from_slice(f.as_bytes());
                    joined.extend_from_slice(chunk.as_bytes());
                }
                _ => joined.extend_from_slice(chunk.as_bytes()),
            }
        }
        let body: &[u8] = match &first {
            Some(f) if joined.is_empty() => f.as_bytes(),
            _ => &joined,
        };
        let mut r = responder.borrow_mut();
        if r.head.is_none() {
            return Err(no_start_response());
        }
        if let Some(a) = r.ex.aborted() {
            return Err(Failure::Stopped(a));
        }
        r.finish_whole(body);
        Ok(())
    }

    /// Streams a real file straight from its descriptor, from its current position, or
    /// hands it to the front end when offload is configured and allows it. Ok(false) when
    /// the object is not a regular file with a descriptor.
    fn stream_file(
        &self,
        py: Python<'_>,
        fw: &FileWrapper,
        responder: &Bound<'_, Responder>,
    ) -> Result<bool, Failure> {
        let f = fw.filelike.bind(py);
        let fd: i32 = match f.call_method0("fileno").and_then(|r| r.extract()) {
            Ok(fd) if fd >= 0 => fd,
            // No descriptor (a closed socket's fileno() is -1): served by iteration.
            _ => return Ok(false),
        };
        // Stream from a descriptor of our own: while this thread is detached, another thread
        // (or the iterable's close() on a file object shared by two requests) may close the
        // file object's descriptor, and its number may then be reused by a file or socket
        // opened meanwhile. A duplicate keeps pointing at the file the app returned.
        // SAFETY: `fd` is not negative, and is borrowed only for the duplication on this
        // line, which reads nothing through it: a number that is no longer open (another
        // thread may have closed it since fileno() returned) makes the dup fail with EBADF,
        // and the file is then served by iteration.
        let own = match unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() {
            Ok(own) => own,
            Err(_) => return Ok(false),
        };
        let st = match nix::sys::stat::fstat(&own) {
            Ok(st) if (st.st_mode & libc::S_IFMT) == libc::S_IFREG => st,
            _ => return Ok(false),
        };
        let mut pos: i64 = f.call_method0("tell")?.extract()?;
        if responder.borrow().head.is_none() {
            return Err(no_start_response());
        }
        if let Some(off) = &self.offload {
            if offload(py, off, &own, &st, pos, responder)? {
                return Ok(true);
            }
        }
        let mut buf = vec![0u8; FILE_CHUNK];
        loop {
            {
                let r = responder.borrow();
                if r.content_length.is_some_and(|cl| r.written >= cl) {
                    break;
                }
            }
            let own_ref = &own;
            let (res, back) = py.detach(move || {
                let r = nix::sys::uio::pread(own_ref, &mut buf, pos);
                (r, buf)
            });
            buf = back;
            let n = res.map_err(|e| {
                pyo3::exceptions::PyOSError::new_err(format!("reading the wrapped file: {e}"))
            })?;
            if n == 0 {
                break;
            }
            pos += n as i64;
            responder.borrow_mut().send(py, &buf[..n])?;
        }
        // Leave the file where a read() loop would have left it.
        let _ = f.call_method1("seek", (pos,));
        Ok(true)
    }

    /// The iterable was consumed and closed: send what is left and end the request.
    fn finished(&self, py: Python<'_>, responder: &Bound<'_, Responder>) {
        let mut r = responder.borrow_mut();
        if let Some(a) = r.ex.aborted() {
            drop(r);
            return self.stopped(responder, a);
        }
        if r.head.is_none() {
            // Ended with no start_response at all.
            drop(r);
            return self.failed(py, responder, Failure::App(no_start_response_err()));
        }
        if r.ex.is_finished() {
            return;
        }
        if let Some(cl) = r.content_length {
            if r.written < cl && r.sent {
                tracing::warn!(
                    request = %r.ex.ident(),
                    content_length = cl,
                    sent = r.written,
                    "the app sent less than its Content-Length"
                );
            }
        }
        r.finish_whole(&[]);
    }

    fn failed(&self, py: Python<'_>, responder: &Bound<'_, Responder>, why: Failure) {
        match why {
            Failure::Stopped(a) => self.stopped(responder, a),
            Failure::App(e) => {
                self.log_exception(py, responder, &e);
                let r = responder.borrow();
                if r.ex.is_finished() {
                    return;
                }
                if r.sent {
                    // Headers and part of the body are out: the front end must see a
                    // broken response, not a complete one.
                    r.ex.finish_with(Ending::Broken, |_| {});
                    return;
                }
                let (status, text) = match r.ex.input_error() {
                    Some(Abort::BodyTooLarge) => {
                        ("413 Content Too Large", "Request body too large\n")
                    }
                    Some(Abort::ReadTimeout) => ("408 Request Timeout", "Request body timed out\n"),
                    _ => ("500 Internal Server Error", "Internal Server Error\n"),
                };
                r.ex.answer(status, text);
            }
        }
    }

    /// The front end aborted or went away: end the request (`Exchange::end_stopped`).
    fn stopped(&self, responder: &Bound<'_, Responder>, why: Abort) {
        let r = responder.borrow();
        tracing::info!(request = %r.ex.ident(), "request stopped: {}", why.reason());
        if r.ex.is_finished() {
            return;
        }
        r.ex.end_stopped();
    }

    fn log_exception(&self, py: Python<'_>, responder: &Bound<'_, Responder>, e: &PyErr) {
        let ex = responder.borrow().ex.clone();
        if super::timeout::is_timeout(py, e) {
            // The reactor logged the timeout and answered; where the application was
            // interrupted is what is left to say.
            tracing::warn!(
                request = %ex.ident(),
                "request stopped by request_timeout; the application was interrupted:\n{}",
                super::app::format_exception(py, e)
            );
            return;
        }
        // The client going away is no fault of the application's: no traceback.
        if let Some(why) = super::input::client_went_away(py, e) {
            let raised = e
                .get_type(py)
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            tracing::info!(request = %ex.ident(), "client went away: {why}; the application stopped with {raised}");
            return;
        }
        tracing::error!(request = %ex.ident(), "application error:\n{}", super::app::format_exception(py, e));
    }
}

/// Hands the file open on `own` (whose `fstat` is `st`, read from `pos`) to the front end,
/// when `crate::offload`'s rules allow: the response goes out with the header and an empty
/// body. Ok(false) when the file is to be served by wsgid instead.
fn offload(
    py: Python<'_>,
    off: &crate::offload::Offloader,
    own: &std::os::fd::OwnedFd,
    st: &nix::sys::stat::FileStat,
    pos: i64,
    responder: &Bound<'_, Responder>,
) -> Result<bool, Failure> {
    use std::os::fd::AsFd;
    let decided = allowed(&responder.borrow(), pos, st.st_size);
    let decided = decided.and_then(|()| {
        // Two system calls on the file's path, which may be on a slow file system.
        let fd = own.as_fd();
        py.detach(|| crate::offload::file_path(fd, st))
            .and_then(|path| off.header(&path))
    });
    let mut r = responder.borrow_mut();
    match decided {
        Ok((name, value)) => {
            if let Some(a) = r.ex.aborted() {
                return Err(Failure::Stopped(a));
            }
            tracing::debug!(request = %r.ex.ident(), "file offloaded: {name}: {value}");
            let head =
                crate::offload::offloaded_head(r.head.as_deref().unwrap_or_default(), name, &value);
            r.head = Some(head);
            r.content_length = None;
            r.finish_whole(&[]);
            Ok(true)
        }
        Err(why) => {
            tracing::debug!(request = %r.ex.ident(), "file not offloaded: {}", why.reason());
            Ok(false)
        }
    }
}

/// Whether the response as the app started it may become an offload header (the file's
/// path aside): see `crate::offload`.
fn allowed(r: &Responder, pos: i64, size: i64) -> Result<(), crate::offload::Kept> {
    use crate::offload::Kept;
    crate::offload::check_head(r.head.as_deref().unwrap_or_default())?;
    if r.sent {
        return Err(Kept::Started);
    }
    if pos != 0 {
        return Err(Kept::Position);
    }
    match r.content_length {
        Some(cl) if i64::try_from(cl).ok() != Some(size) => Err(Kept::ContentLength),
        _ => Ok(()),
    }
}

/// Calls the iterable's close(), if it has one. A plain list or tuple (what most small
/// responses are) has none: looking for it would raise and discard an AttributeError.
fn close(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<()> {
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    match result.getattr_opt(intern!(py, "close"))? {
        Some(close) => close.call0().map(|_| ()),
        None => Ok(()),
    }
}

/// PEP 3333: the app's blocks must be bytes.
fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(format!(
        "the app yielded {} where bytes are required (PEP 3333)",
        item.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    ))
}

fn no_start_response_err() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(
        "the app returned a body without calling start_response()",
    )
}

fn no_start_response() -> Failure {
    Failure::App(no_start_response_err())
}
