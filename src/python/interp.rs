//! The interpreter a worker runs on, and its setup once wsgid's library is loaded into it.
//!
//! The master picks the executable (`interpreter`): `<venv>/bin/python` for --virtualenv,
//! so that Python itself finds the app's `sys.prefix` and `site-packages` from where it was
//! started, else the Python wsgid was built against. It must be the Python version
//! wsgid's library was built for.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::config::Settings;

/// The Python wsgid is built for (major.minor), and its executable.
pub const BUILT_VERSION: &str = env!("WSGID_PYTHON_VERSION");
pub const BUILT_EXECUTABLE: &str = env!("WSGID_PYTHON_EXECUTABLE");

/// Sets up `sys.path` in the worker's interpreter, and the `wsgid` module applications
/// import (called detached; attaches for it).
pub fn prepare(settings: &Settings) -> Result<(), String> {
    Python::attach(|py| {
        setup_sys_path(py, settings)
            .and_then(|()| super::module::install_public(py))
            .map_err(|e| super::app::format_exception(py, &e))
    })
}

/// The executable workers run: `<venv>/bin/python` (after checking that the virtualenv was
/// made for the Python wsgid is built for), else the build-time executable.
pub fn interpreter(venv: Option<&Path>) -> Result<PathBuf, String> {
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
            "--virtualenv {} was made for Python {version}, but this wsgid is built for Python {BUILT_VERSION}: \
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
