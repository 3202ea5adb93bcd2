//! Recycling: a worker past `max_requests`, `max_lifetime`, `max_rss` or `max_cpu_time` is
//! replaced gracefully — its successor serves before it stops accepting, and it finishes the
//! requests it holds — with the reason logged; no request fails for it. A successor that
//! cannot start leaves the old worker serving.

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use common::fcgi::{self, Request};
use common::Daemon;

const APP: &str = "process_app:application";

fn get(addr: &str, uri: &str) -> (u16, String) {
    let r = fcgi::request(addr, &Request::get(uri)).cgi();
    (r.status, r.text())
}

/// The pid that served `/pid`; panics on any other answer.
fn pid(addr: &str) -> u32 {
    let (status, body) = get(addr, "/pid");
    assert_eq!(status, 200, "{body}");
    body.parse()
        .unwrap_or_else(|_| panic!("not a pid: {body:?}"))
}

/// Asks `/pid` until it answers something other than `old`, or panics after `secs`.
fn wait_for_new_pid(addr: &str, old: u32, secs: u64) -> u32 {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let p = pid(addr);
        if p != old {
            return p;
        }
        assert!(Instant::now() < end, "pid {old} was never replaced");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of `log` that contain `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

/// Workers are replaced after max_requests (plus jitter): every request succeeds, one in
/// flight on a replaced worker included, and each old worker stops accepting only after
/// its successor said it was ready.
#[test]
fn max_requests_replaces_workers_without_failing_a_request() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--processes", "2", "--max-requests", "20"])
        .args(&["--max-requests-jitter", "5"])
        .start();
    let addr = d.fcgi.clone().unwrap();
    let a = addr.clone();
    let slow = thread::spawn(move || get(&a, "/sleep?3"));
    let log = d.wait_log("sleep started pid=", 20);
    let slow_pid: u32 = log
        .split("sleep started pid=")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .expect("pid of the slow request");
    // A worker serves on past its max_requests while its successor loads: go on until six
    // workers have served, every request answered.
    let mut pids = BTreeSet::new();
    let mut requests = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while pids.len() < 6 {
        pids.insert(pid(&addr));
        requests += 1;
        assert!(
            Instant::now() < end,
            "{requests} requests served by {pids:?}"
        );
    }
    assert_eq!(slow.join().unwrap(), (200, "slept".to_string()));
    let log = d.log();
    let asked = lines_with(&log, "max_requests reached; starting its replacement");
    assert!(asked.len() >= 4, "{log}");
    assert!(
        log.contains(&format!("(pid {slow_pid}) replaced by pid")),
        "the slow request's worker was never replaced:\n{log}"
    );
    // Each worker asks for its replacement at its own max_requests, within the jitter.
    for line in lines_with(&log, "requests taken (max_requests)") {
        let n: u32 = line
            .split(" requests taken")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no count in {line:?}"));
        assert!((20..=25).contains(&n), "{line}");
    }
    // The order, for every replacement: the successor is ready, then the old worker is
    // told to stop (and only then stops accepting).
    for line in lines_with(&log, ") replaced by pid ") {
        let field = |before: &str, after: char| -> String {
            line.split(before)
                .nth(1)
                .and_then(|s| s.split(after).next())
                .unwrap_or_else(|| panic!("no {before:?} in {line:?}"))
                .to_string()
        };
        let (old_pid, new_pid) = (field("(pid ", ')'), field("replaced by pid ", ' '));
        let at = |needle: String| {
            log.find(&needle)
                .unwrap_or_else(|| panic!("{needle:?} missing:\n{log}"))
        };
        let ready = at(format!("[{new_pid}]  INFO wsgid::worker: worker ready"));
        let stops = at(format!(
            "[{old_pid}]  INFO wsgid::worker::event_loop: stopping"
        ));
        assert!(
            ready < stops,
            "{old_pid} stopped before {new_pid} was ready:\n{log}"
        );
    }
    assert!(!log.contains("backoff"), "{log}");
    assert!(
        !log.contains("replacing it in"),
        "a recycled worker was treated as dead:\n{log}"
    );
}

/// max_lifetime: the worker is replaced once it is that old, under continuous requests,
/// none failing.
#[test]
fn max_lifetime_replaces_an_old_worker() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--max-lifetime", "1"])
        .start();
    let addr = d.fcgi.clone().unwrap();
    let first = pid(&addr);
    let end = Instant::now() + Duration::from_secs(20);
    let mut pids = BTreeSet::from([first]);
    while pids.len() < 3 {
        pids.insert(pid(&addr));
        assert!(Instant::now() < end, "only {pids:?} in 20 s:\n{}", d.log());
    }
    let log = d.log();
    assert!(
        log.contains(&format!("(pid {first}): max_lifetime: ")),
        "{log}"
    );
}

/// max_rss: a worker whose resident memory grows past the limit is replaced; the request
/// that grew it was answered.
#[test]
fn max_rss_replaces_a_worker_that_grew() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--max-rss", "150M"])
        .start();
    let addr = d.fcgi.clone().unwrap();
    let first = pid(&addr);
    let (status, body) = get(&addr, "/alloc?200");
    assert_eq!((status, body), (200, first.to_string()));
    wait_for_new_pid(&addr, first, 20);
    let log = d.log();
    let line = lines_with(&log, &format!("(pid {first}): max_rss: "));
    assert_eq!(line.len(), 1, "{log}");
    assert!(line[0].contains("above 150.0 MiB"), "{log}");
}

/// max_cpu_time: a worker that has used that much CPU time is replaced.
#[test]
fn max_cpu_time_replaces_a_busy_worker() {
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--max-cpu-time", "1"])
        .start();
    let addr = d.fcgi.clone().unwrap();
    let first = pid(&addr);
    assert_eq!(get(&addr, "/burn?1.2"), (200, first.to_string()));
    wait_for_new_pid(&addr, first, 20);
    assert!(
        d.log().contains(&format!("(pid {first}): max_cpu_time: ")),
        "{}",
        d.log()
    );
}

/// A successor that fails to load leaves its predecessor serving, and is tried again
/// (with backoff) until one loads.
#[test]
fn a_replacement_that_cannot_start_leaves_the_old_worker_serving() {
    let dir = common::scratch("recycle-fail");
    let marker = dir.join("fail");
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--max-requests", "3"])
        .env("WSGID_TEST_FAIL_IF", marker.to_str().unwrap())
        .start();
    let addr = d.fcgi.clone().unwrap();
    let first = pid(&addr);
    std::fs::write(&marker, b"").unwrap();
    pid(&addr);
    pid(&addr);
    d.wait_log(
        "before it was ready; the worker it was to replace goes on serving",
        20,
    );
    for _ in 0..20 {
        assert_eq!(pid(&addr), first);
    }
    std::fs::remove_file(&marker).unwrap();
    wait_for_new_pid(&addr, first, 30);
    assert!(
        d.log().contains(&format!("(pid {first}) replaced by pid")),
        "{}",
        d.log()
    );
}

/// A worker that reaches max_requests while a sibling is still loading (wsgid starting) is
/// replaced all the same: it asks once, and the master remembers.
#[test]
fn max_requests_reached_while_a_sibling_loads_is_acted_on() {
    let dir = common::scratch("recycle-early");
    let marker = dir.join("first");
    let d = Daemon::builder(APP)
        .fastcgi()
        .args(&["--processes", "2", "--max-requests", "3"])
        .env("WSGID_TEST_SLOW_SECOND", marker.to_str().unwrap())
        .start();
    let addr = d.fcgi.clone().unwrap();
    // One worker serves; the other sleeps in its import for 3 s.
    for _ in 0..5 {
        pid(&addr);
    }
    assert!(
        !d.log().contains("wsgid ready"),
        "both workers were ready already:\n{}",
        d.log()
    );
    d.wait_log("max_requests reached; starting its replacement", 15);
    d.wait_log("wsgid ready", 15);
}
