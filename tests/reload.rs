//! Reloading (SIGHUP): the configuration is read anew, every worker is replaced without a
//! request failing, changed settings take effect, apps come and go, listeners that stay
//! are kept (the same socket, never bound again), and a configuration or an app that does
//! not load leaves the running workers serving.

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use common::fcgi::{self, Request};
use common::load::Load;
use common::{free_port, scratch, Daemon};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn get(addr: &str, uri: &str) -> (u16, String) {
    let r = fcgi::request(addr, &Request::get(uri)).cgi();
    (r.status, r.text())
}

fn hup(d: &Daemon) {
    kill(Pid::from_raw(d.pid() as i32), Signal::SIGHUP).unwrap();
}

/// The pids answering on `addr` over `n` requests.
fn pids(addr: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|_| get(addr, "/pid").1).collect()
}

/// Waits until the log holds `needle` `count` times.
fn wait_count(d: &Daemon, needle: &str, count: usize, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let log = d.log();
        if log.matches(needle).count() >= count {
            return log;
        }
        assert!(
            Instant::now() < end,
            "{needle:?} not {count} times in:\n{log}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The inode of the socket listening on loopback TCP `port` (/proc/net/tcp, proc(5)):
/// the same socket keeps its inode, a socket bound anew gets another.
fn listen_inode(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local_address, st (0A = LISTEN), inode
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(9).and_then(|i| i.parse().ok()))
            .flatten()
    })
}

/// SIGHUP three times under load: every worker is replaced each time, a request in flight
/// on an old worker completes, and no request fails.
#[test]
fn sighup_replaces_every_worker_without_failing_a_request() {
    let d = Daemon::builder("process_app:application")
        .fastcgi()
        .args(&["--processes", "2", "--threads", "2"])
        .start();
    let addr = d.fcgi.clone().unwrap();
    let mut before = common::children(d.pid());
    assert_eq!(before.len(), 2, "{before:?}");
    let a = addr.clone();
    let slow = thread::spawn(move || get(&a, "/sleep?2"));
    d.wait_log("sleep started", 20);
    let load = Load::start(&addr, "/pid", 3);
    for round in 1..=3 {
        hup(&d);
        wait_count(&d, "new workers ready", round, 30);
        // Once the old workers have finished, the workers are all new ones, and they are
        // the ones answering.
        let end = Instant::now() + Duration::from_secs(15);
        let after = loop {
            let now = common::children(d.pid());
            if (now.len() == 2 && now.is_disjoint(&before)) || Instant::now() > end {
                break now;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(
            after.len() == 2 && after.is_disjoint(&before),
            "round {round}: {before:?} then {after:?}"
        );
        let answering = pids(&addr, 20);
        assert!(
            answering.is_subset(&after),
            "{answering:?} not among {after:?}"
        );
        before = after;
    }
    let (ok, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed of {}: {failures:?}",
        failures.len(),
        ok + failures.len()
    );
    assert!(ok > 100, "only {ok} requests");
    assert_eq!(slow.join().unwrap(), (200, "slept".to_string()));
    let log = d.log();
    assert_eq!(
        log.matches("SIGHUP: reloading the configuration").count(),
        3,
        "{log}"
    );
    assert!(
        !log.contains("replacing it in"),
        "a worker was treated as dead:\n{log}"
    );
}

/// A changed configuration takes effect; an app added starts, one removed stops and its
/// socket closes; a socket that stays is the same socket throughout, never bound again.
#[test]
fn sighup_applies_the_new_configuration() {
    let dir = scratch("reload-config");
    let blog_port = free_port();
    let blog = format!("127.0.0.1:{blog_port}");
    let shop = format!("127.0.0.1:{}", free_port());
    let conf = dir.join("wsgid.toml");
    let fixtures = common::fixtures();
    let app = |name: &str, which: &str, listen: &str| {
        format!(
            "[[app]]\nname = \"{name}\"\napp = \"process_app:application\"\nchdir = \"{}\"\n\
             listen = [\"{listen}\"]\nenv = {{ WHICH = \"{which}\" }}\n",
            fixtures.display()
        )
    };
    let blog_listen = format!("fastcgi:{blog}");
    let venv = format!("virtualenv = \"{}\"\n", common::venv().display());
    std::fs::write(&conf, format!("{venv}{}", app("blog", "one", &blog_listen))).unwrap();
    let d = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    assert_eq!(get(&blog, "/env?WHICH"), (200, "WHICH=one".into()));
    let ino = listen_inode(blog_port);
    assert!(ino.is_some());

    std::fs::write(
        &conf,
        format!(
            "{venv}{}{}",
            app("blog", "two", &blog_listen),
            app("shop", "three", &format!("fastcgi:{shop}"))
        ),
    )
    .unwrap();
    hup(&d);
    wait_count(&d, "app blog: new workers ready", 1, 30);
    d.wait_log("shop-0[", 30);
    let end = Instant::now() + Duration::from_secs(10);
    while get(&blog, "/env?WHICH").1 != "WHICH=two" {
        assert!(Instant::now() < end, "{}", d.log());
    }
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&shop).is_err() {
        assert!(Instant::now() < end, "{}", d.log());
    }
    assert_eq!(get(&shop, "/env?WHICH"), (200, "WHICH=three".into()));
    assert_eq!(listen_inode(blog_port), ino, "the socket was bound again");

    std::fs::write(&conf, format!("{venv}{}", app("blog", "two", &blog_listen))).unwrap();
    hup(&d);
    d.wait_log("app shop: no longer configured", 30);
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&shop).is_ok() {
        assert!(
            Instant::now() < end,
            "shop's socket is still open:\n{}",
            d.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&blog, "/env?WHICH"), (200, "WHICH=two".into()));
    assert_eq!(listen_inode(blog_port), ino);
}

