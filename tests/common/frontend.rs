//! Real front ends for the end-to-end tests: an nginx launched from a config rendered into
//! a scratch directory (its own port, pid file, logs and temp paths), a small HTTP/1.1
//! client with a cookie jar to talk to it, and a counter of the TCP connections a front end
//! opened to wsgid (to see `fastcgi_keep_conn` reuse them).
//!
//! nginx runs in the foreground (`daemon off`) as a child of the test and is stopped on
//! drop. Started as root it switches its workers to `nobody` (no `user` directive), as a
//! packaged nginx switches to www-data, so socket permissions are exercised for real.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, scratch};

/// How nginx passes requests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// `fastcgi_pass ADDR`: one connection per request.
    FastCgi,
    /// `fastcgi_keep_conn on` + an `upstream` with `keepalive`: connections are reused.
    FastCgiKeepConn,
    /// `scgi_pass ADDR`: one connection per request (SCGI has no reuse).
    Scgi,
}

/// One application behind nginx: where it is mounted and how nginx reaches it.
#[derive(Debug, Clone)]
pub struct Site {
    pub pass: Pass,
    /// wsgid's listener: "127.0.0.1:PORT" or "unix:/path".
    pub backend: String,
    /// URL path the application is mounted at: "/" or "/app" (no trailing slash).
    pub mount: String,
    /// `server_name`; None leaves it out, so nginx sends an empty SERVER_NAME.
    pub server_name: Option<String>,
    /// `fastcgi_request_buffering` / `scgi_request_buffering` (nginx's default: on).
    pub request_buffering: bool,
    /// At /app: `location /app` (nginx forwards `/app` itself, and `/appx`, which wsgid's
    /// mount rule must refuse) instead of `location /app/` (nginx redirects `/app` to
    /// `/app/` and never forwards `/appx`).
    pub bare_mount: bool,
}

impl Site {
    pub fn new(pass: Pass, backend: &str, mount: &str) -> Site {
        Site {
            pass,
            backend: backend.to_string(),
            mount: mount.to_string(),
            server_name: None,
            request_buffering: true,
            bare_mount: false,
        }
    }

    pub fn bare_mount(mut self) -> Site {
        self.bare_mount = true;
        self
    }

    pub fn request_buffering(mut self, on: bool) -> Site {
        self.request_buffering = on;
        self
    }

    pub fn server_name(mut self, name: &str) -> Site {
        self.server_name = Some(name.to_string());
        self
    }
}

/// The whole nginx.conf; `@DIR@` is the scratch directory, `@UPSTREAMS@` and `@SERVERS@`
/// come from [`render`].
const NGINX_CONF: &str = "\
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log info;

events { worker_connections 256; }

http {
    access_log @DIR@/access.log;
    client_body_temp_path @DIR@/client_body;
    fastcgi_temp_path @DIR@/fastcgi_temp;
    scgi_temp_path @DIR@/scgi_temp;
    proxy_temp_path @DIR@/proxy_temp;
    uwsgi_temp_path @DIR@/uwsgi_temp;
    # The upload tests send 5 MiB; nginx refuses more than 1 MiB by default.
    client_max_body_size 64m;
@UPSTREAMS@
@SERVERS@
}
";

/// One `server` block; `@LOCATIONS@` from [`location`].
const SERVER: &str = "
    server {
        listen 127.0.0.1:@PORT@;
@SERVER_NAME@        root @DIR@/www;
@LOCATIONS@    }
";

/// Where Debian (and most distributions) keep nginx's stock parameter files.
const NGINX_ETC: &str = "/etc/nginx";

/// The `location` block(s) for `site`. An app mounted at /app gets `location /app/`: nginx
/// then answers `/app` itself with a redirect to `/app/` and never forwards `/appx`.
/// Stock params only: wsgid rebuilds SCRIPT_NAME/PATH_INFO from DOCUMENT_URI and --mount.
fn location(site: &Site, upstream: &str) -> String {
    let loc = if site.mount == "/" {
        "/".to_string()
    } else if site.bare_mount {
        site.mount.trim_end_matches('/').to_string()
    } else {
        format!("{}/", site.mount.trim_end_matches('/'))
    };
    let mut s = String::new();
    let _ = writeln!(s, "        location {loc} {{");
    match site.pass {
        Pass::FastCgi | Pass::FastCgiKeepConn => {
            let _ = writeln!(s, "            include {NGINX_ETC}/fastcgi_params;");
            if !site.request_buffering {
                s.push_str("            fastcgi_request_buffering off;\n");
            }
            if site.pass == Pass::FastCgiKeepConn {
                s.push_str("            fastcgi_keep_conn on;\n");
                let _ = writeln!(s, "            fastcgi_pass {upstream};");
            } else {
                let _ = writeln!(s, "            fastcgi_pass {};", site.backend);
            }
        }
        Pass::Scgi => {
            let _ = writeln!(s, "            include {NGINX_ETC}/scgi_params;");
            if !site.request_buffering {
                s.push_str("            scgi_request_buffering off;\n");
            }
            let _ = writeln!(s, "            scgi_pass {};", site.backend);
        }
    }
    s.push_str("        }\n");
    s
}

