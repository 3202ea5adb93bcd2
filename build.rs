//! Links the worker against the libpython PyO3 found, with an rpath to its directory (PyO3
//! sets none, so a libpython outside the default search path would not be found at run
//! time), and records that interpreter's executable and version so the worker can point
//! PyConfig.program_name at it when no virtualenv is given.

fn main() {
    let cfg = pyo3_build_config::get();
    if let Some(dir) = cfg.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    let exe = cfg.executable().map(|e| e.to_string()).unwrap_or_default();
    println!("cargo:rustc-env=WSGID_PYTHON_EXECUTABLE={exe}");
    let v = cfg.version();
    println!(
        "cargo:rustc-env=WSGID_PYTHON_VERSION={}.{}",
        v.major, v.minor
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
