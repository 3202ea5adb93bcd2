//! The control socket: `wsgid status` (table and JSON) shows every app's workers with
//! their pids, users, states and counters; `wsgid reload [APP]` replaces workers as SIGHUP
//! does; the socket is mode 0600 and bounded.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fcgi::{self, Request};
use common::{free_port, scratch, Daemon};

fn wsgid(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wsgid"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get(addr: &str, uri: &str) -> (u16, String) {
    let r = fcgi::request(addr, &Request::get(uri)).cgi();
    (r.status, r.text())
}

#[test]
fn status_shows_every_app_and_worker() {
    let dir = scratch("status");
    let ctl = dir.join("control.sock");
    let (a, b) = (free_port(), free_port());
    let fixtures = common::fixtures();
    let conf = dir.join("wsgid.toml");
    std::fs::write(
        &conf,
        format!(
            "control_socket = \"control.sock\"\nvirtualenv = \"{}\"\nchdir = \"{}\"\n\
             [[app]]\nname = \"blog\"\napp = \"process_app:application\"\n\
             listen = [\"fastcgi:127.0.0.1:{a}\"]\nprocesses = 2\n\
             [[app]]\nname = \"shop\"\napp = \"process_app:application\"\n\
             listen = [\"fastcgi:127.0.0.1:{b}\"]\n",
            common::venv().display(),
            fixtures.display()
        ),
    )
    .unwrap();
    let d = Daemon::builder("")
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    d.wait_log("wsgid ready", 30);
    let mode = std::fs::metadata(&ctl).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for _ in 0..5 {
        assert_eq!(get(&format!("127.0.0.1:{b}"), "/").0, 200);
    }
    let shop_pid = get(&format!("127.0.0.1:{b}"), "/pid").1;
    // Workers post their counters every second.
    std::thread::sleep(Duration::from_millis(1200));

    let (code, out, err) = wsgid(&["status", "--json", "--config", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let apps = v["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 2, "{out}");
    assert_eq!(apps[0]["name"], "blog");
    assert_eq!(apps[0]["workers"].as_array().unwrap().len(), 2, "{out}");
    let shop = &apps[1]["workers"][0];
    assert_eq!(shop["pid"].to_string(), shop_pid, "{out}");
    assert_eq!(shop["state"], "serving");
    assert_eq!(shop["requests"], 6, "{out}");
    assert_eq!(shop["in_flight"], 0);
    assert_eq!(shop["uid"], nix::unistd::getuid().as_raw());
    assert!(shop["rss_bytes"].as_u64().unwrap() > 1 << 20, "{out}");
    assert_eq!(shop["restarts"], 0);

    let (code, table, err) = wsgid(&["status", "--control-socket", ctl.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with("APP "), "{table}");
    assert_eq!(lines.len(), 5, "{table}");
    assert!(
        lines.iter().any(|l| l.starts_with("shop ")
            && l.contains(&format!(" {shop_pid} "))
            && l.contains(" serving ")),
        "{table}"
    );

    // Reload one app: only its worker is replaced; status then shows its restart.
    let blog_before: Vec<String> = apps[0]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].to_string())
        .collect();
    let (code, out, err) = wsgid(&["reload", "shop", "--control-socket", ctl.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("app shop"), "{out}");
    d.wait_log("app shop: new workers ready", 30);
    let end = Instant::now() + Duration::from_secs(10);
    while get(&format!("127.0.0.1:{b}"), "/pid").1 == shop_pid {
        assert!(Instant::now() < end);
    }
    let (_, out, _) = wsgid(&[
        "status",
        "--json",
        "--control-socket",
        ctl.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let blog_after: Vec<String> = v["apps"][0]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].to_string())
        .collect();
    assert_eq!(
        blog_before, blog_after,
        "blog was not to be reloaded: {out}"
    );

    let (code, _, err) = wsgid(&[
        "reload",
        "nosuch",
        "--control-socket",
        ctl.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no app named \"nosuch\""), "{err}");
}

/// A client that sends nothing, sends too much, or sends nonsense is closed or refused,
/// and the master goes on answering.
#[test]
fn the_control_socket_is_bounded() {
    let dir = scratch("status-bounds");
    let ctl = dir.join("c.sock");
    let d = Daemon::builder("process_app:application")
        .fastcgi()
        .args(&["--control-socket", ctl.to_str().unwrap()])
        .start();
    let mut long = UnixStream::connect(&ctl).unwrap();
    let _ = long.write_all(&[b'x'; 4096]);
    let mut reply = String::new();
    long.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = long.read_to_string(&mut reply);
    assert!(reply.is_empty(), "{reply}");
    let mut odd = UnixStream::connect(&ctl).unwrap();
    odd.write_all(b"shutdown\n").unwrap();
    let mut reply = String::new();
    odd.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("unknown request"), "{reply}");
    // More silent clients than may wait: the extra ones are closed at once, the others
    // when their time is up; requests are served meanwhile, and status answers after.
    let silent: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(&ctl).unwrap())
        .collect();
    assert_eq!(get(d.fcgi.as_ref().unwrap(), "/").0, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let (code, out, err) = wsgid(&["status", "--control-socket", ctl.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    drop(silent);
    assert!(
        d.log().contains("clients are waiting already"),
        "{}",
        d.log()
    );
}