/// nginx.conf for one site on `port`, with every path inside `dir`.
pub fn render(site: &Site, port: u16, dir: &Path) -> String {
    render_many(&[(site.clone(), port)], dir)
}

/// nginx.conf with one `server` per site, each on its own port, every path inside `dir`.
pub fn render_many(sites: &[(Site, u16)], dir: &Path) -> String {
    let mut upstreams = String::new();
    let mut servers = String::new();
    for (i, (site, port)) in sites.iter().enumerate() {
        let upstream = format!("wsgid_keepalive{i}");
        if site.pass == Pass::FastCgiKeepConn {
            let _ = write!(
                upstreams,
                "    upstream {upstream} {{\n        server {};\n        keepalive 4;\n    }}\n",
                site.backend
            );
        }
        let server_name = match &site.server_name {
            Some(n) => format!("        server_name {n};\n"),
            None => String::new(),
        };
        servers.push_str(
            &SERVER
                .replace("@SERVER_NAME@", &server_name)
                .replace("@LOCATIONS@", &location(site, &upstream))
                .replace("@PORT@", &port.to_string()),
        );
    }
    NGINX_CONF
        .replace("@UPSTREAMS@", &upstreams)
        .replace("@SERVERS@", &servers)
        .replace("@DIR@", &dir.display().to_string())
}

/// The nginx executable: $NGINX, else /usr/sbin/nginx, else `nginx` on PATH.
pub fn nginx_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NGINX") {
        return PathBuf::from(p);
    }
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.exists() {
        return sbin.to_path_buf();
    }
    PathBuf::from("nginx")
}

/// A running nginx, stopped on drop.
pub struct Nginx {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    /// Its scratch directory (config, logs, pid file, temp paths), removed after nginx
    /// stops when the test passed.
    pub dir: PathBuf,
}

impl Nginx {
    /// Starts nginx serving `site` on a free loopback port.
    pub fn start(site: &Site) -> Nginx {
        let port = free_port();
        let dir = scratch("nginx").keep(); // removed on drop, when the test passed
        let conf = render(site, port, &dir);
        Nginx::start_conf(&conf, port, dir)
    }

    /// Starts one nginx serving each site on a port of its own; returns it and the ports,
    /// in the order of `sites`.
    pub fn start_many(sites: &[Site]) -> (Nginx, Vec<u16>) {
        let placed: Vec<(Site, u16)> = sites.iter().map(|s| (s.clone(), free_port())).collect();
        let dir = scratch("nginx").keep(); // removed on drop, when the test passed
        let conf = render_many(&placed, &dir);
        let ports: Vec<u16> = placed.iter().map(|(_, p)| *p).collect();
        (Nginx::start_conf(&conf, ports[0], dir), ports)
    }

