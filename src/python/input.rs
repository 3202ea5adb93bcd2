//! `wsgi.input` (PEP 3333 "Input and Error Streams"): read(size), read(), readline(limit),
//! readlines(hint) and iteration over the request body, never past CONTENT_LENGTH, ending
//! at the end of FCGI_STDIN when the length is unknown (so `wsgi.input_terminated` holds).
//! Body bytes arrive from the reactor through the request's exchange; every wait for
//! them happens detached from the interpreter.

use std::sync::Arc;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::worker::exchange::{Abort, Exchange, Input as Got};

/// Largest single pull from the exchange.
const PULL: usize = 64 * 1024;

pyo3::create_exception!(
    wsgid,
    ClientDisconnected,
    PyOSError,
    "Raised by wsgi.input when the front end closed the connection, or aborted the request, \
     before the body was read: the client went away. An OSError, so applications that \
     handle failed reads keep doing so."
);

/// The exception a read raises when the body can no longer arrive.
fn unavailable(py: Python<'_>, ex: &Exchange, a: Abort) -> PyErr {
    match a {
        Abort::RequestTimeout => super::timeout::raised_here(py, ex, "reading the request body"),
        Abort::Disconnected | Abort::Requested => ClientDisconnected::new_err(format!(
            "request body unavailable: the client went away ({})",
            a.reason()
        )),
        _ => PyOSError::new_err(format!("request body unavailable: {}", a.reason())),
    }
}

/// The client's disconnect, if `e` comes from one: a `ClientDisconnected` raised by
/// wsgi.input, itself or as the cause or context of what the application raised (Django
/// turns a failed read into `UnreadablePostError ... from e`). Its message, when so.
pub fn client_went_away(py: Python<'_>, e: &PyErr) -> Option<String> {
    let mut v = e.value(py).clone().into_any();
    // Bounded: a chain can loop back on itself.
    for _ in 0..16 {
        if v.is_instance_of::<ClientDisconnected>() {
            return Some(v.str().map_or_else(|_| String::new(), |s| s.to_string()));
        }
        let linked = |name: &str| v.getattr(name).ok().filter(|l| !l.is_none());
        v = linked("__cause__").or_else(|| linked("__context__"))?;
    }
    None
}

