//! Large bodies stream through a worker without being held in memory: a worker's peak RSS
//! (VmHWM) grows by a bounded amount while hundreds of MiB pass through it, in both
//! directions, including to a client that does not read for a while (backpressure pauses
//! the app instead of buffering its output).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::fcgi::{self, record, Client, Next, Request, STDIN, STDOUT};
use common::{Builder, Daemon};

const APP: &str = "stream_app:application";
const MIB: usize = 1 << 20;
/// How much a worker's peak RSS may grow while a transfer passes through it.
const BOUND: u64 = 48 * MIB as u64;

/// Extra options for every daemon here (to check that the bound can fail:
/// WSGID_STREAMING_ARGS="--input-buffer 1G --output-buffer 1G" must break these tests).
fn start(builder: Builder) -> Daemon {
    let extra = std::env::var("WSGID_STREAMING_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    builder.args(&extra).start()
}

fn report(what: &str, growth: u64) {
    eprintln!(
        "{what}: worker peak RSS grew by {:.1} MiB",
        growth as f64 / MIB as f64
    );
}

fn worker_pid(addr: &str) -> u32 {
    let r = fcgi::request(addr, &Request::get("/pid")).cgi();
    r.text().parse().expect("pid")
}

/// Peak resident set size of `pid`, in bytes.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM value");
    kb * 1024
}

/// Deterministic, incompressible-enough body block.
fn block(i: usize) -> Vec<u8> {
    common::fcgi::noise(MIB, i as u64)
}