    /// Starts nginx with a complete config (already rendered for `port` and `dir`) and
    /// waits (up to 10 s) until `port` accepts connections. `dir` is removed on drop, when
    /// the test passed.
    pub fn start_conf(conf: &str, port: u16, dir: PathBuf) -> Nginx {
        std::fs::create_dir_all(dir.join("www")).expect("create nginx www dir");
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let out = std::fs::File::create(dir.join("stderr.log")).expect("create nginx stderr log");
        let err = out.try_clone().expect("clone nginx stderr log");
        let bin = nginx_bin();
        let child = Command::new(&bin)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): install nginx (Debian: apt-get install nginx-light) \
                     or set NGINX to its path",
                    bin.display()
                )
            });
        let mut n = Nginx {
            child: Some(child),
            port,
            dir,
        };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "nginx exited early ({st}); config:\n{conf}\nstderr:\n{}\nerror.log:\n{}",
                    n.read("stderr.log"),
                    n.error_log()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return n;
            }
            if Instant::now() > end {
                panic!(
                    "nginx not listening within 10s; error.log:\n{}",
                    n.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        self.read("error.log")
    }

    /// nginx's access log so far.
    pub fn access_log(&self) -> String {
        self.read("access.log")
    }

    /// The rendered config.
    pub fn config(&self) -> String {
        self.read("nginx.conf")
    }

    /// An HTTP client for this nginx.
    pub fn client(&self) -> Client {
        Client::new(self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- nginx config ----\n{}\n---- nginx error.log ----\n{}",
                self.config(),
                self.error_log()
            );
        }
        if let Some(c) = self.child.take() {
            // SIGTERM is nginx's fast shutdown: the master stops its workers, then exits.
            super::stop_child(c);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    /// Sent with Content-Length.
    Bytes(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, in chunks of the given size.
    Chunked(Vec<u8>, usize),
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name`, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {} {}",
                self.status,
                self.text()
            )
        })
    }

    /// Panics with the response unless its status is `status`.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Response {
        assert_eq!(
            self.status,
            status,
            "unexpected status; headers {:?}; body:\n{}",
            self.headers,
            self.text()
        );
        self
    }
}

/// A tiny HTTP/1.1 client: one connection per request (`Connection: close`), a cookie jar
/// (name → value, attributes ignored), bodies with Content-Length or chunked.
pub struct Client {
    pub port: u16,
    /// Cookies sent with every request, updated from every `Set-Cookie`.
    pub cookies: Vec<(String, String)>,
    /// Value of the Host header.
    pub host: String,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client {
            port,
            cookies: Vec::new(),
            host: format!("127.0.0.1:{port}"),
        }
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, &[], Body::Empty)
    }

    /// POSTs `fields` as application/x-www-form-urlencoded.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = form_urlencode(fields).into_bytes();
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Body::Bytes(body),
        )
    }

    /// Sends one request and reads the whole response.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Response {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.host
        );
        for (k, v) in headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = write!(head, "Cookie: {}\r\n", jar.join("; "));
        }
        match &body {
            Body::Empty if method == "POST" || method == "PUT" => {
                head.push_str("Content-Length: 0\r\n")
            }
            Body::Empty => {}
            Body::Bytes(b) => {
                let _ = write!(head, "Content-Length: {}\r\n", b.len());
            }
            Body::Chunked(..) => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        head.push_str("\r\n");
        let resp = exchange(self.port, head.as_bytes(), &body);
        self.store_cookies(&resp);
        resp
    }

    fn store_cookies(&mut self, resp: &Response) {
        for sc in resp.headers_named("set-cookie") {
            let pair = sc.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            let lower = sc.to_ascii_lowercase();
            let expired = lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970");
            self.cookies.retain(|(k, _)| *k != name);
            if !expired {
                self.cookies.push((name, value));
            }
        }
    }

    /// The value of cookie `name`, if the jar has it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw request bytes (for requests the client above cannot make, such as HTTP/1.0
/// without a Host header) and reads the response to EOF.
pub fn raw_request(port: u16, request: &[u8]) -> Response {
    exchange(port, request, &Body::Empty)
}

fn exchange(port: u16, head: &[u8], body: &Body) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(60)));
    // A write error means the server answered (and closed) early; its answer is still
    // there to read.
    let _ = write_request(&mut s, head, body);
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        if raw.is_empty() {
            panic!("no response from 127.0.0.1:{port}: {e}");
        }
    }
    parse_response(&raw)
        .unwrap_or_else(|e| panic!("bad response ({e}): {:?}", String::from_utf8_lossy(&raw)))
}

fn write_request(s: &mut TcpStream, head: &[u8], body: &Body) -> std::io::Result<()> {
    s.write_all(head)?;
    match body {
        Body::Empty => {}
        Body::Bytes(b) => s.write_all(b)?,
        Body::Chunked(b, size) => {
            for chunk in b.chunks((*size).max(1)) {
                s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                s.write_all(chunk)?;
                s.write_all(b"\r\n")?;
            }
            s.write_all(b"0\r\n\r\n")?;
        }
    }
    // No half-close: nginx takes EOF from a client as an abort of the request (499).
    s.flush()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a complete response read to EOF.
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let rest = &raw[end + 4..];
    let resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(cl) = resp.header("content-length") {
        let n: usize = cl
            .parse()
            .map_err(|_| format!("bad Content-Length {cl:?}"))?;
        if rest.len() < n {
            return Err(format!("body truncated: {} of {n} bytes", rest.len()));
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { body, ..resp })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or("chunk size line not terminated")?;
        let line = std::str::from_utf8(&data[..eol]).map_err(|_| "chunk size not UTF-8")?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk truncated".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// application/x-www-form-urlencoded (the WHATWG URL standard's serializer).
pub fn form_urlencode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The connections (by the front end's ephemeral port) that exist or recently existed
/// between any client and the IPv4 listener on `port`, from /proc/net/tcp: open ones and
/// those in TIME_WAIT (which lingers for a minute after a close), so the count is the
/// number of connections made over the last minute.
pub fn connections_to(port: u16) -> BTreeSet<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let mut peers = BTreeSet::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(state)) =
            (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        // State 0A is LISTEN.
        if *state == "0A" {
            continue;
        }
        let port_of = |a: &str| {
            a.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        match (port_of(local), port_of(remote)) {
            (Some(l), Some(r)) if l == port && r != 0 => {
                peers.insert(r);
            }
            (Some(l), Some(r)) if r == port => {
                peers.insert(l);
            }
            _ => {}
        }
    }
    peers
}

/// SHA-256 of `data` in hex, from coreutils' sha256sum.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .expect("sha256sum stdin")
        .write_all(data)
        .expect("write to sha256sum");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// `len` deterministic pseudo-random bytes (xorshift64), so corruption anywhere shows.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
