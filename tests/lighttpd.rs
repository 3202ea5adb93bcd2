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

use std::path::Path;

use common::lighttpd::{Handler, Lighttpd, Module};
use common::matrix::FrontEnd;
use common::Daemon;

/// Runs the matrix through each front end; on a failure prints `logs` (wsgid's) first.
fn run_matrix(front_ends: &[FrontEnd], logs: &dyn Fn() -> String) {
    for fe in front_ends {
        let outcome = std::panic::catch_unwind(|| common::matrix::run(fe));
        if let Err(e) = outcome {
            eprintln!("---- wsgid log ----\n{}", logs());
            std::panic::resume_unwind(e);
        }
    }
}

/// One wsgid (FastCGI and SCGI) serving fixtures/frontend_app.py at `mount`, and one
/// lighttpd with a block per way of passing requests on: mod_fastcgi and mod_scgi, each
/// with lighttpd's default (the whole body read before the request goes on) and with
/// `server.stream-request-body = 2`.
fn lighttpd_matrix(mount: &str) {
    let mut b = Daemon::builder("frontend_app").fastcgi().scgi();
    if mount != "/" {
        b = b.args(&["--mount", mount]);
    }
    let daemon = b.start();
    let fcgi = daemon.fcgi.clone().expect("FastCGI address");
    let scgi = daemon.scgi.clone().expect("SCGI address");
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
    run_matrix(&front_ends, &|| daemon.log());
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
    run_matrix(&front_ends, &|| format!("{}\n{}", app.log(), legacy.log()));
}
