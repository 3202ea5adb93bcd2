//! The extension module a worker is: `master::spawn` starts the interpreter's own
//! executable with a bootstrap that loads wsgid's library as `_wsgid_worker` and calls
//! `run` with the worker's spec. The interpreter is then the distribution's own build of
//! `python3` (Debian links it with link-time optimisation, which no libpython it ships has:
//! Python code runs faster on it than embedded).
//!
//! Applications see another module, `wsgid` ([`install_public`]): the exceptions wsgid
//! raises in them, to catch by name.

use pyo3::prelude::*;

#[pymodule]
fn _wsgid_worker(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)
}

/// Puts the module `wsgid` in `sys.modules`, before the application is imported: `import
/// wsgid` then works in the application (and only under wsgid: nothing is installed on
/// disk). It holds `RequestTimeout` and `ClientDisconnected`.
pub fn install_public(py: Python<'_>) -> PyResult<()> {
    let m = PyModule::new(py, "wsgid")?;
    m.add(
        "__doc__",
        "What wsgid gives the applications it serves: the exceptions it raises in them.",
    )?;
    m.add(
        "RequestTimeout",
        py.get_type::<super::timeout::RequestTimeout>(),
    )?;
    m.add(
        "ClientDisconnected",
        py.get_type::<super::input::ClientDisconnected>(),
    )?;
    py.import("sys")?.getattr("modules")?.set_item("wsgid", m)?;
    Ok(())
}

/// Serves as the worker the JSON `spec` describes, then exits the process with the
/// worker's status: it never returns to Python (the interpreter is not finalised while
/// Python threads of the pool may still exist; `python::finish` ran what must run).
#[pyfunction]
fn run(py: Python<'_>, spec: &str) -> PyResult<()> {
    let status = py.detach(|| crate::worker::main(spec));
    std::process::exit(i32::from(status))
}
