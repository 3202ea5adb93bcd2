//! End to end through the real Apache 2.4 from Debian: mod_proxy_fcgi (`ProxyPass`, with
//! `enablereuse=on`, and the `SetHandler "proxy:fcgi://…"` form) and mod_proxy_scgi, each
//! at `/` and at `/app`, through the request matrix every front end passes
//! (tests/common/matrix.rs); and the example config shipped in conf.d/.
//!
//! Needs Apache (Debian: apache2) and the virtualenv of fixtures/requirements.txt for the
//! example's Flask app ($WSGID_TEST_VENV or ./.venv; scripts/test creates it).

mod common;

use common::apache::{Apache, Shape, Site};
use common::frontend::connections_to;
use common::matrix::{run_all, FrontEnd};
use common::Daemon;

/// One wsgid (FastCGI and SCGI) serving fixtures/frontend_app.py at `mount`, and one Apache
/// with a virtual host per way of passing requests on. mod_proxy_scgi answers a chunked
/// upload with 411 itself (SCGI needs the length up front): the matrix checks that.
fn apache_matrix(mount: &str) {
    let mut b = Daemon::builder("frontend_app").fastcgi().scgi();
    if mount != "/" {
        b = b.args(&["--mount", mount]);
    }
    let daemon = b.start();
    let fcgi = daemon.fcgi.clone().expect("FastCGI address");
    let scgi = daemon.scgi.clone().expect("SCGI address");
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
