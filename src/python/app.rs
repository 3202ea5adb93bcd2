//! Loading the WSGI application (`module:callable`, or a `.py`/`.wsgi` file whose
//! `application` — or `path.py:name` — is served), and the callable that answers FastCGI
//! AUTHORIZER requests when it is another one, and the per-request entry point the Python
//! threads call.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::environ::{environ_dict, Keys};
use super::respond::Responder;
use crate::config::Settings;
use crate::protocol::Role;
use crate::worker::exchange::{Exchange, Job};

thread_local! {
    /// The variable list of this thread's last request, emptied, for its next one.
    static SPARE_VARS: Cell<Vec<crate::environ::Var<'static>>> = const { Cell::new(Vec::new()) };
}

pub struct App {
    pub(super) callable: Py<PyAny>,
    /// What answers AUTHORIZER requests when it is not `callable` (`authorizer`).
    authorizer: Option<Py<PyAny>>,
    /// The environ keys that are the same for every request.
    pub(super) template: Py<PyDict>,
    pub(super) keys: Keys,
    mount: String,
    /// `request_timeout` is set: each request records the thread running it.
    timed: bool,
    /// File responses handed to the front end, when configured.
    pub(super) offload: Option<crate::offload::Offloader>,
    /// Whose `X-Forwarded-*` headers are applied; None when nobody's, so a request then
    /// does no work for them at all.
    trusted_proxies: Option<crate::config::TrustedProxies>,
}

impl App {
    /// Imports the app. Err carries a message with the Python traceback.
    pub fn load(settings: &Settings) -> Result<App, String> {
        Python::attach(|py| {
            let load = |spec: &str| {
                let callable = import_app(py, spec)?;
                if callable.is_callable() {
                    Ok(callable.unbind())
                } else {
                    Err(format!("{spec:?} is not callable"))
                }
            };
            let callable = load(&settings.app)?;
            let authorizer = settings.authorizer.as_deref().map(load).transpose()?;
            let template = make_template(py, settings).map_err(|e| format_exception(py, &e))?;
            Ok(App {
                callable,
                authorizer,
                template: template.unbind(),
                keys: Keys::new(py),
                mount: settings.mount.clone(),
                timed: settings.timeouts.request_ms.is_some(),
                offload: crate::offload::Offloader::new(
                    &settings.offload,
                    settings.privileges.chroot.as_deref(),
                ),
                trusted_proxies: (!settings.trusted_proxies.is_empty())
                    .then(|| settings.trusted_proxies.clone()),
            })
        })
    }

    /// Runs one request to completion (called on a Python thread, detached).
    pub fn run(&self, job: Job) {
        let Job {
            exchange,
            listening,
            counted: _counted,
        } = job;
        if let Some(why) = exchange.aborted() {
            // The front end went away or aborted while the request waited for a thread: the
            // app is not called.
            tracing::debug!(request = %exchange.ident(), "not run: {}", why.reason());
            exchange.end_stopped();
            return;
        }
        let spare = SPARE_VARS.take();
        // FastCGI §6.3: an authorizer is asked about URLs that need not be the app's, and
        // is sent no SCRIPT_NAME or PATH_INFO: the whole path is its PATH_INFO.
        let mount = match exchange.role() {
            Role::Responder => self.mount.as_str(),
            Role::Authorizer => "",
        };
        let built = crate::environ::build_with(exchange.params(), mount, &listening.local, spare);
        // Authorizer requests are outside the mount by design: they tell nothing about it.
        let watch = &listening.mount_watch;
        if exchange.role() == Role::Responder
            && watch.watching()
            && !matches!(built, Err(crate::environ::Reject::BadRequest(_)))
        {
            let fit = crate::environ::mount_fit(exchange.params(), &self.mount);
            watch.observe(&fit, &exchange.ident());
        }
        let env = match built {
            Ok(mut env) => {
                if let Some(trusted) = &self.trusted_proxies {
                    crate::environ::forwarded::apply(&mut env, exchange.params(), trusted);
                }
                env
            }
            Err(reject) => {
                let (status, text) = match reject {
                    crate::environ::Reject::NotFound => ("404 Not Found", "Not Found\n"),
                    crate::environ::Reject::BadRequest(why) => ("400 Bad Request", why),
                };
                match reject {
                    crate::environ::Reject::BadRequest(why) => {
                        tracing::warn!(request = %exchange.ident(), "bad request: {why}");
                    }
                    crate::environ::Reject::NotFound => tracing::debug!(
                        request = %exchange.ident(),
                        mount = %self.mount,
                        "not found: the request path is outside the mount point"
                    ),
                }
                exchange.answer(status, text);
                return;
            }
        };
        Python::attach(|py| {
            // Timed out while this thread was on its way (the reactor saw no thread to
            // interrupt): as if it had not been taken.
            let stopped = if self.timed {
                super::timeout::start(py, &exchange);
                exchange.aborted()
            } else {
                None
            };
            match stopped {
                Some(why) => {
                    tracing::debug!(request = %exchange.ident(), "not run: {}", why.reason());
                    exchange.end_stopped();
                }
                None => self.call(py, &exchange, &env),
            }
            // After the request's objects are released (a finaliser runs bytecode, where a
            // pending RequestTimeout would still go off).
            if self.timed {
                super::timeout::done(py, &exchange);
            }
        });
        SPARE_VARS.set(env.into_spare());
    }

