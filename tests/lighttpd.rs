//! End to end through the real lighttpd 1.4: an HTTP client → lighttpd → wsgid →
//! fixtures/frontend_app.py, held to the request matrix every front end passes
//! (tests/common/matrix.rs): the application must see the same SCRIPT_NAME, PATH_INFO,
//! QUERY_STRING and body as through nginx.
//!
//! mod_fastcgi and mod_scgi to a running wsgid, at `/` and at `/app`, with lighttpd's
//! buffered request bodies and with `server.stream-request-body = 2`; the shipped examples
//! conf.d/lighttpd-wsgid.conf (to a running wsgid) and conf.d/lighttpd-spawn.conf
//! (`bin-path`: lighttpd starts wsgid itself, as www-data, with the listening socket on fd
//! 0 and a near-empty environment), each rendered with the test's addresses and paths.
//!
//! lighttpd at "/app" forwards `/appx/z` as SCRIPT_NAME `/appx` and PATH_INFO `/z`:
//! wsgid's mount rule is what keeps it from the application (the matrix checks it).
//!
//! Needs lighttpd (Debian: lighttpd).

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::frontend::{parse_response, pseudo_random, sha256_hex, Client};
use common::lighttpd::{Handler, Lighttpd, Module};
use common::matrix::{run_all, FrontEnd, POST_BYTES};
use common::stage::Stage;
use common::Daemon;

/// One wsgid (FastCGI and SCGI) serving fixtures/frontend_app.py at `mount`, and one
/// lighttpd with a block per way of passing requests on: mod_fastcgi and mod_scgi, each
/// with lighttpd's default (the whole body read before the request goes on) and with
/// `server.stream-request-body = 2`.
fn lighttpd_matrix(mount: &str) {
    let (daemon, fcgi, scgi) = common::matrix::backend(mount);
    let shapes = [
        (
            "lighttpd mod_fastcgi",
            Handler::new(Module::FastCgi, &fcgi, mount),
        ),
        (
            "lighttpd mod_scgi",
            Handler::new(Module::Scgi, &scgi, mount),
        ),
        (
            "lighttpd mod_fastcgi, server.stream-request-body = 2",
            Handler::new(Module::FastCgi, &fcgi, mount).streaming(),
        ),
        (
            "lighttpd mod_scgi, server.stream-request-body = 2",
            Handler::new(Module::Scgi, &scgi, mount).streaming(),
        ),
    ];
    let handlers: Vec<Handler> = shapes.iter().map(|(_, h)| h.clone()).collect();
    let lighttpd = Lighttpd::start(&handlers);
    let front_ends: Vec<FrontEnd> = shapes
        .iter()
        .zip(&lighttpd.ports)
        .map(|((name, h), port)| {
            let fe = FrontEnd::new(name, *port, mount);
            if h.stream_request_body {
                fe.without_chunked_uploads()
            } else {
                fe
            }
        })
        .collect();
    run_all(&front_ends, &|| daemon.log());
}

#[test]
fn matrix_lighttpd_root() {
    lighttpd_matrix("/");
}

#[test]
fn matrix_lighttpd_app() {
    lighttpd_matrix("/app");
}

/// The text of `conf.d/NAME`.
fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf.d")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `text` with `from` replaced by `to`; panics when `text` no longer has `from` (the
/// example changed under the test).
#[track_caller]
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example lost its line {from:?}");
    text.replace(from, to)
}

/// conf.d/lighttpd-wsgid.conf as shipped, pointed at two running wsgids (FastCGI over TCP
/// at /app, SCGI over a Unix socket at /legacy), at the top level of a lighttpd, and again
/// with its `server.stream-request-body = 2` line enabled in a block of its own: the
/// matrix through all four.
#[test]
fn conf_d_lighttpd_example() {
    let dir = common::scratch("lighttpd-example");
    let sock = dir.join("legacy.sock");
    let app = Daemon::builder("frontend_app")
        .fastcgi()
        .args(&["--mount", "/app"])
        .start();
    let mut legacy = Daemon::builder("frontend_app")
        .arg("--scgi")
        .arg(&format!("unix:{}", sock.display()))
        .args(&["--mount", "/legacy"]);
    if common::is_root() {
        // As the example says: lighttpd (www-data) connects through the socket's group.
        legacy = legacy.args(&["--socket-group", common::lighttpd::USER]);
    }
    let legacy = legacy.start();
    let fcgi_port = app
        .fcgi
        .as_deref()
        .and_then(|a| a.rsplit(':').next())
        .expect("FastCGI port")
        .to_string();

    let text = example("lighttpd-wsgid.conf");
    let text = substitute(
        &text,
        "\"port\" => 9000,",
        &format!("\"port\" => {fcgi_port},"),
    );
    let text = substitute(
        &text,
        "\"socket\" => \"/run/wsgid/legacy.sock\",",
        &format!("\"socket\" => \"{}\",", sock.display()),
    );
    let streaming = "#server.stream-request-body = 2";
    assert!(text.contains(streaming), "the example lost {streaming:?}");
    let port = common::free_port();
    let conf = format!(
        "{text}\n{}",
        common::lighttpd::socket_block(port, &format!("    {}\n", &streaming[1..]))
    );
    let lighttpd = Lighttpd::start_conf(&conf, vec![port], Lighttpd::scratch());
    let buffered = lighttpd.base_port;
    let front_ends = [
        FrontEnd::new("lighttpd-wsgid.conf, FastCGI", buffered, "/app"),
        FrontEnd::new("lighttpd-wsgid.conf, SCGI", buffered, "/legacy"),
        FrontEnd::new("lighttpd-wsgid.conf streaming, FastCGI", port, "/app")
            .without_chunked_uploads(),
        FrontEnd::new("lighttpd-wsgid.conf streaming, SCGI", port, "/legacy")
            .without_chunked_uploads(),
    ];
    run_all(&front_ends, &|| format!("{}\n{}", app.log(), legacy.log()));
}

