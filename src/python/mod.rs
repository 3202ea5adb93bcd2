//! Everything that touches Python (PyO3 is used nowhere else): interpreter setup, loading
//! the app, and running requests on the Python threads.

mod app;
mod environ;
mod errors;
mod file_wrapper;
mod input;
mod interp;
mod request;
mod respond;

pub use app::App;
pub use interp::{finish, init, venv_version, BUILT_EXECUTABLE, BUILT_VERSION};