    /// The callable that answers requests of `role`.
    pub(super) fn callable_for(&self, role: Role) -> &Py<PyAny> {
        match (role, &self.authorizer) {
            (Role::Authorizer, Some(authorizer)) => authorizer,
            _ => &self.callable,
        }
    }

    /// Calls the app with the request's environ and sends its response.
    fn call(&self, py: Python<'_>, exchange: &Arc<Exchange>, env: &crate::environ::Environ<'_>) {
        let responder = match Bound::new(py, Responder::new(exchange.clone())) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot create start_response: {}", format_exception(py, &e));
                exchange.answer("500 Internal Server Error", "Internal Server Error\n");
                return;
            }
        };
        match environ_dict(py, self, env, exchange.clone()) {
            Ok((environ, errors)) => {
                self.respond(py, environ.into_any(), &responder);
                // What the app wrote to wsgi.errors and never flushed is logged now, not
                // whenever the stream happens to be released.
                if let Ok(mut errors) = errors.try_borrow_mut() {
                    errors.flush();
                }
            }
            Err(e) => {
                tracing::error!("cannot build the environ: {}", format_exception(py, &e));
                exchange.answer("500 Internal Server Error", "Internal Server Error\n");
            }
        }
    }
}

/// Entries an environ has room for before its dict grows: nginx's stock params, a
/// browser's headers and the `wsgi.*` keys come to 35–45.
const ENVIRON_ROOM: usize = 64;

/// The `wsgi.*` keys every environ starts with. Each request's environ is a copy
/// (`PyDict_Copy`), which keeps the template's table size: made with room for a whole
/// environ, the copies take the request's keys without growing (a dict grows, and rehashes
/// every key, at 5, 10, 21 and 42 entries).
fn make_template<'py>(py: Python<'py>, s: &Settings) -> PyResult<Bound<'py, PyDict>> {
    let d = super::ffi::dict_with_room(py, ENVIRON_ROOM)?;
    d.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    d.set_item("wsgi.multithread", s.threads > 1)?;
    d.set_item("wsgi.multiprocess", s.processes > 1)?;
    d.set_item("wsgi.run_once", false)?;
    d.set_item("wsgi.input_terminated", true)?;
    // Changed for the requests of another role (`environ_dict`).
    d.set_item("wsgid.role", Role::Responder.as_str())?;
    d.set_item(
        "wsgi.file_wrapper",
        py.get_type::<super::file_wrapper::FileWrapper>(),
    )?;
    Ok(d)
}

/// Resolves `module:callable`, `module` (its `application`), `file.py`, `file.py:name`.
/// Err is worded for the user: the traceback, and what to do about the usual mistakes (a
/// module not on `sys.path`, a package missing from the virtualenv, a callable of another
/// name).
fn import_app<'py>(py: Python<'py>, spec: &str) -> Result<Bound<'py, PyAny>, String> {
    let (target, attr) = match spec.rsplit_once(':') {
        Some((t, a)) if !a.is_empty() && !a.contains('/') => (t, a),
        _ => (spec, "application"),
    };
    // The configuration resolves script files to absolute paths; anything else is a dotted
    // module name (Django's `mysite.wsgi` is a module, not a file).
    let is_file = target.contains('/');
    let module = if is_file {
        load_file(py, Path::new(target))
    } else {
        py.import(target).map(Bound::into_any)
    }
    .map_err(|e| import_failed(py, target, &e))?;
    let mut obj = module.clone();
    let mut owner = if is_file {
        target.to_string()
    } else {
        format!("module {target}")
    };
    for part in attr.split('.') {
        match obj.getattr_opt(part) {
            Ok(Some(next)) => obj = next,
            Ok(None) => {
                let mut msg = format!("{owner} has no attribute {part:?}");
                if obj.is(&module) {
                    let candidates = callables(py, &module);
                    msg.push_str(&match (is_file, attr == "application") {
                        (true, true) => format!(
                            ": a .py or .wsgi file is served by its \"application\"; name \
                             another callable as {target}:NAME"
                        ),
                        _ => format!(": name the callable as {target}:NAME"),
                    });
                    if !candidates.is_empty() {
                        msg.push_str(&format!(
                            " (callables it defines: {})",
                            candidates.join(", ")
                        ));
                    }
                }
                return Err(msg);
            }
            Err(e) => return Err(format_exception(py, &e)),
        }
        owner = format!("{owner}.{part}");
    }
    Ok(obj)
}