#[pyclass(module = "wsgid")]
pub struct Input {
    ex: Arc<Exchange>,
    /// Bytes still allowed by CONTENT_LENGTH; None = unknown length.
    remaining: Option<u64>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Input {
    pub fn new(ex: Arc<Exchange>, content_length: Option<u64>) -> Input {
        Input {
            ex,
            remaining: content_length,
            buf: Vec::new(),
            pos: 0,
            eof: content_length == Some(0),
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Makes at least one unread byte available; false at the end of the body.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        if self.pos < self.buf.len() {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        let max = match self.remaining {
            Some(0) => {
                self.eof = true;
                return Ok(false);
            }
            Some(r) => (r.min(PULL as u64)) as usize,
            None => PULL,
        };
        let ex = self.ex.clone();
        match py.detach(move || ex.read_input(max)) {
            Got::Data(d) => {
                if let Some(r) = self.remaining.as_mut() {
                    *r = r.saturating_sub(d.len() as u64);
                }
                self.buf = d;
                self.pos = 0;
                Ok(true)
            }
            Got::Eof => {
                self.eof = true;
                Ok(false)
            }
            Got::Aborted(a) => Err(unavailable(py, &self.ex, a)),
        }
    }

    /// Reads up to `n` bytes (all that is left when `n` is None), blocking until that many
    /// arrive or the body ends, into one `bytes` object. The chunks it spans are gathered
    /// and copied once, straight into the object, with no intermediate buffer (a 64 KiB
    /// read usually spans two of nginx's 32 KiB FastCGI records).
    fn read_bytes<'py>(
        &mut self,
        py: Python<'py>,
        n: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        // Chunks consumed to their end, each with the offset its unread part started at.
        let mut whole: Vec<(Vec<u8>, usize)> = Vec::new();
        // The last chunk's part, when the read ends inside it (it stays in `buf`).
        let mut tail = 0..0;
        let mut total = 0usize;
        loop {
            let want = match n {
                Some(n) => n - total,
                None => usize::MAX,
            };
            if want == 0 || !self.fill(py)? {
                break;
            }
            let avail = self.buf.len() - self.pos;
            if want >= avail {
                whole.push((std::mem::take(&mut self.buf), self.pos));
                self.pos = 0;
                total += avail;
            } else {
                tail = self.pos..self.pos + want;
                self.pos += want;
                total += want;
                break;
            }
        }
        let pieces = whole
            .iter()
            .map(|(chunk, from)| &chunk[*from..])
            .chain(std::iter::once(&self.buf[tail]));
        gather(py, total, pieces)
    }

    fn read_line(&mut self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let want = match limit {
                Some(l) => l - out.len(),
                None => usize::MAX,
            };
            if want == 0 || !self.fill(py)? {
                return Ok(out);
            }
            let avail = self.buffered();
            let scan = &avail[..avail.len().min(want)];
            if let Some(i) = scan.iter().position(|&b| b == b'\n') {
                out.extend_from_slice(&scan[..=i]);
                self.pos += i + 1;
                return Ok(out);
            }
            out.extend_from_slice(scan);
            self.pos += scan.len();
        }
    }
}

/// A new `bytes` object of `total` bytes, copied from `pieces` (which hold exactly that
/// many). `PyBytes::new_with` would zero the buffer first: one more pass over every byte.
fn gather<'py, 'a>(
    py: Python<'py>,
    total: usize,
    pieces: impl Iterator<Item = &'a [u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    if total == 0 {
        return Ok(PyBytes::new(py, b""));
    }
    let len = isize::try_from(total).map_err(|_| PyOSError::new_err("read too large"))?;
    // SAFETY: PyO3 FFI, attached (`py`). With a NULL source, `PyBytes_FromStringAndSize`
    // returns a new reference to a bytes object of `len` uninitialised bytes (plus the
    // terminating NUL it writes itself), or NULL with an exception set, which
    // `from_owned_ptr_or_err` turns into an error. Nobody else holds the object yet.
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len),
        )?
    };
    // The buffer is uninitialised: written through a raw pointer, never borrowed as a
    // slice, and only within `total` bytes.
    // SAFETY: `obj` is a bytes object, ours alone; `PyBytes_AsString` points at its buffer.
    let dst = unsafe { pyo3::ffi::PyBytes_AsString(obj.as_ptr()) }.cast::<u8>();
    let mut at = 0usize;
    for piece in pieces {
        if piece.len() > total - at {
            return Err(PyOSError::new_err(
                "request body pieces outgrew their total",
            ));
        }
        // SAFETY: `at + piece.len() <= total` (checked above), so the destination lies in
        // the object's buffer; a Python-owned buffer and a Rust slice cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(piece.as_ptr(), dst.add(at), piece.len()) };
        at += piece.len();
    }
    if at != total {
        return Err(PyOSError::new_err(
            "request body pieces fell short of their total",
        ));
    }
    Ok(obj.cast_into::<PyBytes>()?)
}

/// Python's convention: None or a negative size means "no limit".
fn size_arg(size: Option<i64>) -> Option<usize> {
    match size {
        Some(s) if s >= 0 => Some(s as usize),
        _ => None,
    }
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        self.read_bytes(py, size_arg(size))
    }

    #[pyo3(signature = (size = None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<i64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.read_line(py, size_arg(size))?;
        Ok(PyBytes::new(py, &line))
    }

    /// Lines until the end of the body, stopping once their total size reaches `hint`.
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0usize;
        loop {
            let line = self.read_line(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        if line.is_empty() {
            Ok(None)
        } else {
            Ok(Some(PyBytes::new(py, &line)))
        }
    }
}
