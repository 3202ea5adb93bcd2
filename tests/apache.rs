//! End to end through the real Apache 2.4 from Debian: mod_proxy_fcgi (`ProxyPass`, with
//! `enablereuse=on`, and the `SetHandler "proxy:fcgi://…"` form) and mod_proxy_scgi, each
//! at `/` and at `/app`, through the request matrix every front end passes
//! (tests/common/matrix.rs); and the example config shipped in conf.d/.
//!
//! Needs Apache (Debian: apache2) and the virtualenv of fixtures/requirements.txt for the
//! example's Flask app ($WSGID_TEST_VENV or ./.venv; scripts/test creates it).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use common::apache::{Apache, Shape, Site};
use common::frontend::connections_to;
use common::matrix::{run_all, FrontEnd};
use common::stage::Stage;
use common::Daemon;

/// One wsgid (FastCGI and SCGI) serving fixtures/frontend_app.py at `mount`, and one Apache
/// with a virtual host per way of passing requests on. mod_proxy_scgi answers a chunked
/// upload with 411 itself (SCGI needs the length up front): the matrix checks that.
fn apache_matrix(mount: &str) {
    let (daemon, fcgi, scgi) = common::matrix::backend(mount);
    let shapes = [
        ("Apache mod_proxy_fcgi ProxyPass", Shape::ProxyFcgi, &fcgi),
        (
            "Apache mod_proxy_fcgi ProxyPass enablereuse=on",
            Shape::ProxyFcgiReuse,
            &fcgi,
        ),
        (
            "Apache mod_proxy_fcgi SetHandler",
            Shape::SetHandlerFcgi,
            &fcgi,
        ),
        ("Apache mod_proxy_scgi ProxyPass", Shape::ProxyScgi, &scgi),
    ];
    let sites: Vec<Site> = shapes
        .iter()
        .map(|(_, shape, backend)| Site::new(*shape, backend, mount))
        .collect();
    let apache = Apache::start(&sites);
    let front_ends: Vec<FrontEnd> = shapes
        .iter()
        .zip(&apache.ports)
        .map(|((name, shape, _), port)| {
            let fe = FrontEnd::new(name, *port, mount);
            if *shape == Shape::ProxyScgi {
                fe.without_chunked_uploads()
            } else {
                fe
            }
        })
        .collect();
    run_all(&front_ends, &|| daemon.log());

    // enablereuse=on: many requests, few new connections (Apache keeps one per thread it
    // ran a request on, up to 16 here); without it each request opens its own.
    let fcgi_port: u16 = fcgi
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("FastCGI port");
    let before = connections_to(fcgi_port);
    let prefix = mount.trim_end_matches('/');
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..60 {
        let mut c = common::frontend::Client::new(apache.ports[1]);
        c.get(&format!("{prefix}/reuse/{i}")).expect_status(200);
        seen.extend(connections_to(fcgi_port).difference(&before).copied());
    }
    // (The matrix's requests through this host already opened the connections these reuse.)
    assert!(
        !before.is_empty() && seen.len() <= 16,
        "enablereuse=on: 60 requests came over {} new connections: {seen:?}",
        seen.len()
    );
}

#[test]
fn matrix_apache_root() {
    apache_matrix("/");
}

#[test]
fn matrix_apache_app() {
    apache_matrix("/app");
}

/// The test virtualenv (Flask for the example's applications).
fn test_venv() -> String {
    let v = common::venv();
    assert!(
        v.join("bin/python").exists(),
        "no virtualenv at {} (set WSGID_TEST_VENV, or run scripts/test, which creates \
         ./.venv from fixtures/requirements.txt)",
        v.display()
    );
    v.display().to_string()
}

