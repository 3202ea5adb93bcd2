//! Everything the master does at once, under continuous load at two apps: three SIGHUP
//! reloads, workers recycled by max_requests, one worker killed with SIGKILL, and a request
//! past request_timeout. The counts it reports: no request fails for the reloads or the
//! recycling; only requests in flight on the killed worker fail; the timed-out request
//! gets 504 and its worker's other requests complete.

mod common;

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

fn wait_count(d: &Daemon, needle: &str, count: usize, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while d.log().matches(needle).count() < count {
        assert!(
            Instant::now() < end,
            "{needle:?} not {count} times in:\n{}",
            d.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reloads_recycling_a_killed_worker_and_a_timeout_under_load() {
    let dir = scratch("supervision");
    let (blog, shop) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let conf = dir.join("wsgid.toml");
    std::fs::write(
        &conf,
        format!(
            "chdir = \"{}\"\nvirtualenv = \"{}\"\ngraceful_timeout = 10\n\
             [[app]]\nname = \"blog\"\napp = \"process_app:application\"\n\
             listen = [\"fastcgi:{blog}\"]\nprocesses = 2\nthreads = 2\n\
             max_requests = 40\nmax_requests_jitter = 20\n\
             [[app]]\nname = \"shop\"\napp = \"process_app:application\"\n\
             listen = [\"fastcgi:{shop}\"]\nthreads = 4\nrequest_timeout = 1\n",
            common::fixtures().display(),
            common::venv().display()
        ),
    )
    .unwrap();
    let d = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    d.wait_log("wsgid ready: 3 workers", 30);
    let master = Pid::from_raw(d.pid() as i32);
    let blog_load = Load::start(&blog, "/pid", 3);
    let shop_load = Load::start(&shop, "/pid", 2);

    // Three reloads, each awaited.
    for round in 1..=3 {
        thread::sleep(Duration::from_millis(300));
        kill(master, Signal::SIGHUP).unwrap();
        wait_count(&d, "app shop: new workers ready", round, 30);
        wait_count(&d, "app blog: new workers ready", round, 30);
    }
    // Recycling happens on its own under this load.
    wait_count(&d, "max_requests reached; starting its replacement", 2, 30);

    // A request past request_timeout on shop, beside one that completes on the same worker.
    let s = shop.clone();
    let timed_out = thread::spawn(move || get(&s, "/burn?5"));
    let s = shop.clone();
    let beside = thread::spawn(move || get(&s, "/sleep?0.5"));

    // One blog worker killed.
    let victim: i32 = get(&blog, "/pid").1.parse().unwrap();
    let killed_at = Instant::now();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    wait_count(&d, "was killed by SIGKILL while serving", 1, 20);
    thread::sleep(Duration::from_millis(1500));

    let (timeout_status, _) = timed_out.join().unwrap();
    let (beside_status, beside_body) = beside.join().unwrap();
    let (blog_ok, blog_failed) = blog_load.finish();
    let (shop_ok, shop_failed) = shop_load.finish();
    let log = d.log();
    let recycled = log
        .matches("max_requests reached; starting its replacement")
        .count();
    let reloads = log.matches("SIGHUP: reloading the configuration").count();
    eprintln!(
        "blog: {blog_ok} answered, {} failed; shop: {shop_ok} answered, {} failed; \
         {reloads} reloads, {recycled} recycles, 1 worker killed, timed-out request: \
         {timeout_status}",
        blog_failed.len(),
        shop_failed.len()
    );
    assert_eq!(timeout_status, 504, "{log}");
    assert_eq!(
        (beside_status, beside_body.as_str()),
        (200, "slept"),
        "{log}"
    );
    assert!(log.contains("request_timeout"), "{log}");
    assert!(shop_failed.is_empty(), "shop failed: {shop_failed:?}");
    // Only what was in flight on the killed worker failed: at most one request per client,
    // each sent just before the kill.
    assert!(blog_failed.len() <= 3, "blog failed: {blog_failed:?}");
    for (sent, what) in &blog_failed {
        let before = killed_at.saturating_duration_since(*sent);
        let after = sent.saturating_duration_since(killed_at);
        assert!(
            before < Duration::from_secs(1) && after < Duration::from_millis(200),
            "a failure not explained by the kill: {what} sent {before:?} before / {after:?} \
             after it"
        );
    }
    assert!(
        blog_ok > 200 && shop_ok > 100,
        "{blog_ok} and {shop_ok} requests"
    );
    assert_eq!(reloads, 3);
}
