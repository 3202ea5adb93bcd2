//! Starts the embedded interpreter through PyConfig, the way an embedding server must:
//! `program_name` points into the app's virtualenv (or at the Python wsgid was built
//! against), so `sys.prefix` and `site-packages` are the app's and not whatever python3 is
//! first on PATH; Python installs no signal handlers (the worker's reactor owns SIGTERM
//! and SIGINT); the command line is not parsed.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::config::Settings;

/// The Python this binary links against (major.minor), and its executable.
pub const BUILT_VERSION: &str = env!("WSGID_PYTHON_VERSION");
pub const BUILT_EXECUTABLE: &str = env!("WSGID_PYTHON_EXECUTABLE");

/// Initialises the interpreter, sets up `sys.path`, and releases the GIL from this thread.
pub fn init(settings: &Settings) -> Result<(), String> {
    let program = program_name(settings.virtualenv.as_deref())?;
    let program_c = CString::new(program.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("interpreter path {} contains a NUL byte", program.display()))?;
    // SAFETY: PyO3 FFI. `config` is a plain C struct initialised by
    // PyConfig_InitPythonConfig before any field is read; PyConfig_SetBytesString copies the
    // string; Py_InitializeFromConfig is called once, from the worker's main thread, before
    // any other Python API; PyConfig_Clear frees what the config owns exactly once.
    unsafe {
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        let status =
            ffi::PyConfig_SetBytesString(&mut config, &mut config.program_name, program_c.as_ptr());
        if ffi::PyStatus_Exception(status) != 0 {
            ffi::PyConfig_Clear(&mut config);
            return Err(status_message("cannot set program_name", &status));
        }
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(status_message("cannot initialise Python", &status));
        }
    }
    // SAFETY: the interpreter was just initialised on this thread, which holds the GIL.
    let py = unsafe { Python::assume_attached() };
    let res = setup_sys_path(py, settings).map_err(|e| super::app::format_exception(py, &e));
    // SAFETY: PyO3 FFI. This thread holds the GIL since initialisation; saving the thread
    // state releases it so the Python threads can take it. The state stays valid and is
    // reused by later PyGILState calls on this thread.
    unsafe {
        ffi::PyEval_SaveThread();
    }
    res
}

fn status_message(what: &str, status: &ffi::PyStatus) -> String {
    let msg = if status.err_msg.is_null() {
        String::from("unknown error")
    } else {
        // SAFETY: PyStatus.err_msg is a static NUL-terminated C string when non-null.
        unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    };
    format!("{what}: {msg}")
}

/// The path Python derives its prefix from: `<venv>/bin/python` (after checking that the
/// virtualenv was made for the Python this worker embeds), else the build-time executable.
fn program_name(venv: Option<&Path>) -> Result<PathBuf, String> {
    let Some(venv) = venv else {
        return Ok(PathBuf::from(BUILT_EXECUTABLE));
    };
    let cfg = venv.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&cfg).map_err(|e| {
        format!(
            "--virtualenv {}: cannot read {}: {e} (is it a virtualenv, and readable by this user?)",
            venv.display(),
            cfg.display()
        )
    })?;
    let version = venv_version(&text).ok_or_else(|| {
        format!(
            "--virtualenv {}: no version in {}",
            venv.display(),
            cfg.display()
        )
    })?;
    if version != BUILT_VERSION {
        return Err(format!(
            "--virtualenv {} was made for Python {version}, but this wsgid embeds Python {BUILT_VERSION}: \
             recreate the virtualenv with python{BUILT_VERSION}, or use a wsgid built for Python {version}",
            venv.display()
        ));
    }
    Ok(venv.join("bin").join("python"))
}

/// "major.minor" from pyvenv.cfg's `version` or `version_info` line.
pub fn venv_version(cfg: &str) -> Option<String> {
    for line in cfg.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k == "version" || k == "version_info" {
            let mut parts = v.trim().split('.');
            let major = parts.next()?;
            let minor = parts.next()?;
            return Some(format!("{major}.{minor}"));
        }
    }
    None
}

/// Puts the working directory and every --pythonpath entry at the front of sys.path, in
/// order, as `python -m` would for the working directory.
fn setup_sys_path(py: Python<'_>, settings: &Settings) -> PyResult<()> {
    let sys = py.import("sys")?;
    let path = sys.getattr("path")?.cast_into::<PyList>()?;
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from("."));
    let mut front: Vec<String> = vec![cwd];
    for p in &settings.pythonpath {
        front.push(p.to_string_lossy().into_owned());
    }
    for (i, p) in front.iter().enumerate() {
        path.insert(i, p)?;
    }
    Ok(())
}

/// Flushes Python's stdout/stderr and runs atexit handlers; called once every Python
/// thread has stopped.
pub fn finish() {
    Python::attach(|py| {
        if let Ok(atexit) = py.import("atexit") {
            let _ = atexit.call_method0("_run_exitfuncs");
        }
        if let Ok(sys) = py.import("sys") {
            for name in ["stdout", "stderr"] {
                if let Ok(f) = sys.getattr(name) {
                    let _ = f.call_method0("flush");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_venv_versions() {
        assert_eq!(
            venv_version(
                "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
            ),
            Some("3.11".into())
        );
        assert_eq!(
            venv_version("home = /x\nversion_info = 3.12.1.final.0\n"),
            Some("3.12".into())
        );
        assert_eq!(venv_version("home = /x\n"), None);
    }
}