/// conf.d/apache-wsgid.conf, with its addresses pointed at three wsgid instances (the
/// Flask app at / over FastCGI with connection reuse, at /app through SetHandler, and over
/// SCGI at /legacy), serves all three, and shows its own error page for an application's
/// 500 (ProxyErrorOverride) while an application's 404 passes.
#[test]
fn conf_d_apache_example_serves_its_three_paths() {
    let venv = test_venv();
    let pythonpath = common::fixtures().display().to_string();
    let start = |b: common::Builder, mount: Option<&str>| {
        let b = b.args(&["--virtualenv", &venv, "--pythonpath", &pythonpath]);
        match mount {
            Some(m) => b.args(&["--mount", m]).start(),
            None => b.start(),
        }
    };
    let root = start(Daemon::builder("flask_app:app").fastcgi(), None);
    let app = start(Daemon::builder("flask_app:app").fastcgi(), Some("/app"));
    let legacy = start(Daemon::builder("flask_app:app").scgi(), Some("/legacy"));

    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/apache-wsgid.conf"),
    )
    .expect("read conf.d/apache-wsgid.conf");
    let port = common::free_port();
    let dir = common::scratch("apache-example").keep();
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("errors")).expect("create errors dir");
    std::fs::write(site.join("errors/50x.html"), "Apache's own error page\n").expect("50x");
    let replacements = [
        (
            "<VirtualHost *:80>",
            format!("<VirtualHost 127.0.0.1:{port}>"),
        ),
        (
            "127.0.0.1:9000",
            root.fcgi.clone().expect("FastCGI address"),
        ),
        ("127.0.0.1:9001", app.fcgi.clone().expect("FastCGI address")),
        ("127.0.0.1:4000", legacy.scgi.clone().expect("SCGI address")),
        ("/srv/mysite/", format!("{}/", site.display())),
        ("ProxyErrorOverride On", "ProxyErrorOverride On".to_string()),
        ("enablereuse=on", "enablereuse=on".to_string()),
    ];
    let mut conf = example.clone();
    for (from, to) in &replacements {
        assert!(example.contains(from), "the example lost {from:?}");
        conf = conf.replace(from, to);
    }
    let apache = Apache::start_conf(&conf, vec![port], dir);
    let logs = || format!("{}\n{}\n{}", root.log(), app.log(), legacy.log());
    let mut c = common::frontend::Client::new(port);
    for prefix in ["", "/app", "/legacy"] {
        let r = c.get(&format!("{prefix}/"));
        assert_eq!(r.status, 200, "{prefix}/: {}\n{}", r.text(), logs());
        assert!(
            r.text()
                .contains(&format!(r#"<a id="hello" href="{prefix}/hello/world">"#)),
            "{prefix}/: {}",
            r.text()
        );
        let env = c
            .get(&format!("{prefix}/environ"))
            .expect_status(200)
            .json();
        assert_eq!(env["SCRIPT_NAME"], prefix, "{env}");
        assert_eq!(env["PATH_INFO"], "/environ", "{env}");
    }
    // ProxyErrorOverride: the application's 500 becomes Apache's page over FastCGI (not
    // over SCGI: mod_proxy_scgi does not apply it), its 404 passes.
    for prefix in ["", "/app", "/legacy"] {
        let r = c.get(&format!("{prefix}/fail"));
        r.expect_status(500);
        if prefix == "/legacy" {
            assert!(r.text().contains("Internal Server Error"), "{}", r.text());
        } else {
            assert_eq!(r.text(), "Apache's own error page\n", "{prefix}/fail");
        }
        let r = c.get(&format!("{prefix}/no-such-page"));
        r.expect_status(404);
        assert!(r.text().contains("Not Found"), "{}", r.text());
    }
    // /appx is not /app's: it goes to the application at the root (ProxyPass /app ! and
    // <Location /app> match whole segments only), whose Flask has no such page.
    let r = c.get("/appx/z");
    r.expect_status(404);
    assert!(
        r.text()
            .contains("The requested URL was not found on the server. If you entered"),
        "not Flask's 404: {}",
        r.text()
    );
    common::matrix::assert_no_mount_warning("conf.d/apache-wsgid.conf", &logs());
    drop(apache);
}

/// The processes running the staged wsgid binary (masters and workers alike).
fn staged_wsgids(stage: &Stage) -> BTreeSet<String> {
    let exe = stage.dir.join("wsgid");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if std::fs::read_link(entry.path().join("exe")).is_ok_and(|p| p == exe) {
            found.insert(name);
        }
    }
    found
}