fn sha256_of_blocks(n: usize) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    {
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..n {
            stdin.write_all(&block(i % 4)).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_large_fastcgi_upload_streams_in_bounded_memory() {
    let d = start(Daemon::builder(APP).fastcgi());
    let addr = d.fcgi.clone().unwrap();
    let pid = worker_pid(&addr);
    let before = vm_hwm(pid);
    let n = 384; // MiB
    let mut c = Client::connect(&addr);
    let len = (n * MIB).to_string();
    let head = Request::post("/upload", b"")
        .set("CONTENT_LENGTH", &len)
        .no_stdin()
        .encode(1, false);
    c.send(&head);
    let blocks: Vec<Vec<u8>> = (0..4).map(block).collect();
    for i in 0..n {
        for piece in blocks[i % 4].chunks(fcgi::MAX_CONTENT) {
            c.send(&record(STDIN, 1, piece));
        }
    }
    c.send(&record(STDIN, 1, b""));
    let r = c.read_response(1).cgi();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{} {}", n * MIB, sha256_of_blocks(n)));
    let growth = vm_hwm(pid).saturating_sub(before);
    report("FastCGI upload", growth);
    assert!(
        growth < BOUND,
        "worker peak RSS grew by {} MiB during a {n} MiB upload",
        growth / MIB as u64
    );
}

#[test]
fn a_large_scgi_upload_streams_in_bounded_memory() {
    let d = start(Daemon::builder(APP).fastcgi().scgi());
    let pid = worker_pid(d.fcgi.as_ref().unwrap());
    let before = vm_hwm(pid);
    let n = 256;
    let len = (n * MIB).to_string();
    let req = Request::post("/upload", b"").set("CONTENT_LENGTH", &len);
    let mut s = TcpStream::connect(d.scgi.as_ref().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&common::scgi::encode(&req)).unwrap();
    let blocks: Vec<Vec<u8>> = (0..4).map(block).collect();
    for i in 0..n {
        s.write_all(&blocks[i % 4]).unwrap();
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let r = fcgi::CgiResponse::parse(&out);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{} {}", n * MIB, sha256_of_blocks(n)));
    let growth = vm_hwm(pid).saturating_sub(before);
    report("SCGI upload", growth);
    assert!(
        growth < BOUND,
        "peak RSS grew by {} MiB",
        growth / MIB as u64
    );
}

#[test]
fn a_large_download_to_a_slow_reader_streams_in_bounded_memory() {
    let d = start(Daemon::builder(APP).fastcgi());
    let addr = d.fcgi.clone().unwrap();
    let pid = worker_pid(&addr);
    let before = vm_hwm(pid);
    let n = 384;
    let mut c = Client::connect(&addr);
    c.send(&Request::get(&format!("/download?{n}")).encode(1, false));
    // Read nothing for a while: the app must be paused, not buffered.
    std::thread::sleep(Duration::from_millis(1500));
    let paused_growth = vm_hwm(pid).saturating_sub(before);
    let mut body = 0usize;
    let mut head_seen = false;
    let mut ended = false;
    while !ended {
        match c.next() {
            Next::Record(r) if r.rtype == STDOUT => {
                let mut content = &r.content[..];
                if !head_seen {
                    if let Some(at) = content.windows(4).position(|w| w == b"\r\n\r\n") {
                        head_seen = true;
                        content = &content[at + 4..];
                    } else {
                        continue;
                    }
                }
                body += content.len();
            }
            Next::Record(r) if r.rtype == fcgi::END_REQUEST => ended = true,
            Next::Record(_) => {}
            other => panic!("connection ended early: {other:?}"),
        }
    }
    assert_eq!(body, n * MIB);
    let growth = vm_hwm(pid).saturating_sub(before);
    report("download, client paused", paused_growth);
    report("download", growth);
    assert!(
        paused_growth < BOUND && growth < BOUND,
        "peak RSS grew by {} MiB while the client did not read, {} MiB in all",
        paused_growth / MIB as u64,
        growth / MIB as u64
    );
}

/// A worker with one Python thread, small buffers and many back-pressure rounds in both
/// directions: the thread, blocked on its own request's body or output, must run the
/// reactor itself (there is no other thread to). If a round ever waited for a timer
/// instead (the 1 s sweep, the 50 ms guard), 32 MiB through 64 KiB buffers (512 rounds)
/// would take minutes; it takes well under a second, and the bound here is 30 s.
#[test]
fn one_thread_drives_its_own_backpressure_in_both_directions() {
    let d = start(Daemon::builder(APP).fastcgi().scgi().args(&[
        "--threads",
        "1",
        "--input-buffer",
        "64K",
        "--output-buffer",
        "64K",
    ]));
    let fa = d.fcgi.as_deref().expect("fastcgi address");
    let sa = d.scgi.as_deref().expect("scgi address");
    let started = std::time::Instant::now();
    let body: Vec<u8> = (0..32).flat_map(|i| block(i % 4)).collect();
    let want = format!("{} {}", 32 * MIB, sha256_of_blocks(32));
    let r = fcgi::request(fa, &Request::post("/upload", &body)).cgi();
    assert_eq!(r.text(), want, "fastcgi upload");
    let r = common::scgi::request(sa, &Request::post("/upload", &body));
    assert_eq!(r.text(), want, "scgi upload");
    let r = fcgi::request(fa, &Request::get("/download").set("QUERY_STRING", "32")).cgi();
    assert_eq!(r.body.len(), 32 * MIB, "fastcgi download");
    let r = common::scgi::request(sa, &Request::get("/download").set("QUERY_STRING", "32"));
    assert_eq!(r.body.len(), 32 * MIB, "scgi download");
    let took = started.elapsed();
    eprintln!("4 x 32 MiB through one thread and 64 KiB buffers: {took:?}");
    assert!(
        took < Duration::from_secs(30),
        "took {took:?}: back-pressure rounds waited on timers"
    );
}

/// A front end that sends management records (FCGI_GET_VALUES, unknown types) without
/// reading the replies: once a connection owes `--output-buffer` bytes, wsgid stops reading
/// it, so the replies wait in bounded buffers, and every one of them arrives once the front
/// end reads.
#[test]
fn management_replies_to_a_front_end_that_does_not_read_are_bounded() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let d = start(Daemon::builder(APP).fastcgi());
    let addr = d.fcgi.clone().expect("fastcgi address");
    let pid = worker_pid(&addr);
    let before = vm_hwm(pid);
    let unit = [
        record(
            fcgi::GET_VALUES,
            0,
            &fcgi::name_value(b"FCGI_MAX_CONNS", b""),
        ),
        record(99, 0, b""),
    ]
    .concat();
    let chunk = unit.repeat(65536 / unit.len());
    let unit_len = unit.len();
    let mut c = Client::connect(&addr);
    let mut w = c.stream.try_clone().expect("clone the stream");
    let (units, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let writer = {
        let (units, stop) = (units.clone(), stop.clone());
        std::thread::spawn(move || {
            // 64 MiB at most: far past any bound, if wsgid kept reading.
            while !stop.load(Ordering::SeqCst) && units.load(Ordering::SeqCst) * unit_len < 64 * MIB
            {
                w.write_all(&chunk).expect("write management records");
                units.fetch_add(chunk.len() / unit_len, Ordering::SeqCst);
            }
        })
    };
    // Wait until the writer is held up (or has sent everything).
    let mut last = usize::MAX;
    while !writer.is_finished() && units.load(Ordering::SeqCst) != last {
        last = units.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
    }
    let growth = vm_hwm(pid).saturating_sub(before);
    let sent = units.load(Ordering::SeqCst) * unit.len();
    report("management records, replies not read", growth);
    eprintln!(
        "{:.1} MiB of records sent before wsgid stopped reading",
        sent as f64 / MIB as f64
    );
    assert!(
        growth < BOUND,
        "peak RSS grew by {} MiB for {} MiB of unread replies",
        growth / MIB as u64,
        sent / MIB
    );
    stop.store(true, Ordering::SeqCst);
    // Now read: every record sent gets its reply, in order.
    let mut replies = 0usize;
    loop {
        if writer.is_finished() && replies == 2 * units.load(Ordering::SeqCst) {
            break;
        }
        match c.next() {
            Next::Record(r) => {
                let want = if replies % 2 == 0 {
                    fcgi::GET_VALUES_RESULT
                } else {
                    fcgi::UNKNOWN_TYPE
                };
                assert_eq!(r.rtype, want, "reply {replies}");
                replies += 1;
            }
            other => panic!("connection ended after {replies} replies: {other:?}"),
        }
    }
    writer.join().expect("writer thread");
    assert_eq!(replies, 2 * units.load(Ordering::SeqCst));
}
