//! Records the Python PyO3 builds against (its executable and major.minor version), so the
//! master can check a virtualenv's version and start workers on that interpreter.
//!
//! Nothing links libpython: `.cargo/config.toml` sets PYO3_BUILD_EXTENSION_MODULE, as for
//! any extension module. A worker is the interpreter's own executable with `libwsgid.so`
//! loaded into it, which resolves the C API from that executable; the master never calls
//! into Python.

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let cfg = pyo3_build_config::get();
    let exe = cfg.executable().map(|e| e.to_string()).unwrap_or_default();
    println!("cargo:rustc-env=WSGID_PYTHON_EXECUTABLE={exe}");
    let v = cfg.version();
    println!(
        "cargo:rustc-env=WSGID_PYTHON_VERSION={}.{}",
        v.major, v.minor
    );
}
