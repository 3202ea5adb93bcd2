//! Turns a request's CGI variables (already mapped by `crate::environ`) into the environ
//! dict: a copy of the app's prepared template (the `wsgi.*` keys that never change) plus
//! the per-request keys. Names are interned Python strings cached per thread, so a request
//! allocates only its values; values are latin-1 str (PEP 3333 "Unicode Issues"). A front
//! end sends the same names in the same order request after request, so each thread also
//! remembers its last request's names by position: a name is then found with one comparison
//! rather than a hash lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::errors::Errors;
use super::input::Input;
use super::latin1;
use super::App;
use crate::environ::Environ;
use crate::protocol::Role;
use crate::worker::exchange::Exchange;

/// Interned keys and values every request uses.
pub struct Keys {
    input: Py<PyString>,
    errors: Py<PyString>,
    url_scheme: Py<PyString>,
    http: Py<PyString>,
    https: Py<PyString>,
    role: Py<PyString>,
    authorizer: Py<PyString>,
}

impl Keys {
    pub fn new(py: Python<'_>) -> Keys {
        Keys {
            input: PyString::intern(py, "wsgi.input").unbind(),
            errors: PyString::intern(py, "wsgi.errors").unbind(),
            url_scheme: PyString::intern(py, "wsgi.url_scheme").unbind(),
            http: PyString::intern(py, "http").unbind(),
            https: PyString::intern(py, "https").unbind(),
            role: PyString::intern(py, "wsgid.role").unbind(),
            authorizer: PyString::intern(py, Role::Authorizer.as_str()).unbind(),
        }
    }
}

/// At most this many distinct names are cached per thread (header names come from clients).
const NAME_CACHE: usize = 512;
/// At most this many positions are remembered from the last request.
const RECENT: usize = 128;

type NameCache = HashMap<Box<[u8]>, Py<PyString>, foldhash::fast::RandomState>;

#[derive(Default)]
struct Names {
    // Seeded per process: names come from clients (header names).
    cache: NameCache,
    /// The names of this thread's last request, by position.
    recent: Vec<(Box<[u8]>, Py<PyString>)>,
}

thread_local! {
    static NAMES: RefCell<Names> = RefCell::new(Names::default());
}

impl Names {
    /// The key for name `b`, the `i`th variable of the request.
    fn get<'py>(&mut self, py: Python<'py>, i: usize, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
        if let Some((n, s)) = self.recent.get(i) {
            if **n == *b {
                return Ok(s.bind(py).clone());
            }
        }
        let s = match self.cache.get(b) {
            Some(s) => s.bind(py).clone(),
            None => {
                let s = latin1::to_str(py, b)?;
                // Interning makes dict lookups by the app's literal keys hit the pointer
                // fast path.
                let s = PyString::intern(py, &s.to_string_lossy());
                if self.cache.len() < NAME_CACHE {
                    self.cache.insert(b.into(), s.clone().unbind());
                }
                s
            }
        };
        let entry = (b.into(), s.clone().unbind());
        if i < self.recent.len() {
            self.recent[i] = entry;
        } else if i == self.recent.len() && i < RECENT {
            self.recent.push(entry);
        }
        Ok(s)
    }
}

/// The request's environ dict, and its `wsgi.errors` stream (to flush when the request ends).
pub fn environ_dict<'py>(
    py: Python<'py>,
    app: &App,
    env: &Environ<'_>,
    ex: Arc<Exchange>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, Errors>)> {
    let d = app.template.bind(py).copy()?;
    // Nothing below runs Python code (str keys and values), so the borrow is never re-entered.
    NAMES.with(|names| -> PyResult<()> {
        let mut names = names.borrow_mut();
        for (i, (k, v)) in env.vars.iter().enumerate() {
            d.set_item(names.get(py, i, k)?, latin1::to_str(py, v)?)?;
        }
        Ok(())
    })?;
    let k = &app.keys;
    let scheme = if env.url_scheme == "https" {
        &k.https
    } else {
        &k.http
    };
    d.set_item(k.url_scheme.bind(py), scheme.bind(py))?;
    // The template says "responder".
    if ex.role() == Role::Authorizer {
        d.set_item(k.role.bind(py), k.authorizer.bind(py))?;
    }
    let errors = Bound::new(py, Errors::new(ex.clone()))?;
    d.set_item(k.errors.bind(py), &errors)?;
    d.set_item(
        k.input.bind(py),
        Bound::new(py, Input::new(ex, env.content_length))?,
    )?;
    Ok((d, errors))
}
