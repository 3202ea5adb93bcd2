//! What a front end that starts wsgid itself (lighttpd `bin-path`, Apache mod_fcgid) needs
//! to run it as its own unprivileged user: a world-readable copy of wsgid and the test
//! application.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{fixtures, scratch, Scratch};

/// A copy of wsgid, its library and fixtures/frontend_app.py in a fresh world-readable
/// directory, with a virtualenv of its own: a front end that spawns wsgid runs it as
/// www-data, who may not enter the checkout (under /root in CI) or the test virtualenv.
pub struct Stage {
    pub dir: Scratch,
}

impl Stage {
    pub fn new() -> Stage {
        let dir = scratch("stage");
        let world = |p: &Path| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()))
        };
        world(&dir);
        let built = Path::new(env!("CARGO_BIN_EXE_wsgid"));
        let target = built.parent().expect("the build directory");
        let library = [target.join("deps/libwsgid.so"), target.join("libwsgid.so")]
            .into_iter()
            .find(|p| p.is_file())
            .expect("libwsgid.so next to the test build of wsgid");
        for (from, to) in [
            (built.to_path_buf(), "wsgid"),
            (library, "libwsgid.so"),
            (fixtures().join("frontend_app.py"), "frontend_app.py"),
        ] {
            std::fs::copy(&from, dir.join(to))
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            world(&dir.join(to));
        }
        // The Python wsgid links against (scripts/test's default); no pip: the application
        // needs only the standard library.
        let python =
            std::env::var("WSGID_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let out = std::process::Command::new(&python)
            .args(["-m", "venv", "--without-pip"])
            .arg(dir.join("venv"))
            .output()
            .unwrap_or_else(|e| panic!("{python} -m venv: {e}"));
        assert!(
            out.status.success(),
            "{python} -m venv: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Stage { dir }
    }
}