/// A configuration that does not load, or an application whose new code does not import,
/// leaves the running workers serving.
#[test]
fn a_reload_that_fails_keeps_the_running_workers() {
    let dir = scratch("reload-fail");
    let marker = dir.join("broken");
    let conf = dir.join("wsgid.toml");
    let port = free_port();
    let good = format!(
        "app = \"process_app:application\"\nfastcgi = \"127.0.0.1:{port}\"\nchdir = \"{}\"\n\
         virtualenv = \"{}\"\nenv = {{ WSGID_TEST_FAIL_IF = \"{}\" }}\n",
        common::fixtures().display(),
        common::venv().display(),
        marker.display()
    );
    std::fs::write(&conf, &good).unwrap();
    let d = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    let addr = format!("127.0.0.1:{port}");
    let first = get(&addr, "/pid").1;

    std::fs::write(&conf, format!("{good}threads = \"many\"\n")).unwrap();
    hup(&d);
    d.wait_log("reload failed; the running workers keep serving", 20);
    assert!(d.log().contains("reload: threads in "), "{}", d.log());
    assert_eq!(get(&addr, "/pid").1, first);

    std::fs::write(&conf, &good).unwrap();
    std::fs::write(&marker, b"").unwrap();
    hup(&d);
    d.wait_log(
        "the new workers cannot start; the running ones keep serving",
        20,
    );
    for _ in 0..10 {
        assert_eq!(get(&addr, "/pid"), (200, first.clone()));
    }
    std::fs::remove_file(&marker).unwrap();
    hup(&d);
    d.wait_log("new workers ready", 20);
    let end = Instant::now() + Duration::from_secs(10);
    while get(&addr, "/pid").1 == first {
        assert!(Instant::now() < end, "{}", d.log());
    }
}

/// reload_on: touching the file reloads that app only, with the settings it runs with.
#[test]
fn touching_a_reload_on_file_reloads_only_its_app() {
    let dir = scratch("touch-reload");
    let touch = dir.join("reload-blog");
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let conf = dir.join("wsgid.toml");
    std::fs::write(
        &conf,
        format!(
            "chdir = \"{}\"\nvirtualenv = \"{}\"\n\
             [[app]]\nname = \"blog\"\napp = \"process_app:application\"\n\
             listen = [\"fastcgi:{a}\"]\nreload_on = [\"{}\"]\n\
             [[app]]\nname = \"shop\"\napp = \"process_app:application\"\n\
             listen = [\"fastcgi:{b}\"]\n",
            common::fixtures().display(),
            common::venv().display(),
            touch.display()
        ),
    )
    .unwrap();
    let d = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    d.wait_log("wsgid ready", 30);
    let (blog, shop) = (get(&a, "/pid").1, get(&b, "/pid").1);
    std::fs::write(&touch, b"").unwrap();
    d.wait_log("reload-blog changed (reload_on); reloading it", 10);
    d.wait_log("app blog: new workers ready", 30);
    let end = Instant::now() + Duration::from_secs(10);
    while get(&a, "/pid").1 == blog {
        assert!(Instant::now() < end, "{}", d.log());
    }
    assert_eq!(get(&b, "/pid").1, shop);
    assert!(
        !d.log().contains("app shop: new workers ready"),
        "{}",
        d.log()
    );
}
