//! Everything that touches Python (PyO3 is used nowhere else): the extension module a
//! worker is, interpreter setup, loading the app, and running requests on the Python
//! threads.

mod app;
mod environ;
mod errors;
mod ffi;
mod file_wrapper;
mod input;
mod interp;
mod latin1;
mod module;
mod request;
mod respond;
mod timeout;

pub use app::App;
pub use interp::{finish, interpreter, prepare, venv_version, BUILT_EXECUTABLE, BUILT_VERSION};
pub use timeout::interrupt;

/// Runs `f` attached to the interpreter (the only way code outside this module gets a
/// `Python` token, e.g. for a thread to keep one thread state for its whole life).
pub fn attached<R>(f: impl for<'py> FnOnce(pyo3::Python<'py>) -> R) -> R {
    pyo3::Python::attach(f)
}
