//! Turns a request's CGI variables (already mapped by `crate::environ`) into the environ
//! dict: a copy of the app's prepared template (the `wsgi.*` keys that never change) plus
//! the per-request keys. Names are interned Python strings cached per thread, so a request
//! allocates only its values; values are latin-1 str (PEP 3333 "Unicode Issues").

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
use crate::worker::exchange::Exchange;

/// Interned keys and values every request uses.
pub struct Keys {
    input: Py<PyString>,
    errors: Py<PyString>,
    url_scheme: Py<PyString>,
    http: Py<PyString>,
    https: Py<PyString>,
}

impl Keys {
    pub fn new(py: Python<'_>) -> Keys {
        Keys {
            input: PyString::intern(py, "wsgi.input").unbind(),
            errors: PyString::intern(py, "wsgi.errors").unbind(),
            url_scheme: PyString::intern(py, "wsgi.url_scheme").unbind(),
            http: PyString::intern(py, "http").unbind(),
            https: PyString::intern(py, "https").unbind(),
        }
    }
}

/// At most this many distinct names are cached per thread (header names come from clients).
const NAME_CACHE: usize = 512;

type NameCache = HashMap<Box<[u8]>, Py<PyString>, foldhash::fast::RandomState>;

thread_local! {
    // Seeded per process: names come from clients (header names).
    static NAMES: RefCell<NameCache> = RefCell::new(NameCache::default());
}

fn name<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    NAMES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(s) = cache.get(b) {
            return Ok(s.bind(py).clone());
        }
        let s = latin1::to_str(py, b)?;
        // Interning makes dict lookups by the app's literal keys hit the pointer fast path.
        let s = PyString::intern(py, &s.to_string_lossy());
        if cache.len() < NAME_CACHE {
            cache.insert(b.into(), s.clone().unbind());
        }
        Ok(s)
    })
}

pub fn environ_dict<'py>(
    py: Python<'py>,
    app: &App,
    env: &Environ<'_>,
    ex: Arc<Exchange>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = app.template.bind(py).copy()?;
    for (k, v) in &env.vars {
        d.set_item(name(py, k)?, latin1::to_str(py, v)?)?;
    }
    let k = &app.keys;
    let scheme = if env.url_scheme == "https" {
        &k.https
    } else {
        &k.http
    };
    d.set_item(k.url_scheme.bind(py), scheme.bind(py))?;
    d.set_item(k.errors.bind(py), Bound::new(py, Errors::new(ex.clone()))?)?;
    d.set_item(
        k.input.bind(py),
        Bound::new(py, Input::new(ex, env.content_length))?,
    )?;
    Ok(d)
}
