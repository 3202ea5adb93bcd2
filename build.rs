//! Links the worker against the Python PyO3 found, and records that interpreter's
//! executable and version so the worker can point PyConfig.program_name at it when no
//! virtualenv is given.
//!
//! libpython is linked here, not by PyO3 (`.cargo/config.toml` sets
//! PYO3_BUILD_EXTENSION_MODULE, which keeps PyO3's build script from linking it):
//!
//! - Static (the default when the interpreter's `LIBPL/LIBRARY`, e.g. Debian's
//!   libpython3.11.a from libpython3.11-dev, exists): the archive the distribution builds
//!   its own `python3` from, with profile-guided optimisation and without
//!   position-independent code: Python code runs faster on it than on the shared
//!   libpython (a Django page ~10% more requests/s, benches/PROFILE.md). Its objects are not position-independent, so
//!   the executables are linked without PIE (as Debian links /usr/bin/python3.11), and
//!   they export the C API (`Py*`, `_Py*`), as CPython's own `LINKFORSHARED` does for
//!   python3, so that extension modules (`.so` files in lib-dynload and site-packages)
//!   resolve it in them.
//! - Shared (`WSGID_LIBPYTHON=shared`, or no static archive): `-lpythonX.Y` with an rpath
//!   to its directory, so a libpython outside the default search path is found at run time.

use std::process::Command;

/// The interpreter's sysconfig values this script needs, in this order.
const VARS: [&str; 6] = ["LIBPL", "LIBRARY", "LIBDIR", "LIBS", "SYSLIBS", "MODLIBS"];

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=WSGID_LIBPYTHON");
    let cfg = pyo3_build_config::get();
    let exe = cfg.executable().map(|e| e.to_string()).unwrap_or_default();
    println!("cargo:rustc-env=WSGID_PYTHON_EXECUTABLE={exe}");
    let v = cfg.version();
    println!(
        "cargo:rustc-env=WSGID_PYTHON_VERSION={}.{}",
        v.major, v.minor
    );
    let vars = sysconfig(&exe);
    let get = |name: &str| {
        VARS.iter()
            .position(|v| *v == name)
            .and_then(|i| vars.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let want_shared = std::env::var("WSGID_LIBPYTHON").is_ok_and(|v| v == "shared");
    let archive = std::path::Path::new(&get("LIBPL")).join(get("LIBRARY"));
    if !want_shared && get("LIBRARY").ends_with(".a") && archive.is_file() {
        link_static(&get("LIBPL"), &get("LIBRARY"), &get, &archive);
    } else {
        link_shared(
            v.major,
            v.minor,
            cfg.lib_dir().map(String::from),
            &get("LIBDIR"),
        );
    }
}

/// `python -c` printing each of VARS on its own line ("" for None).
fn sysconfig(exe: &str) -> Vec<String> {
    let script = format!(
        "import sysconfig\nfor v in {:?}:\n    print(sysconfig.get_config_var(v) or '')",
        VARS
    );
    let out = Command::new(exe)
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    assert!(
        out.status.success(),
        "{exe} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn link_static(
    libpl: &str,
    library: &str,
    get: &dyn Fn(&str) -> String,
    archive: &std::path::Path,
) {
    println!("cargo:rerun-if-changed={}", archive.display());
    let name = library
        .trim_start_matches("lib")
        .trim_end_matches(".a")
        .to_string();
    println!("cargo:rustc-link-search=native={libpl}");
    // The whole archive: extension modules need C API functions wsgid itself never calls.
    println!("cargo:rustc-link-lib=static:+whole-archive={name}");
    // What the archive's objects need (-ldl, -lm, and the libraries of the modules built
    // into it, such as zlib and expat), each once.
    let mut seen = Vec::new();
    for var in ["LIBS", "SYSLIBS", "MODLIBS"] {
        for lib in get(var).split_whitespace() {
            if let Some(l) = lib.strip_prefix("-l") {
                if !seen.iter().any(|s: &String| s == l) {
                    seen.push(l.to_string());
                    println!("cargo:rustc-link-lib={l}");
                }
            }
        }
    }
    println!("cargo:rustc-link-arg=-no-pie");
    // Link arguments do not reach dependent crates; fuzz/build.rs reads this and adds
    // -no-pie to its own binaries.
    println!("cargo:static=1");
    // Export Python's C API (what CPython's LINKFORSHARED -export-dynamic does for
    // python3), and only that: not wsgid's own symbols.
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let list = std::path::Path::new(&out).join("python-api.list");
    std::fs::write(&list, "{\n  Py*;\n  _Py*;\n};\n").expect("write the dynamic list");
    println!("cargo:rustc-link-arg=-Wl,--dynamic-list={}", list.display());
}

fn link_shared(major: u8, minor: u8, pyo3_dir: Option<String>, libdir: &str) {
    let dir = pyo3_dir.unwrap_or_else(|| libdir.to_string());
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-lib=python{major}.{minor}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}