/// conf.d/lighttpd-spawn.conf for the stage: its paths replaced with the stage's, its
/// socket in `run`, the application at `mount`.
fn spawn_example(stage: &Stage, run: &Path, mount: &str, socket: &str) -> String {
    let d = stage.dir.display();
    let text = example("lighttpd-spawn.conf");
    let text = substitute(&text, "/usr/local/bin/wsgid", &format!("{d}/wsgid"));
    let text = substitute(&text, "/srv/mysite/venv", &format!("{d}/venv"));
    let text = substitute(&text, "--chdir /srv/mysite", &format!("--chdir {d}"));
    let text = substitute(&text, "mysite.wsgi:application", "frontend_app");
    let text = substitute(
        &text,
        "/run/lighttpd/wsgid.sock",
        &run.join(socket).display().to_string(),
    );
    let text = substitute(&text, "--mount /app", &format!("--mount {mount}"));
    substitute(&text, "\"/app\" => ((", &format!("\"{mount}\" => (("))
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

/// Waits (up to `secs`) until every process of `pids` is gone.
fn wait_gone(pids: &BTreeSet<String>, secs: u64, what: &str, lighttpd: &Lighttpd) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !pids.iter().all(|p| gone(p)) {
        assert!(
            Instant::now() < end,
            "{what}: still running after {secs} s: {:?}; log:\n{}",
            pids.iter().filter(|p| !gone(p)).collect::<Vec<_>>(),
            lighttpd.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to 30 s) until the wsgids lighttpd spawned have logged `n` times that they
/// are ready, in all.
fn wait_ready(lighttpd: &Lighttpd, n: usize) {
    let end = Instant::now() + Duration::from_secs(30);
    while lighttpd.stderr().matches("wsgid ready").count() < n {
        assert!(
            Instant::now() < end,
            "not {n} times \"wsgid ready\":\n{}",
            lighttpd.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The wsgid masters lighttpd spawned and their workers.
fn spawned(lighttpd: &Lighttpd) -> (BTreeSet<String>, BTreeSet<String>) {
    let masters = common::children(lighttpd.pid());
    let workers = masters
        .iter()
        .flat_map(|m| common::children(m.parse().unwrap_or(0)))
        .collect();
    (masters, workers)
}

/// conf.d/lighttpd-spawn.conf as shipped: lighttpd starts wsgid itself (`bin-path`, the
/// socket on fd 0, lighttpd's near-empty environment, the directory of the binary, as
/// www-data when root), here twice: the example's application at /app, and one at / in a
/// block of its own. The matrix through both; then a graceful restart (SIGUSR1), after
/// which new wsgids serve and the old ones are gone; then lighttpd's stop, after which no
/// wsgid process is left.
#[test]
fn conf_d_lighttpd_spawn_example() {
    let stage = Stage::new();
    let dir = Lighttpd::scratch();
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("create run dir");
    common::lighttpd::give_to_lighttpd(&run);
    let app = spawn_example(&stage, &run, "/app", "wsgid.sock");
    let root = spawn_example(&stage, &run, "/", "root.sock");
    // The root application in a block of its own port: its own fastcgi.server there.
    let (modules, handlers): (Vec<&str>, Vec<&str>) =
        root.lines().partition(|l| l.starts_with("server.modules"));
    assert_eq!(modules.len(), 1, "one server.modules line in the example");
    let root_port = common::free_port();
    let root_block = common::lighttpd::socket_block(
        root_port,
        &handlers
            .iter()
            .map(|l| {
                format!(
                    "    {}\n",
                    l.replace("fastcgi.server +=", "fastcgi.server =")
                )
            })
            .collect::<String>(),
    );
    let mut lighttpd = Lighttpd::start_conf(&format!("{app}\n{root_block}"), vec![root_port], dir);
    let front_ends = [
        FrontEnd::new("lighttpd-spawn.conf", lighttpd.base_port, "/app"),
        FrontEnd::new("lighttpd-spawn.conf at /", root_port, "/"),
    ];
    run_all(&front_ends, &|| lighttpd.stderr());

    wait_ready(&lighttpd, 2);
    let (masters, workers) = spawned(&lighttpd);
    assert_eq!(
        masters.len(),
        2,
        "two wsgids: {masters:?}\n{}",
        lighttpd.stderr()
    );
    assert_eq!(workers.len(), 4, "two workers each: {workers:?}");
    for pid in masters.iter().chain(&workers) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        let want = if common::is_root() {
            nix::unistd::User::from_name(common::lighttpd::USER)
                .ok()
                .flatten()
                .map(|u| u.uid.to_string())
        } else {
            Some(nix::unistd::geteuid().to_string())
        };
        assert_eq!(Some(uid), want, "process {pid} runs as lighttpd's user");
    }

    // Graceful restart: lighttpd stops its backends (SIGTERM) and spawns new ones.
    lighttpd.signal(nix::sys::signal::Signal::SIGUSR1);
    let old: BTreeSet<String> = masters.union(&workers).cloned().collect();
    wait_gone(&old, 10, "the wsgids before the restart", &lighttpd);
    wait_ready(&lighttpd, 4);
    let (masters, workers) = spawned(&lighttpd);
    assert_eq!((masters.len(), workers.len()), (2, 4), "after SIGUSR1");
    let mut c = Client::new(lighttpd.base_port);
    let r = c.get("/app/after-restart");
    r.expect_status(200);
    assert_eq!(r.json()["PATH_INFO"], "/after-restart");

    // lighttpd's stop leaves no wsgid behind.
    let all: BTreeSet<String> = masters.union(&workers).cloned().collect();
    lighttpd.stop();
    wait_gone(&all, 10, "the wsgids after lighttpd stopped", &lighttpd);
    let log = lighttpd.stderr();
    assert_eq!(log.matches("wsgid ready").count(), 4, "{log}");
    assert_eq!(log.matches("SIGTERM: stopping").count(), 4, "{log}");
}

/// How many connections to the IPv4 listener on `port` are open (ESTABLISHED, state 01 in
/// /proc/net/tcp), counted on the listener's side.
fn open_connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local_port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1).is_some_and(|l| l.ends_with(&local_port)) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// With `server.stream-request-body = 2` the body goes on to wsgid as it arrives: half a
/// 1 MiB upload sent, lighttpd is already connected to wsgid; by default it is not until
/// the body is complete. Either way the application then reads the whole body.
#[test]
fn stream_request_body_passes_the_upload_on_before_its_end() {
    let daemon = Daemon::builder("frontend_app").fastcgi().start();
    let fcgi = daemon.fcgi.clone().expect("FastCGI address");
    let wsgid_port: u16 = fcgi
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("FastCGI port");
    let lighttpd = Lighttpd::start(&[
        Handler::new(Module::FastCgi, &fcgi, "/").streaming(),
        Handler::new(Module::FastCgi, &fcgi, "/"),
    ]);
    let body = pseudo_random(POST_BYTES, 7);
    for (port, streams) in [(lighttpd.ports[0], true), (lighttpd.ports[1], false)] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to lighttpd");
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("send the head");
        let (first, rest) = body.split_at(body.len() / 2);
        s.write_all(first).expect("send half the body");
        // Streaming: wait for the connection to wsgid. Buffering: give lighttpd as long
        // and check there is none.
        let end = Instant::now() + Duration::from_millis(if streams { 5000 } else { 300 });
        let mut connected = false;
        while Instant::now() < end && !connected {
            connected = open_connections_to(wsgid_port) > 0;
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            connected,
            streams,
            "half the body sent, stream-request-body {}: connected to wsgid {connected}",
            if streams { 2 } else { 0 }
        );
        s.write_all(rest).expect("send the rest of the body");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read the response");
        let r = parse_response(&raw).expect("an HTTP response");
        r.expect_status(200);
        let seen = r.json();
        assert_eq!(seen["body_length"], POST_BYTES, "{seen}");
        assert_eq!(seen["body_sha256"], sha256_hex(&body), "{seen}");
        // The connection to wsgid closes with the request (no keep-alive to FastCGI
        // backends in lighttpd 1.4).
        let end = Instant::now() + Duration::from_secs(5);
        while open_connections_to(wsgid_port) > 0 {
            assert!(
                Instant::now() < end,
                "lighttpd kept its connection to wsgid"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