/// Whether process `pid` runs (exists and is not a zombie nobody reaped yet).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .is_some_and(|st| !st.trim_start().starts_with('Z'))
}

/// The uid process `pid` runs as ("?" if it is gone).
fn uid_of(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .unwrap_or("?")
        .to_string()
}

/// conf.d/apache-fcgid.conf as shipped: mod_fcgid starts wsgid itself through the wrapper
/// the example describes (the socket on fd 0, mod_fcgid's near-empty environment, as
/// www-data when root). The matrix through it; every wsgid process runs as Apache's user;
/// Apache's stop leaves none behind.
#[test]
fn conf_d_apache_fcgid_example() {
    let stage = Stage::new();
    let d = stage.dir.display().to_string();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/apache-fcgid.conf"),
    )
    .expect("read conf.d/apache-fcgid.conf");
    // The wrapper, from the example's comment.
    let wrapper: String = example
        .lines()
        .skip_while(|l| !l.starts_with("#   #!/bin/sh"))
        .take_while(|l| l.starts_with("#   "))
        .map(|l| format!("{}\n", &l[4..]))
        .collect();
    assert!(wrapper.contains("exec /usr/local/bin/wsgid"), "{wrapper}");
    let mut wrapper = wrapper;
    for (from, to) in [
        ("/usr/local/bin/wsgid", format!("{d}/wsgid")),
        ("/srv/mysite/venv", format!("{d}/venv")),
        ("--chdir /srv/mysite", format!("--chdir {d}")),
        ("mysite.wsgi:application", "frontend_app".to_string()),
    ] {
        assert!(wrapper.contains(from), "the wrapper lost {from:?}");
        wrapper = wrapper.replace(from, &to);
    }
    let fcgi = stage.dir.join("app.fcgi");
    std::fs::write(&fcgi, wrapper).expect("write app.fcgi");
    std::fs::set_permissions(&fcgi, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(
        example.contains("/srv/mysite"),
        "the example lost /srv/mysite"
    );
    let dir = common::scratch("apache-fcgid").keep();
    let conf = format!(
        "LoadModule fcgid_module /usr/lib/apache2/modules/mod_fcgid.so\n\
         FcgidIPCDir {ipc}/fcgid-ipc\nFcgidProcessTableFile {ipc}/fcgid-shm\n{}",
        example.replace("/srv/mysite", &d),
        ipc = dir.display()
    );
    let port = common::free_port();
    let mut apache = Apache::start_conf(&conf, vec![port], dir);
    let front_ends = [FrontEnd::new("Apache mod_fcgid", port, "/app")];
    run_all(&front_ends, &|| apache.error_log());

    // One wsgid master (FcgidMaxProcessesPerClass 1) and its two workers (the
    // application's interpreter, not the wsgid binary).
    let masters = staged_wsgids(&stage);
    assert_eq!(masters.len(), 1, "one wsgid: {masters:?}");
    let workers: BTreeSet<String> = masters
        .iter()
        .flat_map(|m| common::children(m.parse().unwrap_or(0)))
        .collect();
    assert_eq!(workers.len(), 2, "two workers: {workers:?}");
    let pids: BTreeSet<String> = masters.union(&workers).cloned().collect();
    let want = if common::is_root() {
        nix::unistd::User::from_name(common::apache::USER)
            .ok()
            .flatten()
            .map(|u| u.uid.to_string())
    } else {
        Some(nix::unistd::geteuid().to_string())
    };
    for pid in &pids {
        assert_eq!(
            Some(uid_of(pid)),
            want,
            "process {pid} runs as Apache's user"
        );
    }
    apache.stop();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let running = || {
        pids.iter()
            .filter(|p| alive(p))
            .cloned()
            .collect::<Vec<_>>()
    };
    while !running().is_empty() {
        assert!(
            std::time::Instant::now() < end,
            "still running 10 s after Apache stopped: {:?}",
            running()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