/// The traceback of a failed import, with a hint when a module was not found: the
/// application's own module (then `sys.path` is wrong: `--chdir`, `--pythonpath`), or one
/// it imports (then the package is not installed for this interpreter: `--virtualenv`).
fn import_failed(py: Python<'_>, target: &str, e: &PyErr) -> String {
    let mut msg = format_exception(py, e);
    if !e.is_instance_of::<pyo3::exceptions::PyModuleNotFoundError>(py) {
        return msg;
    }
    let Ok(Some(missing)) = e
        .value(py)
        .getattr("name")
        .and_then(|n| n.extract::<Option<String>>())
    else {
        return msg;
    };
    let sys = py.import("sys").ok();
    let attr = |name: &str| -> String {
        sys.as_ref()
            .and_then(|sys| sys.getattr(name).ok())
            .and_then(|v| v.str().ok().map(|s| s.to_string()))
            .unwrap_or_else(|| "?".into())
    };
    let own = target == missing || target.starts_with(&format!("{missing}."));
    if own {
        msg.push_str(&format!(
            "Python looked for {missing} in sys.path = {}.\nGive the directory that holds \
             it with --chdir DIR (where the workers start; it comes first on sys.path) or \
             --pythonpath DIR.",
            attr("path")
        ));
    } else {
        msg.push_str(&format!(
            "The application imports {missing}, which this Python ({}, sys.prefix {}) \
             does not have: install it there, or give the virtualenv that has it with \
             --virtualenv DIR, or its directory with --pythonpath DIR.",
            attr("executable"),
            attr("prefix")
        ));
    }
    msg
}

/// Public names of `module` that could be a WSGI application: functions defined in it, and
/// callable objects (such as a Flask app), but not classes or modules; at most five.
fn callables(py: Python<'_>, module: &Bound<'_, PyAny>) -> Vec<String> {
    let Ok(names) = module.dir() else {
        return Vec::new();
    };
    let own = module.getattr("__name__").ok();
    let types = py.import("types").ok();
    let is = |v: &Bound<'_, PyAny>, ty: &str| {
        types
            .as_ref()
            .and_then(|t| t.getattr(ty).ok())
            .is_some_and(|ty| v.is_instance(&ty).unwrap_or(false))
    };
    let mut found = Vec::new();
    for name in names.iter() {
        let Ok(name) = name.extract::<String>() else {
            continue;
        };
        if name.starts_with('_') {
            continue;
        }
        let Ok(v) = module.getattr(name.as_str()) else {
            continue;
        };
        if !v.is_callable() || v.is_instance_of::<pyo3::types::PyType>() || is(&v, "ModuleType") {
            continue;
        }
        if is(&v, "FunctionType") || is(&v, "BuiltinFunctionType") {
            let defined_here = match (&own, v.getattr("__module__")) {
                (Some(own), Ok(m)) => m.eq(own).unwrap_or(false),
                _ => false,
            };
            if !defined_here {
                continue;
            }
        }
        found.push(name);
        if found.len() == 5 {
            break;
        }
    }
    found
}

/// Loads a script file as a module named after it, with its directory on sys.path (so it
/// can import its neighbours), as mod_wsgi's WSGIScriptAlias does.
fn load_file<'py>(py: Python<'py>, path: &Path) -> PyResult<Bound<'py, PyAny>> {
    let abs = std::fs::canonicalize(path).map_err(|e| {
        pyo3::exceptions::PyFileNotFoundError::new_err(format!("{}: {e}", path.display()))
    })?;
    if let Some(dir) = abs.parent() {
        let sys_path = py.import("sys")?.getattr("path")?;
        sys_path.call_method1("insert", (0, dir.to_string_lossy().into_owned()))?;
    }
    // What `importlib.util`'s recipe for importing a source file does, called step by step
    // from here: no Python source of ours to compile at start (the compiler stays out of the
    // worker's memory), and the script's bytecode is cached in __pycache__ like any module's.
    let name = "__wsgi_app__";
    let path = abs.to_string_lossy().into_owned();
    let loader = py
        .import("importlib.machinery")?
        .getattr("SourceFileLoader")?
        .call1((name, &path))?;
    let util = py.import("importlib.util")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("loader", &loader)?;
    let spec = util
        .getattr("spec_from_file_location")?
        .call((name, &path), Some(&kwargs))?;
    let module = util.call_method1("module_from_spec", (spec,))?;
    py.import("sys")?
        .getattr("modules")?
        .set_item(name, &module)?;
    loader.call_method1("exec_module", (&module,))?;
    Ok(module)
}

/// The exception with its traceback, as Python would print it.
pub fn format_exception(py: Python<'_>, e: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let tb = py.import("traceback")?;
        // The three-argument form: before Python 3.12 the traceback is not always attached
        // to the exception value PyO3 holds.
        let lines = tb.call_method1(
            "format_exception",
            (e.get_type(py), e.value(py), e.traceback(py)),
        )?;
        let joined: String = lines
            .try_iter()?
            .filter_map(|l| l.ok()?.extract::<String>().ok())
            .collect();
        Ok(joined)
    })();
    formatted.unwrap_or_else(|_| e.to_string())
}
