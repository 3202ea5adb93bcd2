//! The extension module a worker is: `master::spawn` starts the interpreter's own
//! executable with a bootstrap that loads wsgid's library as `_wsgid_worker` and calls
//! `run` with the worker's spec. The interpreter is then the distribution's own build of
//! `python3` (Debian links it with link-time optimisation, which no libpython it ships has:
//! Python code runs faster on it than embedded).

use pyo3::prelude::*;

#[pymodule]
fn _wsgid_worker(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)
}

/// Serves as the worker the JSON `spec` describes, then exits the process with the
/// worker's status: it never returns to Python (the interpreter is not finalised while
/// Python threads of the pool may still exist; `python::finish` ran what must run).
#[pyfunction]
fn run(py: Python<'_>, spec: &str) -> PyResult<()> {
    let status = py.detach(|| crate::worker::main(spec));
    std::process::exit(i32::from(status))
}
