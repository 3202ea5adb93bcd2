//! Several applications in one wsgid: `[[app]]` tables (and drop-ins) each get their own
//! workers, listeners, settings and log name; `--check` loads each; a problem in one app's
//! table is reported with its file and line.

mod common;

use std::collections::BTreeSet;

use common::fcgi::{self, Request};
use common::{free_port, scratch, Daemon};

fn get(addr: &str, uri: &str) -> (u16, String) {
    let r = fcgi::request(addr, &Request::get(uri)).cgi();
    (r.status, r.text())
}

/// Two apps, one from a drop-in: each answers on its own socket with its own settings
/// (environment, processes), its workers log under its name, and SIGTERM stops both.
#[test]
fn two_apps_each_serve_on_their_own_sockets() {
    let dir = scratch("apps");
    std::fs::create_dir(dir.join("conf.d")).unwrap();
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let fixtures = common::fixtures();
    let fixtures = fixtures.display();
    std::fs::write(
        dir.join("conf.d/shop.toml"),
        format!(
            "[[app]]\nname = \"shop\"\napp = \"process_app:application\"\n\
             chdir = \"{fixtures}\"\nlisten = [\"scgi:127.0.0.1:{}\", \"fastcgi:{b}\"]\n\
             env = {{ WHICH = \"shop\" }}\nprocesses = 2\n",
            free_port()
        ),
    )
    .unwrap();
    let conf = dir.join("wsgid.toml");
    std::fs::write(
        &conf,
        format!(
            "threads = 2\nvirtualenv = \"{}\"\ninclude = \"conf.d/*.toml\"\n\
             [[app]]\nname = \"blog\"\napp = \"process_app:application\"\n\
             chdir = \"{fixtures}\"\nfastcgi = \"{a}\"\nenv = {{ WHICH = \"blog\" }}\n",
            common::venv().display()
        ),
    )
    .unwrap();
    let (st, out) = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap(), "--check"])
        .run();
    assert!(st.success(), "{out}");
    let mut d = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    d.wait_log("wsgid ready: 3 workers", 30);
    assert_eq!(get(&a, "/env?WHICH"), (200, "WHICH=blog".to_string()));
    assert_eq!(get(&b, "/env?WHICH"), (200, "WHICH=shop".to_string()));
    let shop: BTreeSet<String> = (0..40).map(|_| get(&b, "/pid").1).collect();
    assert_eq!(shop.len(), 2, "shop has two workers: {shop:?}");
    let blog = get(&a, "/pid").1;
    assert!(!shop.contains(&blog));
    let log = d.log();
    for needle in [
        "starting 1 worker for process_app:application (app blog)",
        "starting 2 workers for process_app:application (app shop)",
        "blog worker 0 (pid ",
        "shop worker 1 (pid ",
        &format!(" blog-0[{blog}] "),
    ] {
        assert!(log.contains(needle), "no {needle:?} in:\n{log}");
    }
    let title = std::fs::read_to_string(format!("/proc/{blog}/cmdline")).unwrap();
    assert!(title.starts_with("wsgid: blog worker 0"), "{title:?}");
    let st = d.stop_with(nix::sys::signal::Signal::SIGTERM, 20);
    assert!(st.success(), "{st}");
}

/// A problem is reported with the file and line of the app's table; --check loads every
/// app and names the one that fails.
#[test]
fn problems_name_the_app() {
    let dir = scratch("apps-bad");
    let conf = dir.join("wsgid.toml");
    let fixtures = common::fixtures();
    std::fs::write(
        &conf,
        format!(
            "[[app]]\nname = \"good\"\napp = \"process_app:application\"\n\
             chdir = \"{0}\"\nfastcgi = \"127.0.0.1:{1}\"\n\
             [[app]]\nname = \"broken\"\napp = \"no_such_module:application\"\n\
             chdir = \"{0}\"\nfastcgi = \"127.0.0.1:{2}\"\n",
            fixtures.display(),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let (st, out) = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap(), "--check"])
        .run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains("wsgid: app broken: the worker exited with status 3"),
        "{out}"
    );
    assert!(!out.contains("app good:"), "{out}");

    std::fs::write(
        &conf,
        "[[app]]\nname = \"a\"\napp = \"x:y\"\nlisten = [\"fastcgi:127.0.0.1:9\"]\n\
         threads = \"two\"\n[[app]]\nname = \"a\"\napp = \"x:y\"\n",
    )
    .unwrap();
    let (st, out) = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap()])
        .run();
    assert_eq!(st.code(), Some(2), "{out}");
    let c = conf.display();
    for needle in [
        format!("wsgid: threads in {c}, line 5: expected a whole number"),
        format!("wsgid: the [[app]] table at {c}, line 6 (app a) has no listener"),
        "wsgid: two apps are named a".to_string(),
    ] {
        assert!(out.contains(&needle), "no {needle:?} in:\n{out}");
    }
}
