//! The fuzz targets link wsgid's library, and with it libpython: when wsgid's build script
//! linked the static archive (not position-independent), these executables must be linked
//! without PIE too, as wsgid's own are.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_WSGID_LIBPYTHON_STATIC");
    if std::env::var("DEP_WSGID_LIBPYTHON_STATIC").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg=-no-pie");
    }
}
