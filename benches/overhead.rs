//! CPU cost of wsgid's pure-Rust per-request path, without sockets or Python: decoding the
//! FastCGI records of an nginx GET (BEGIN_REQUEST with FCGI_KEEP_CONN, PARAMS, empty
//! STDIN) on a kept-alive [`Connection`], building the CGI environ from its params (into
//! the previous request's variable list, as a worker thread does), and
//! encoding the response of `fixtures/hello.py` (head and body as STDOUT records, then the
//! empty STDOUT and END_REQUEST).
//!
//! `per_request/total` is the whole path, one request per iteration; `decode`, `environ`
//! and `encode` are its three parts.
//!
//! ```text
//! cargo bench --bench overhead
//! ```

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wsgid::environ::{self, Local};
use wsgid::protocol::fastcgi::client::{encode_begin_request, encode_params, encode_stdin};
use wsgid::protocol::fastcgi::{
    encode_end_request, encode_stdout, Capabilities, Connection, Event, ProtocolStatus, RESPONDER,
};
use wsgid::protocol::{Limits, Outcome, Params};

thread_local! {
    /// The environ's variable list, kept from one request to the next as the worker does.
    static SPARE: std::cell::Cell<Vec<environ::Var<'static>>> =
        const { std::cell::Cell::new(Vec::new()) };
}

/// nginx uses request id 1 on every upstream connection.
const ID: u16 = 1;
/// What fixtures/hello.py answers.
const HEAD: &[u8] =
    b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\n";
const BODY: &[u8] = b"Hello, world!\n";

/// The bytes nginx writes for one request on a kept-alive upstream connection.
fn nginx_request() -> Vec<u8> {
    let owned = common::nginx_params("/");
    let params: Vec<(&[u8], &[u8])> = owned
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let mut out = Vec::with_capacity(1024);
    encode_begin_request(ID, RESPONDER, true, &mut out);
    encode_params(ID, &params, &mut out);
    encode_stdin(ID, b"", &mut out);
    out
}

fn connection() -> Connection {
    Connection::new(
        Limits::default(),
        Capabilities {
            max_conns: 10_000,
            max_reqs: 1000,
            mpxs_conns: true,
        },
    )
}

/// Feeds one request's bytes and returns its params once the body has ended.
fn decode(conn: &mut Connection, request: &[u8]) -> Option<Params> {
    conn.receive(request).ok()?;
    let mut params = None;
    let mut ended = false;
    while let Some(ev) = conn.poll_event() {
        match ev {
            Event::Request {
                id: ID, params: p, ..
            } => params = Some(p),
            Event::StdinEnd { id: ID } => ended = true,
            _ => return None,
        }
    }
    params.filter(|_| ended)
}

/// The response records of hello.py, appended to `out`.
fn encode(out: &mut Vec<u8>) {
    encode_stdout(ID, HEAD, out);
    encode_stdout(ID, BODY, out);
    encode_end_request(ID, 0, ProtocolStatus::RequestComplete, out);
}

/// The whole path for one request; returns the number of response bytes (0 on failure).
fn request(conn: &mut Connection, req: &[u8], local: &Local, out: &mut Vec<u8>) -> usize {
    let Some(params) = decode(conn, req) else {
        return 0;
    };
    let vars = match environ::build_with(&params, "", local, SPARE.take()) {
        Ok(env) => {
            let n = black_box(&env).vars.len();
            SPARE.set(env.into_spare());
            n
        }
        Err(_) => return 0,
    };
    out.clear();
    encode(out);
    conn.end(ID, Outcome::Complete);
    black_box(vars);
    out.len()
}

fn benches(c: &mut Criterion) {
    let req = nginx_request();
    let local = Local {
        host: "127.0.0.1".into(),
        port: "9000".into(),
    };

    // Check the path once, so that the figures measure a request that really succeeds.
    let mut conn = connection();
    let mut out = Vec::with_capacity(256);
    let n = request(&mut conn, &req, &local, &mut out);
    assert!(n > 0, "the nginx request does not decode into an environ");
    let params = decode(&mut connection(), &req).unwrap_or_default();
    assert_eq!(params.len(), 25, "the request should carry 25 params");

    let mut g = c.benchmark_group("per_request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("total", |b| {
        b.iter(|| request(&mut conn, black_box(&req), &local, &mut out))
    });
    g.bench_function("decode", |b| {
        let mut conn = connection();
        b.iter(|| {
            let p = decode(&mut conn, black_box(&req));
            conn.end(ID, Outcome::Complete);
            p
        })
    });
    g.bench_function("environ", |b| {
        b.iter(|| {
            environ::build_with(black_box(&params), "", &local, SPARE.take())
                .map(|e| {
                    let n = black_box(&e).vars.len();
                    SPARE.set(e.into_spare());
                    n
                })
                .unwrap_or(0)
        })
    });
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode(&mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(overhead, benches);
criterion_main!(overhead);
