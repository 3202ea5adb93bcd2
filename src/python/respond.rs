//! `start_response` and the `write()` callable (PEP 3333 "The start_response() Callable"),
//! and the response state they share with the request runner: status and header
//! validation, exc_info semantics, headers held back until the first non-empty body chunk,
//! and Content-Length honoured (nothing past the declared length is sent).

use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::worker::exchange::{Abort, Exchange};

#[pyclass(module = "wsgid")]
pub struct Responder {
    /// The request, its framing included.
    pub ex: Arc<Exchange>,
    /// The rendered CGI header block, once start_response was called.
    pub head: Option<Vec<u8>>,
    /// The header block went out with a body chunk.
    pub sent: bool,
    pub content_length: Option<u64>,
    pub written: u64,
    pub truncated: bool,
}

/// A request stopped producing output: the client went away or the front end aborted.
pub struct Stopped(pub Abort);

impl Responder {
    pub fn new(ex: Arc<Exchange>) -> Responder {
        Responder {
            ex,
            head: None,
            sent: false,
            content_length: None,
            written: 0,
            truncated: false,
        }
    }

    /// The part of `data` allowed by Content-Length.
    fn allowed<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let Some(cl) = self.content_length else {
            return data;
        };
        let left = cl.saturating_sub(self.written);
        if (data.len() as u64) <= left {
            return data;
        }
        if !self.truncated {
            self.truncated = true;
            tracing::warn!(
                request = %self.ex.ident(),
                content_length = cl,
                "the app sent more than its Content-Length; the excess is dropped"
            );
        }
        &data[..left as usize]
    }

    /// Sends one body chunk (with the header block before the first non-empty one).
    /// Blocks, detached from the interpreter, while the output buffer is full.
    pub fn send(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), Stopped> {
        let data = self.allowed(data);
        if data.is_empty() {
            return Ok(());
        }
        let framing = self.ex.framing();
        let head = if self.sent {
            None
        } else {
            self.head.as_deref()
        };
        let full = self
            .ex
            .append(|out| framing.head_and_body(head, data, out))
            .map_err(Stopped)?;
        self.sent = true;
        self.written += data.len() as u64;
        if full {
            let ex = self.ex.clone();
            py.detach(move || ex.wait_room()).map_err(Stopped)?;
        }
        Ok(())
    }

    /// The header block and `body`, then the end of the response, in one piece (the path
    /// for responses whose whole body is known up front, e.g. a list of bytes).
    pub fn finish_whole(&mut self, body: &[u8]) {
        let body = self.allowed(body);
        let framing = self.ex.framing();
        let head = if self.sent {
            None
        } else {
            self.head.as_deref()
        };
        self.ex
            .finish_with(crate::worker::exchange::Ending::Complete, |out| {
                framing.head_and_body(head, body, out);
                framing.end(0, out);
            });
        self.sent = true;
    }
}

fn latin1<'a>(s: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a [u8]> {
    let s = s
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str")))?;
    super::latin1::as_bytes(s).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{what} must be latin-1 (PEP 3333): {:?}",
            s.to_string_lossy()
        ))
    })
}

/// RFC 9110 token characters, for header names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn no_ctl(v: &[u8], what: &str) -> PyResult<()> {
    if v.iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(PyValueError::new_err(format!(
            "{what} contains a control character (CR, LF, NUL...)"
        )));
    }
    Ok(())
}

/// Renders "Status: ...\r\nName: value\r\n...\r\n" after validating every part.
fn render_head(
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
) -> PyResult<(Vec<u8>, Option<u64>)> {
    let status = latin1(status, "status")?;
    no_ctl(status, "status")?;
    let ok = status.len() >= 5
        && status[..3].iter().all(u8::is_ascii_digit)
        && status[0] != b'0'
        && status[3] == b' ';
    if !ok {
        return Err(PyValueError::new_err(format!(
            "status must be a 3-digit code, a space and a reason phrase: {:?}",
            String::from_utf8_lossy(status)
        )));
    }
    let list = headers
        .cast::<PyList>()
        .map_err(|_| PyTypeError::new_err("response_headers must be a list (PEP 3333)"))?;
    let mut head = Vec::with_capacity(64 + list.len() * 32);
    head.extend_from_slice(b"Status: ");
    head.extend_from_slice(status);
    head.extend_from_slice(b"\r\n");
    let mut content_length = None;
    for item in list.iter() {
        let t = item
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("each header must be a (name, value) tuple"))?;
        if t.len() != 2 {
            return Err(PyTypeError::new_err(
                "each header must be a (name, value) tuple",
            ));
        }
        let (name_obj, value_obj) = (t.get_item(0)?, t.get_item(1)?);
        let name = latin1(&name_obj, "header name")?;
        let value = latin1(&value_obj, "header value")?;
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(PyValueError::new_err(format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(name)
            )));
        }
        if name.eq_ignore_ascii_case(b"status") {
            return Err(PyValueError::new_err(
                "a header named Status is not allowed",
            ));
        }
        no_ctl(value, "header value")?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| PyValueError::new_err("Content-Length must be a number"))?;
            content_length = Some(v);
        }
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Ok((head, content_length))
}

#[pymethods]
impl Responder {
    /// PEP 3333 start_response(status, response_headers, exc_info=None) -> write.
    #[pyo3(signature = (status, response_headers, exc_info = None))]
    fn start_response<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        response_headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let mut me = slf.borrow_mut();
            match exc_info {
                Some(info) => {
                    if me.sent {
                        // Headers are out: re-raise the app's exception (PEP 3333).
                        let value = info.get_item(1)?;
                        let tb = info.get_item(2)?;
                        let exc = value.call_method1("with_traceback", (tb,))?;
                        return Err(PyErr::from_value(exc));
                    }
                }
                None => {
                    if me.head.is_some() {
                        return Err(PyRuntimeError::new_err(
                            "start_response called a second time without exc_info",
                        ));
                    }
                }
            }
            let (head, cl) = render_head(status, response_headers)?;
            me.head = Some(head);
            me.content_length = cl;
        }
        slf.getattr(pyo3::intern!(slf.py(), "write"))
    }

    /// The write() callable returned by start_response.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.head.is_none() {
            return Err(PyRuntimeError::new_err(
                "write() called before start_response()",
            ));
        }
        let bytes = data
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("write() needs bytes"))?;
        self.send(py, bytes.as_bytes())
            .map_err(|Stopped(a)| match a {
                Abort::RequestTimeout => {
                    super::timeout::raised_here(py, &self.ex, "writing the response")
                }
                _ => PyOSError::new_err(format!("cannot write: {}", a.reason())),
            })
    }
}
