//! Tests of the environ mapping: every cell of the front-end matrix
//! (shared/frontends/what-each-front-end-sends.md, embedded below verbatim) for an app at
//! the root and at `/app`, header joining, dropped params, fallbacks, bad requests and
//! latin-1 bytes.

use super::*;
use std::borrow::Cow;

/// SCRIPT_NAME ‖ PATH_INFO as each front end sends them (— = absent, '' = empty; a number is
/// the status the front end answered itself, so nothing reached the backend). Cells show
/// UTF-8 bytes as latin-1 text ("cafÃ©" is "café" in UTF-8).
const MATRIX: &str = "
| n-fcgi-root | / ‖ — | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | /app/a/b/c d ‖ — | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | /appx/z ‖ — |
| n-fcgi-app-plain | 403 | 301 | /app/ ‖ — | /app/x/y ‖ — | /app/a/b/c d ‖ — | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | 404 |
| n-fcgi-app-split-flask | 403 | /app ‖ '' | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /app ‖ x/z |
| n-fcgi-app-static-nosplit | 403 | 301 | /app ‖ '' | /app ‖ '' | /app ‖ '' | /app ‖ '' | /app ‖ '' | /app ‖ '' | 404 |
| n-fcgi-app-static-split | 403 | 301 | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | 404 |
| n-scgi-root | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — |
| n-scgi-app | 403 | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — |
| n-scgi-app-params | 403 | /app ‖ '' | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | 404 |
| n-fcgi-root-keepconn | / ‖ — | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | /app/a/b/c d ‖ — | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | /appx/z ‖ — |
| n-fcgi-root-nobuf | / ‖ — | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | /app/a/b/c d ‖ — | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | /appx/z ‖ — |
| n-scgi-root-nobuf | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — | — ‖ — |
| a-pfcgi-app-slash | 404 | 404 | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | 404 |
| a-pfcgi-root | / ‖ — | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | /appx/z ‖ — |
| a-pfcgi-app-slash-generic | 404 | 404 | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | 404 |
| a-pfcgi-root-generic | / ‖ — | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | /appx/z ‖ — |
| a-pfcgi-app-pathinfo-1 | 404 | 404 | /app ‖ / | /app ‖ /x/y | 404 | /app/cafÃ© ‖ /caf%C3%A9 | /app ‖ /double/slash | /app ‖ /y | 404 |
| a-pfcgi-app-pathinfo-unescape | 404 | 404 | /app ‖ / | /app ‖ /x/y | 404 | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | 404 |
| a-pfcgi-app-pathinfo-full | 404 | 404 | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | 404 |
| a-pfcgi-app-noslash | 404 | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | 404 |
| a-pfcgi-app-sethandler | 404 | /app ‖ — | /app ‖ / | /app ‖ /x/y | 404 | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | 404 |
| a-pfcgi-root-reuse | / ‖ — | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | /appx/z ‖ — |
| a-pscgi-app | 404 | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | 404 |
| a-pscgi-root | / ‖ — | /app ‖ — | /app/ ‖ — | /app/x/y ‖ — | 404 | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | /appx/z ‖ — |
| a-pscgi-app-pathinfo | 404 | /app ‖ / | /app ‖ / | /app ‖ /x/y | 404 | /app/cafÃ© ‖ /caf%C3%A9 | /app ‖ /double/slash | /app ‖ /y | 404 |
| a-fcgid-alias | 404 | /app ‖ — | /app ‖ / | /app ‖ /x/y | 404 | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | 404 |
| a-fcgid-wrapper-virtual | 404 | /app ‖ — | /app ‖ / | /app ‖ /x/y | 404 | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | 404 |
| a-fcgid-root-alias | '' ‖ / | '' ‖ /app | '' ‖ /app/ | '' ‖ /app/x/y | 404 | '' ‖ /app/cafÃ© | '' ‖ /app/double/slash | '' ‖ /app/y | '' ‖ /appx/z |
| a-pfcgi-app-encslash | 404 | 404 | /app/ ‖ — | /app/x/y ‖ — | /app/a%2Fb/c d ‖ — | /app/cafÃ© ‖ — | /app/double/slash ‖ — | /app/y ‖ — | 404 |
| a-fcgid-alias-encslash | 404 | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a%2Fb/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | 404 |
| l-fcgi-root | / ‖ — | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
| l-fcgi-root-fixroot | '' ‖ / | '' ‖ /app | '' ‖ /app/ | '' ‖ /app/x/y | '' ‖ /app/a/b/c d | '' ‖ /app/cafÃ© | '' ‖ /app/double/slash | '' ‖ /app/y | '' ‖ /appx/z |
| l-fcgi-app | 403 | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
| l-fcgi-app-fixroot | 403 | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
| l-scgi-root | / ‖ — | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
| l-scgi-root-fixroot | '' ‖ / | '' ‖ /app | '' ‖ /app/ | '' ‖ /app/x/y | '' ‖ /app/a/b/c d | '' ‖ /app/cafÃ© | '' ‖ /app/double/slash | '' ‖ /app/y | '' ‖ /appx/z |
| l-scgi-app | 403 | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
| l-fcgi-app-slash | 403 | 404 | /app/ ‖ — | /app/x ‖ /y | /app/a ‖ /b/c d | /app/cafÃ© ‖ — | /app/double ‖ /slash | /app/y ‖ — | 404 |
| l-fcgi-root-stream | / ‖ — | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
| l-scgi-root-stream | / ‖ — | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
| l-fcgi-spawn | 403 | /app ‖ — | /app ‖ / | /app ‖ /x/y | /app ‖ /a/b/c d | /app ‖ /cafÃ© | /app ‖ /double/slash | /app ‖ /y | /appx ‖ /z |
";

/// The request targets of the matrix's columns.
const TARGETS: [&str; 9] = [
    "/",
    "/app",
    "/app/",
    "/app/x/y?q=1&r=%20",
    "/app/a%2Fb/c%20d",
    "/app/caf%C3%A9",
    "/app//double//slash",
    "/app/./x/../y",
    "/appx/z",
];

/// The decoded, normalised path of each column (what nginx's DOCUMENT_URI holds).
const PATHS: [&[u8]; 9] = [
    b"/",
    b"/app",
    b"/app/",
    b"/app/x/y",
    b"/app/a/b/c d",
    b"/app/caf\xc3\xa9",
    b"/app/double/slash",
    b"/app/y",
    b"/appx/z",
];

/// With `AllowEncodedSlashes NoDecode` Apache keeps `%2F` encoded in the path it sends.
const ENCSLASH_PATH: &[u8] = b"/app/a%2Fb/c d";

fn local() -> Local {
    Local {
        host: "127.0.0.1".into(),
        port: "9000".into(),
    }
}

/// Text from the matrix (or a test) as bytes: each char is one latin-1 byte.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1 text"))
        .collect()
}

/// A cell value: None = absent, Some(bytes) = sent.
fn cell_value(s: &str) -> Option<Vec<u8>> {
    match s.trim() {
        "—" => None,
        "''" => Some(Vec::new()),
        v => Some(latin1(v)),
    }
}

fn params_of(pairs: &[(&[u8], &[u8])]) -> Params {
    let mut p = Params::new();
    for (n, v) in pairs {
        p.push(n, v);
    }
    p
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
type Pair<'p> = (&'p [u8], &'p [u8]);

fn add(p: &mut Pairs, name: &str, value: &[u8]) {
    p.push((name.as_bytes().to_vec(), value.to_vec()));
}

/// Request headers as each front end forwards them, with hostile ones that must change
/// nothing about SCRIPT_NAME/PATH_INFO.
fn add_headers(p: &mut Pairs, shape: &str) {
    add(p, "HTTP_USER_AGENT", b"curl/7.88.1");
    add(p, "HTTP_SCRIPT_NAME", b"/evil");
    add(p, "HTTP_X_SCRIPT_NAME", b"/evil");
    add(p, "HTTP_X_FORWARDED_PREFIX", b"/evil");
    add(p, "HTTP_PATH_INFO", b"/evil");
    if shape.starts_with("n-") {
        // nginx 1.22: repeated headers as repeated params, plus the forbidden copies.
        add(p, "HTTP_COOKIE", b"a=1");
        add(p, "HTTP_COOKIE", b"b=2");
        add(p, "HTTP_X_DUP", b"a");
        add(p, "HTTP_X_DUP", b"b");
        add(p, "HTTP_PROXY", b"httpoxy");
        add(p, "HTTP_CONTENT_TYPE", b"text/x-get");
    } else {
        add(
            p,
            "HTTP_COOKIE",
            if shape.starts_with("l-") {
                b"a=1; b=2"
            } else {
                b"a=1, b=2"
            },
        );
        add(p, "HTTP_X_DUP", b"a, b");
    }
    if shape.starts_with("l-") {
        // lighttpd maps both `X_Under_Score` and `X-Under-Score` to one name.
        add(p, "HTTP_X_UNDER_SCORE", b"underscore");
    }
    add(p, "HTTP_X_UNDER_SCORE", b"dash");
}

/// The params a front end in `shape` sends for column `col`, given the matrix cell.
fn shape_params(shape: &str, col: usize, sn: Option<Vec<u8>>, pi: Option<Vec<u8>>) -> Params {
    let target = TARGETS[col].as_bytes();
    let query = target
        .iter()
        .position(|&b| b == b'?')
        .map_or(&b""[..], |q| &target[q + 1..]);
    let scgi = shape.contains("scgi");
    let mut p: Pairs = Vec::new();
    if scgi || shape.starts_with("l-") || shape.starts_with("a-fcgid") {
        add(&mut p, "CONTENT_LENGTH", b"0");
    }
    if scgi {
        add(&mut p, "SCGI", b"1");
    }
    if shape.starts_with("n-") {
        // Debian's stock fastcgi_params / scgi_params, in their order.
        add(&mut p, "QUERY_STRING", query);
        add(&mut p, "REQUEST_METHOD", b"GET");
        add(&mut p, "CONTENT_TYPE", b"");
        let overrides = shape.contains("split") || shape.contains("static");
        if !scgi {
            add(&mut p, "CONTENT_LENGTH", b"");
            // $fastcgi_script_name: the whole $uri unless split_path_info matched.
            let stock_sn = match (&sn, overrides) {
                (_, true) if shape.contains("nosplit") => PATHS[col].to_vec(),
                (Some(sn), _) => sn.clone(),
                (None, _) => PATHS[col].to_vec(),
            };
            add(&mut p, "SCRIPT_NAME", &stock_sn);
        }
        add(&mut p, "REQUEST_URI", target);
        add(&mut p, "DOCUMENT_URI", PATHS[col]);
        add(&mut p, "DOCUMENT_ROOT", b"/tmp/fe-nginx/www");
        add(&mut p, "SERVER_PROTOCOL", b"HTTP/1.1");
        add(&mut p, "REQUEST_SCHEME", b"http");
        add(&mut p, "REMOTE_ADDR", b"127.0.0.1");
        add(&mut p, "REMOTE_PORT", b"40000");
        add(&mut p, "SERVER_PORT", b"18101");
        add(&mut p, "SERVER_NAME", b"");
        add(&mut p, "HTTP_HOST", b"localhost");
        if overrides || scgi {
            // The location's own scgi_param / fastcgi_param lines.
            if shape.contains("flask") {
                if let Some(v) = &pi {
                    add(&mut p, "PATH_INFO", v);
                }
                if let Some(v) = &sn {
                    add(&mut p, "SCRIPT_NAME", v);
                }
            } else {
                if let Some(v) = &sn {
                    add(&mut p, "SCRIPT_NAME", v);
                }
                if let Some(v) = &pi {
                    add(&mut p, "PATH_INFO", v);
                }
            }
        }
        add_headers(&mut p, shape);
    } else if shape.starts_with("a-") {
        // mod_proxy_fcgi / mod_proxy_scgi / mod_fcgid: headers first, then the CGI set.
        add(&mut p, "HTTP_HOST", b"localhost:18201");
        add_headers(&mut p, shape);
        add(&mut p, "SERVER_SOFTWARE", b"Apache/2.4");
        add(&mut p, "SERVER_NAME", b"localhost");
        add(&mut p, "SERVER_PORT", b"18201");
        add(&mut p, "REMOTE_ADDR", b"127.0.0.1");
        add(&mut p, "REQUEST_SCHEME", b"http");
        add(&mut p, "GATEWAY_INTERFACE", b"CGI/1.1");
        add(&mut p, "SERVER_PROTOCOL", b"HTTP/1.1");
        add(&mut p, "REQUEST_METHOD", b"GET");
        add(&mut p, "QUERY_STRING", query);
        add(&mut p, "REQUEST_URI", target);
        if let Some(v) = &sn {
            add(&mut p, "SCRIPT_NAME", v);
        }
        if let Some(v) = &pi {
            add(&mut p, "PATH_INFO", v);
        }
    } else {
        // lighttpd mod_fastcgi / mod_scgi.
        add(&mut p, "SERVER_SOFTWARE", b"lighttpd/1.4.69");
        add(&mut p, "SERVER_NAME", b"localhost");
        add(&mut p, "GATEWAY_INTERFACE", b"CGI/1.1");
        add(&mut p, "REQUEST_SCHEME", b"http");
        add(&mut p, "SERVER_PORT", b"18301");
        add(&mut p, "SERVER_PROTOCOL", b"HTTP/1.1");
        add(&mut p, "REQUEST_METHOD", b"GET");
        if let Some(v) = &sn {
            add(&mut p, "SCRIPT_NAME", v);
        }
        if let Some(v) = &pi {
            add(&mut p, "PATH_INFO", v);
        }
        add(&mut p, "REQUEST_URI", target);
        add(&mut p, "QUERY_STRING", query);
        add(&mut p, "HTTP_HOST", b"localhost:18301");
        add_headers(&mut p, shape);
    }
    let borrowed: Vec<(&[u8], &[u8])> = p.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    params_of(&borrowed)
}

/// The value of `name` in the vars, asserting it occurs exactly once.
fn var<'e>(env: &'e Environ<'_>, name: &str) -> Option<&'e [u8]> {
    let found: Vec<&[u8]> = env
        .vars
        .iter()
        .filter(|(n, _)| n.as_ref() == name.as_bytes())
        .map(|(_, v)| v.as_ref())
        .collect();
    assert!(found.len() <= 1, "{name} occurs {} times", found.len());
    found.first().copied()
}

fn names(env: &Environ<'_>) -> Vec<String> {
    env.vars
        .iter()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .collect()
}

fn assert_unique_names(env: &Environ<'_>) {
    let mut all = names(env);
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count, "a name occurs twice: {:?}", names(env));
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_cell_of_the_front_end_matrix() {
    let mut shapes = 0;
    let mut checked = 0;
    for line in MATRIX.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 10, "{line}");
        let shape = cells[0];
        shapes += 1;
        for (col, cell) in cells[1..].iter().enumerate() {
            if cell.parse::<u16>().is_ok() {
                continue; // the front end answered this one itself
            }
            let (sn, pi) = cell.split_once('‖').expect("SCRIPT_NAME ‖ PATH_INFO");
            let params = shape_params(shape, col, cell_value(sn), cell_value(pi));
            let path = if shape.contains("encslash") && col == 4 {
                ENCSLASH_PATH
            } else {
                PATHS[col]
            };
            // Apps at the root and at /app, whatever the shape was written for.
            for mount in ["", "/app"] {
                let ctx = format!("{shape} {} mount {mount:?}", TARGETS[col]);
                let result = build(&params, mount, &local());
                let expected: Option<(&[u8], &[u8])> = if mount.is_empty() {
                    Some((b"", path))
                } else if path == mount.as_bytes() {
                    Some((mount.as_bytes(), b""))
                } else {
                    path.strip_prefix(mount.as_bytes())
                        .filter(|rest| rest.starts_with(b"/"))
                        .map(|rest| (mount.as_bytes(), rest))
                };
                match (expected, result) {
                    (None, Err(Reject::NotFound)) => {}
                    (Some((want_sn, want_pi)), Ok(env)) => {
                        assert_eq!(
                            var(&env, "SCRIPT_NAME").map(text),
                            Some(text(want_sn)),
                            "{ctx}"
                        );
                        assert_eq!(
                            var(&env, "PATH_INFO").map(text),
                            Some(text(want_pi)),
                            "{ctx}"
                        );
                        assert_unique_names(&env);
                        assert_eq!(var(&env, "HTTP_SCRIPT_NAME"), Some(&b"/evil"[..]));
                        assert_eq!(var(&env, "HTTP_PROXY"), None, "{ctx}");
                        assert_eq!(var(&env, "HTTP_CONTENT_TYPE"), None, "{ctx}");
                        assert_eq!(var(&env, "HTTP_X_DUP"), Some(&b"a, b"[..]), "{ctx}");
                        let cookie = var(&env, "HTTP_COOKIE").map(text);
                        if shape.starts_with("a-") {
                            // Apache joins with ", " itself; passed on as sent.
                            assert_eq!(cookie.as_deref(), Some("a=1, b=2"), "{ctx}");
                        } else {
                            assert_eq!(cookie.as_deref(), Some("a=1; b=2"), "{ctx}");
                        }
                        assert_eq!(var(&env, "REQUEST_URI"), Some(TARGETS[col].as_bytes()));
                        assert!(!var(&env, "SERVER_NAME").unwrap_or(b"").is_empty());
                        assert!(!var(&env, "SERVER_PORT").unwrap_or(b"").is_empty());
                        assert!(var(&env, "QUERY_STRING").is_some());
                        assert_eq!(env.url_scheme, "http");
                    }
                    (expected, result) => panic!("{ctx}: expected {expected:?}, got {result:?}"),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(shapes, 40);
    assert!(checked > 500, "only {checked} cells checked");
}

#[test]
fn request_headers_cannot_move_the_application_root() {
    let hostile: &[(&[u8], &[u8])] = &[
        (b"REQUEST_METHOD", b"GET"),
        (b"HTTP_SCRIPT_NAME", b"/app"),
        (b"HTTP_X_SCRIPT_NAME", b"/app"),
        (b"HTTP_X_FORWARDED_PREFIX", b"/app"),
        (b"HTTP_PATH_INFO", b"/x"),
        (b"HTTP_DOCUMENT_URI", b"/app/x"),
        (b"HTTP_REQUEST_URI", b"/app/x"),
        (b"REQUEST_URI", b"/other/x"),
    ];
    let params = params_of(hostile);
    assert_eq!(build(&params, "/app", &local()), Err(Reject::NotFound));
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(var(&env, "SCRIPT_NAME"), Some(&b""[..]));
    assert_eq!(var(&env, "PATH_INFO"), Some(&b"/other/x"[..]));
    assert_eq!(var(&env, "HTTP_SCRIPT_NAME"), Some(&b"/app"[..]));
}

#[test]
fn nginx_repeated_headers_are_joined_at_the_first_position() {
    let params = params_of(&[
        (b"REQUEST_METHOD", b"GET"),
        (b"HTTP_COOKIE", b"a=1"),
        (b"HTTP_X_DUP", b"a"),
        (b"DOCUMENT_URI", b"/x"),
        (b"HTTP_COOKIE", b"b=2"),
        (b"HTTP_X_DUP", b"b"),
        (b"HTTP_X_DUP", b""),
        (b"HTTP_COOKIE", b"c=3"),
    ]);
    let env = build(&params, "", &local()).unwrap();
    let n = names(&env);
    assert_eq!(
        &n[..4],
        [
            "REQUEST_METHOD",
            "HTTP_COOKIE",
            "HTTP_X_DUP",
            "DOCUMENT_URI"
        ]
    );
    assert_eq!(var(&env, "HTTP_COOKIE"), Some(&b"a=1; b=2; c=3"[..]));
    assert_eq!(var(&env, "HTTP_X_DUP"), Some(&b"a, b, "[..]));
    assert_unique_names(&env);
}

#[test]
fn repeated_host_and_other_params_keep_the_last_value_at_the_first_position() {
    let params = params_of(&[
        (b"SERVER_NAME", b"first"),
        (b"HTTP_HOST", b"localhost"),
        (b"REQUEST_METHOD", b"HEAD"),
        (b"SCRIPT_NAME", b"/app/h"),
        (b"CUSTOM", b"1"),
        (b"HTTP_HOST", b"localhost:8080"),
        (b"SCRIPT_NAME", b"/app"),
        (b"CUSTOM", b"2"),
        (b"REQUEST_METHOD", b"GET"),
        (b"SERVER_NAME", b"second"),
    ]);
    let env = build(&params, "/app", &local()).unwrap();
    assert_eq!(
        names(&env),
        [
            "SERVER_NAME",
            "HTTP_HOST",
            "REQUEST_METHOD",
            "SCRIPT_NAME",
            "CUSTOM",
            "PATH_INFO",
            "SERVER_PORT",
            "SERVER_PROTOCOL",
            "QUERY_STRING"
        ]
    );
    assert_eq!(var(&env, "HTTP_HOST"), Some(&b"localhost:8080"[..]));
    assert_eq!(var(&env, "SERVER_NAME"), Some(&b"second"[..]));
    assert_eq!(var(&env, "SERVER_PORT"), Some(&b"8080"[..]));
    assert_eq!(var(&env, "REQUEST_METHOD"), Some(&b"GET"[..]));
    assert_eq!(var(&env, "CUSTOM"), Some(&b"2"[..]));
    assert_eq!(var(&env, "SCRIPT_NAME"), Some(&b"/app"[..]));
    assert_eq!(var(&env, "PATH_INFO"), Some(&b""[..]));
}

#[test]
fn many_params_with_and_without_repeats() {
    // Past the on-stack index (64 params).
    let names_owned: Vec<String> = (0..200).map(|i| format!("X_{i}")).collect();
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b"REQUEST_METHOD", b"GET")];
    pairs.extend(names_owned.iter().map(|n| (n.as_bytes(), &b"v"[..])));
    let params = params_of(&pairs);
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(env.vars.len(), 201 + 6);
    pairs.push((b"HTTP_A", b"1"));
    pairs.push((b"X_7", b"w"));
    pairs.push((b"HTTP_A", b"2"));
    let params = params_of(&pairs);
    let env = build(&params, "", &local()).unwrap();
    assert_unique_names(&env);
    assert_eq!(var(&env, "X_7"), Some(&b"w"[..]));
    assert_eq!(var(&env, "HTTP_A"), Some(&b"1, 2"[..]));
    assert_eq!(names(&env)[8], "X_7");
}

#[test]
fn forbidden_and_dangerous_headers_are_dropped() {
    let params = params_of(&[
        (b"REQUEST_METHOD", b"POST"),
        (b"CONTENT_TYPE", b"text/plain"),
        (b"CONTENT_LENGTH", b"3"),
        (b"HTTP_CONTENT_TYPE", b"text/plain"),
        (b"HTTP_CONTENT_LENGTH", b"3"),
        (b"HTTP_PROXY", b"http://evil:3128"),
        (b"HTTP_PROXY", b"again"),
        (b"HTTP_PROXY_AUTHORIZATION", b"kept"),
    ]);
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(var(&env, "HTTP_CONTENT_TYPE"), None);
    assert_eq!(var(&env, "HTTP_CONTENT_LENGTH"), None);
    assert_eq!(var(&env, "HTTP_PROXY"), None);
    assert_eq!(var(&env, "HTTP_PROXY_AUTHORIZATION"), Some(&b"kept"[..]));
    assert_eq!(var(&env, "CONTENT_TYPE"), Some(&b"text/plain"[..]));
    assert_eq!(var(&env, "CONTENT_LENGTH"), Some(&b"3"[..]));
    assert_eq!(env.content_length, Some(3));
}

#[test]
fn server_name_and_port_fallbacks() {
    let cases: &[(&[Pair], &str, &str)] = &[
        // (params besides REQUEST_METHOD, SERVER_NAME, SERVER_PORT)
        (
            &[(b"SERVER_NAME", b"example.org"), (b"SERVER_PORT", b"80")],
            "example.org",
            "80",
        ),
        (
            &[(b"SERVER_NAME", b""), (b"HTTP_HOST", b"h.example:8080")],
            "h.example",
            "8080",
        ),
        (&[(b"HTTP_HOST", b"h.example")], "h.example", "9000"),
        (&[(b"HTTP_HOST", b"[::1]:8080")], "[::1]", "8080"),
        (&[(b"HTTP_HOST", b"[::1]")], "[::1]", "9000"),
        (&[(b"HTTP_HOST", b"[::1")], "[::1", "9000"),
        (&[(b"HTTP_HOST", b"::1")], "::1", "9000"),
        (&[(b"HTTP_HOST", b"h:")], "h", "9000"),
        (&[(b"HTTP_HOST", b"h:port")], "h", "9000"),
        (&[(b"HTTP_HOST", b":81")], "127.0.0.1", "81"),
        (&[(b"HTTP_HOST", b"")], "127.0.0.1", "9000"),
        (&[], "127.0.0.1", "9000"),
        (
            &[
                (b"SERVER_NAME", b"n"),
                (b"SERVER_PORT", b""),
                (b"HTTP_HOST", b"h:81"),
            ],
            "n",
            "81",
        ),
        (
            &[(b"SERVER_PORT", b"443"), (b"HTTP_HOST", b"h:81")],
            "h",
            "443",
        ),
    ];
    for (extra, name, port) in cases {
        let mut pairs: Vec<(&[u8], &[u8])> = vec![(b"REQUEST_METHOD", b"GET")];
        pairs.extend_from_slice(extra);
        let params = params_of(&pairs);
        let env = build(&params, "", &local()).unwrap();
        assert_eq!(
            var(&env, "SERVER_NAME").map(text).as_deref(),
            Some(*name),
            "{extra:?}"
        );
        assert_eq!(
            var(&env, "SERVER_PORT").map(text).as_deref(),
            Some(*port),
            "{extra:?}"
        );
    }
}

#[test]
fn unix_socket_listener_falls_back_to_the_scheme_port() {
    let unix = Local::from_listen(&ListenAddr::Unix("/run/wsgid.sock".into()));
    assert_eq!(
        unix,
        Local {
            host: "localhost".into(),
            port: String::new()
        }
    );
    let http = params_of(&[(b"REQUEST_METHOD", b"GET")]);
    let env = build(&http, "", &unix).unwrap();
    assert_eq!(var(&env, "SERVER_NAME"), Some(&b"localhost"[..]));
    assert_eq!(var(&env, "SERVER_PORT"), Some(&b"80"[..]));
    let https = params_of(&[(b"REQUEST_METHOD", b"GET"), (b"HTTPS", b"on")]);
    let env = build(&https, "", &unix).unwrap();
    assert_eq!(var(&env, "SERVER_PORT"), Some(&b"443"[..]));
}

#[test]
fn local_from_listen() {
    let tcp = |s: &str| Local::from_listen(&ListenAddr::Tcp(s.parse().unwrap()));
    assert_eq!(
        tcp("127.0.0.1:9000"),
        Local {
            host: "127.0.0.1".into(),
            port: "9000".into()
        }
    );
    assert_eq!(
        tcp("[::1]:9000"),
        Local {
            host: "[::1]".into(),
            port: "9000".into()
        }
    );
    assert_eq!(
        tcp("0.0.0.0:80"),
        Local {
            host: "localhost".into(),
            port: "80".into()
        }
    );
    assert_eq!(
        tcp("[::]:80"),
        Local {
            host: "localhost".into(),
            port: "80".into()
        }
    );
    assert_eq!(
        Local::from_listen(&ListenAddr::Fd(3)),
        Local {
            host: "localhost".into(),
            port: String::new()
        }
    );
}

#[test]
fn required_variables_and_defaults() {
    let params = params_of(&[(b"REQUEST_METHOD", b"GET")]);
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(var(&env, "SERVER_PROTOCOL"), Some(&b"HTTP/1.0"[..]));
    assert_eq!(var(&env, "QUERY_STRING"), Some(&b""[..]));
    assert_eq!(var(&env, "SCRIPT_NAME"), Some(&b""[..]));
    assert_eq!(var(&env, "PATH_INFO"), Some(&b""[..]));
    assert_eq!(env.content_length, None);
    assert_eq!(var(&env, "CONTENT_LENGTH"), None);

    let params = params_of(&[
        (b"SERVER_PROTOCOL", b""),
        (b"QUERY_STRING", b""),
        (b"REQUEST_METHOD", b"GET"),
        (b"CONTENT_LENGTH", b""),
        (b"CONTENT_TYPE", b""),
    ]);
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(
        names(&env)[..3],
        ["SERVER_PROTOCOL", "QUERY_STRING", "REQUEST_METHOD"]
    );
    assert_eq!(var(&env, "SERVER_PROTOCOL"), Some(&b"HTTP/1.0"[..]));
    assert_eq!(var(&env, "CONTENT_LENGTH"), None);
    assert_eq!(var(&env, "CONTENT_TYPE"), None);
    assert_eq!(env.content_length, None);
}

/// A spare list keeps its allocation from one request to the next (at and past its bound),
/// and what the second request gets does not depend on the first.
#[test]
fn spare_variable_list_is_reused() {
    let first = params_of(&[
        (b"REQUEST_METHOD", b"POST"),
        (b"HTTP_X_A", b"1"),
        (b"HTTP_X_A", b"2"),
        (b"REQUEST_URI", b"/first"),
    ]);
    let second = params_of(&[(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/x")]);
    let env = build(&first, "", &local()).unwrap();
    let spare = env.into_spare();
    assert!(spare.is_empty());
    let (ptr, cap) = (spare.as_ptr() as usize, spare.capacity());
    assert!(cap >= 4 + 6);
    let env = build_with(&second, "", &local(), spare).unwrap();
    assert_eq!(env, build(&second, "", &local()).unwrap());
    assert_eq!(
        (env.vars.as_ptr() as usize, env.vars.capacity()),
        (ptr, cap)
    );

    // At the bound the list is kept, past it dropped.
    let env = Environ {
        vars: Vec::with_capacity(MAX_SPARE_VARS),
        url_scheme: "http",
        content_length: None,
    };
    assert_eq!(env.into_spare().capacity(), MAX_SPARE_VARS);
    let env = Environ {
        vars: Vec::with_capacity(MAX_SPARE_VARS + 1),
        url_scheme: "http",
        content_length: None,
    };
    assert_eq!(env.into_spare().capacity(), 0);
}

#[test]
fn bad_requests() {
    let no_method = || Err(Reject::BadRequest("no REQUEST_METHOD"));
    assert_eq!(build(&params_of(&[]), "", &local()), no_method());
    assert_eq!(
        build(&params_of(&[(b"REQUEST_METHOD", b"")]), "", &local()),
        no_method()
    );
    assert_eq!(
        build(
            &params_of(&[(b"REQUEST_METHOD", b"GET"), (b"REQUEST_METHOD", b"")]),
            "",
            &local()
        ),
        no_method()
    );
    for bad in [
        &b"abc"[..],
        b"-1",
        b" 5",
        b"5 ",
        b"+5",
        b"0x10",
        b"18446744073709551616",
    ] {
        let params = params_of(&[(b"REQUEST_METHOD", b"POST"), (b"CONTENT_LENGTH", bad)]);
        assert_eq!(
            build(&params, "", &local()),
            Err(Reject::BadRequest("invalid CONTENT_LENGTH")),
            "{}",
            text(bad)
        );
    }
    let params = params_of(&[
        (b"REQUEST_METHOD", b"POST"),
        (b"CONTENT_LENGTH", b"18446744073709551615"),
    ]);
    assert_eq!(
        build(&params, "", &local()).unwrap().content_length,
        Some(u64::MAX)
    );
    let params = params_of(&[(b"REQUEST_METHOD", b"POST"), (b"CONTENT_LENGTH", b"0")]);
    assert_eq!(
        build(&params, "", &local()).unwrap().content_length,
        Some(0)
    );
}

#[test]
fn url_scheme() {
    let cases: &[(&[Pair], &str)] = &[
        (&[], "http"),
        (&[(b"HTTPS", b"on")], "https"),
        (&[(b"HTTPS", b"ON")], "https"),
        (&[(b"HTTPS", b"1")], "https"),
        (&[(b"HTTPS", b"off")], "http"),
        (&[(b"HTTPS", b"")], "http"),
        (&[(b"REQUEST_SCHEME", b"https")], "https"),
        (&[(b"REQUEST_SCHEME", b"HTTPS")], "https"),
        (&[(b"REQUEST_SCHEME", b"http")], "http"),
        (&[(b"HTTP_X_FORWARDED_PROTO", b"https")], "http"),
        (&[(b"HTTP_HTTPS", b"on")], "http"),
    ];
    for (extra, scheme) in cases {
        let mut pairs: Vec<(&[u8], &[u8])> = vec![(b"REQUEST_METHOD", b"GET")];
        pairs.extend_from_slice(extra);
        let params = params_of(&pairs);
        let env = build(&params, "", &local()).unwrap();
        assert_eq!(env.url_scheme, *scheme, "{extra:?}");
    }
}

/// (front end, its scheme params, SERVER_PORT, HTTP_HOST, expected scheme)
type TlsCase<'a> = (&'a str, &'a [Pair<'a>], &'a [u8], &'a [u8], &'a str);

/// What each front end sends for a request that reached it over TLS on port 443 (and one
/// on 8443), and over plain HTTP: the scheme comes from HTTPS or REQUEST_SCHEME, and
/// SERVER_PORT and HTTP_HOST stay as the front end sent them (the TLS port, not the scheme
/// default nor wsgid's own listener).
#[test]
fn url_scheme_behind_tls_terminating_front_ends() {
    let cases: &[TlsCase] = &[
        // nginx stock fastcgi_params/scgi_params: `HTTPS $https if_not_empty` (so absent
        // on plain HTTP) and `REQUEST_SCHEME $scheme`; HTTP_HOST is `$host`, no port.
        (
            "nginx tls",
            &[(b"REQUEST_SCHEME", b"https"), (b"HTTPS", b"on")],
            b"443",
            b"example.org",
            "https",
        ),
        (
            "nginx plain",
            &[(b"REQUEST_SCHEME", b"http")],
            b"80",
            b"example.org",
            "http",
        ),
        (
            "nginx tls 8443",
            &[(b"REQUEST_SCHEME", b"https"), (b"HTTPS", b"on")],
            b"8443",
            b"example.org",
            "https",
        ),
        // Apache mod_proxy_fcgi / mod_proxy_scgi / mod_fcgid with mod_ssl: HTTPS=on from
        // mod_ssl, REQUEST_SCHEME from the core; the Host header as the client sent it.
        (
            "apache tls",
            &[(b"HTTPS", b"on"), (b"REQUEST_SCHEME", b"https")],
            b"443",
            b"example.org",
            "https",
        ),
        (
            "apache tls 8443",
            &[(b"HTTPS", b"on"), (b"REQUEST_SCHEME", b"https")],
            b"8443",
            b"example.org:8443",
            "https",
        ),
        (
            "apache plain",
            &[(b"REQUEST_SCHEME", b"http")],
            b"80",
            b"example.org",
            "http",
        ),
        // `SetEnvIf X-Forwarded-Proto https HTTPS=on` behind a balancer, or a server that
        // sends "1" or "ON".
        (
            "apache setenvif",
            &[(b"HTTPS", b"on")],
            b"80",
            b"example.org",
            "https",
        ),
        (
            "HTTPS=1",
            &[(b"HTTPS", b"1")],
            b"443",
            b"example.org",
            "https",
        ),
        (
            "HTTPS=On",
            &[(b"HTTPS", b"On")],
            b"443",
            b"example.org",
            "https",
        ),
        // lighttpd: HTTPS=on and REQUEST_SCHEME=https over TLS, REQUEST_SCHEME=http else.
        (
            "lighttpd tls",
            &[(b"REQUEST_SCHEME", b"https"), (b"HTTPS", b"on")],
            b"443",
            b"example.org",
            "https",
        ),
        (
            "lighttpd plain",
            &[(b"REQUEST_SCHEME", b"http")],
            b"80",
            b"example.org",
            "http",
        ),
        // Forced in the front end's config with a plain-HTTP $scheme: HTTPS wins.
        (
            "forced HTTPS",
            &[(b"REQUEST_SCHEME", b"http"), (b"HTTPS", b"on")],
            b"80",
            b"example.org",
            "https",
        ),
        (
            "HTTPS=off",
            &[(b"REQUEST_SCHEME", b"http"), (b"HTTPS", b"off")],
            b"80",
            b"example.org",
            "http",
        ),
    ];
    for (front_end, scheme_params, port, host, scheme) in cases {
        let mut pairs: Vec<(&[u8], &[u8])> = vec![
            (b"REQUEST_METHOD", b"GET"),
            (b"SERVER_NAME", b"example.org"),
            (b"SERVER_PORT", port),
            (b"HTTP_HOST", host),
        ];
        pairs.extend_from_slice(scheme_params);
        let params = params_of(&pairs);
        let env = build(&params, "", &local()).unwrap();
        assert_eq!(env.url_scheme, *scheme, "{front_end}");
        assert_eq!(var(&env, "SERVER_PORT"), Some(*port), "{front_end}");
        assert_eq!(var(&env, "HTTP_HOST"), Some(*host), "{front_end}");
        assert_eq!(
            var(&env, "SERVER_NAME"),
            Some(&b"example.org"[..]),
            "{front_end}"
        );
    }
}

#[test]
fn latin1_bytes_pass_through_untouched() {
    let high: Vec<u8> = (0x80..=0xffu8).collect();
    let mut path = b"/app/".to_vec();
    path.extend_from_slice(&high);
    let params = params_of(&[
        (b"REQUEST_METHOD", b"GET"),
        (b"HTTP_X_BYTES", &high),
        (b"HTTP_X_BYTES", &high),
        (b"X_\xe9", &high),
        (b"DOCUMENT_URI", &path),
        (b"QUERY_STRING", b"q=%FF\xff"),
    ]);
    let env = build(&params, "/app", &local()).unwrap();
    let mut joined = high.clone();
    joined.extend_from_slice(b", ");
    joined.extend_from_slice(&high);
    assert_eq!(var(&env, "HTTP_X_BYTES"), Some(&joined[..]));
    assert!(
        var(&env, "X_\u{e9}").is_none(),
        "names are bytes, not UTF-8"
    );
    assert!(env
        .vars
        .iter()
        .any(|(n, v)| n.as_ref() == b"X_\xe9" && v.as_ref() == &high[..]));
    assert_eq!(var(&env, "PATH_INFO"), Some(&path[4..]));
    assert_eq!(var(&env, "QUERY_STRING"), Some(&b"q=%FF\xff"[..]));
}

/// SCRIPT_NAME/PATH_INFO for params with no DOCUMENT_URI, SCRIPT_NAME or PATH_INFO.
fn from_request_uri(uri: &[u8], mount: &str) -> Result<(String, String), Reject> {
    let params = params_of(&[(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", uri)]);
    let env = build(&params, mount, &local())?;
    let sn = var(&env, "SCRIPT_NAME").map(text).unwrap_or_default();
    let pi = var(&env, "PATH_INFO").map(text).unwrap_or_default();
    Ok((sn, pi))
}

#[test]
fn request_uri_fallback_is_decoded_and_slashes_merged() {
    let ok = |sn: &str, pi: &str| Ok((sn.to_owned(), pi.to_owned()));
    assert_eq!(from_request_uri(b"/", ""), ok("", "/"));
    assert_eq!(from_request_uri(b"/app/x?y=1", "/app"), ok("/app", "/x"));
    assert_eq!(from_request_uri(b"/app?y=/app/z", "/app"), ok("/app", ""));
    assert_eq!(
        from_request_uri(b"/app/a%20b#frag", "/app"),
        ok("/app", "/a b")
    );
    assert_eq!(from_request_uri(b"/app/a%2Fb", "/app"), ok("/app", "/a/b"));
    assert_eq!(
        from_request_uri(b"/app//x//y/", "/app"),
        ok("/app", "/x/y/")
    );
    // Dot segments are refused, not resolved (see `dot_segments_are_refused_from_every_source`).
    assert_eq!(
        from_request_uri(b"/app/./x/../y", "/app"),
        Err(Reject::BadRequest("dot segment in the request path"))
    );
    assert_eq!(from_request_uri(b"/app/100%", "/app"), ok("/app", "/100%"));
    assert_eq!(
        from_request_uri(b"/app/%zz%4", "/app"),
        ok("/app", "/%zz%4")
    );
    assert_eq!(
        from_request_uri(b"http://h.example/app/x?q", "/app"),
        ok("/app", "/x")
    );
    assert_eq!(from_request_uri(b"https://h.example", ""), ok("", "/"));
    assert_eq!(from_request_uri(b"*", ""), ok("", "*"));
    assert_eq!(from_request_uri(b"/appx", "/app"), Err(Reject::NotFound));
    assert_eq!(from_request_uri(b"", ""), ok("", ""));
    assert_eq!(from_request_uri(b"", "/app"), Err(Reject::NotFound));
}

const DOT: Result<(), Reject> = Err(Reject::BadRequest("dot segment in the request path"));
const NUL_PATH: Result<(), Reject> = Err(Reject::BadRequest("NUL in the request path"));

/// `build` with `pairs` after a REQUEST_METHOD, reduced to accepted or why not.
fn verdict(pairs: &[Pair<'_>], mount: &str) -> Result<(), Reject> {
    let mut all: Vec<Pair<'_>> = vec![(b"REQUEST_METHOD", b"GET")];
    all.extend_from_slice(pairs);
    build(&params_of(&all), mount, &local()).map(|_| ())
}

#[test]
fn dot_segments_are_refused_from_every_source() {
    let bad: [&[u8]; 12] = [
        b"/app/../etc/passwd",
        b"/app/..",
        b"/app/.",
        b"/app/./x",
        b"/app/x/../y",
        b"/app/x/..",
        b"/app/x/.",
        b"/app/x/../",
        b"/app//../x",
        b"/../app/x",
        b"/..",
        b"..",
    ];
    for path in bad {
        let show = text(path);
        for mount in ["", "/app"] {
            // nginx's DOCUMENT_URI.
            assert_eq!(verdict(&[(b"DOCUMENT_URI", path)], mount), DOT, "{show}");
            // Apache/lighttpd: SCRIPT_NAME + PATH_INFO, cut anywhere.
            for cut in 0..=path.len() {
                let (sn, pi) = path.split_at(cut);
                let pairs = [(&b"SCRIPT_NAME"[..], sn), (b"PATH_INFO", pi)];
                assert_eq!(verdict(&pairs, mount), DOT, "{} ‖ {}", text(sn), text(pi));
            }
            // REQUEST_URI alone, raw and with every dot percent-encoded.
            assert_eq!(verdict(&[(b"REQUEST_URI", path)], mount), DOT, "{show}");
            let encoded: Vec<u8> = path
                .iter()
                .flat_map(|&b| if b == b'.' { b"%2e".to_vec() } else { vec![b] })
                .collect();
            let query = [&encoded[..], b"?q=1"].concat();
            assert_eq!(
                verdict(&[(b"REQUEST_URI", &query)], mount),
                DOT,
                "{}",
                text(&query)
            );
        }
    }
    // The defect's cases: SCRIPT_NAME `/app/..` + PATH_INFO `/x`, an encoded slash in the
    // REQUEST_URI, Apache's repaired split with an encoded PATH_INFO.
    let cases: [&[Pair<'_>]; 4] = [
        &[(b"SCRIPT_NAME", b"/app/.."), (b"PATH_INFO", b"/x")],
        &[(b"REQUEST_URI", b"/app/x%2F..%2F..%2Fetc")],
        &[(b"REQUEST_URI", b"/app/%2E%2E/x")],
        &[
            (b"SCRIPT_NAME", b"/app/../x"),
            (b"PATH_INFO", b"/%2e%2e/x"),
            (b"REQUEST_URI", b"/app/%2e%2e/x"),
        ],
    ];
    for pairs in cases {
        assert_eq!(verdict(pairs, "/app"), DOT, "{pairs:?}");
    }
    // A refused path is refused before the mount point is looked at: not a 404.
    assert_eq!(verdict(&[(b"DOCUMENT_URI", b"/other/../app")], "/app"), DOT);
    // With a clean DOCUMENT_URI the raw REQUEST_URI (passed on as sent) is not the path.
    let env_ok = verdict(
        &[
            (b"DOCUMENT_URI", b"/app/y"),
            (b"REQUEST_URI", b"/app/./x/../y"),
        ],
        "/app",
    );
    assert_eq!(env_ok, Ok(()));
}

#[test]
fn empty_segments_and_dotted_names_are_ordinary_paths() {
    let split = |pairs: &[Pair<'_>]| {
        let mut all: Vec<Pair<'_>> = vec![(b"REQUEST_METHOD", b"GET")];
        all.extend_from_slice(pairs);
        let params = params_of(&all);
        let env = build(&params, "/app", &local()).unwrap();
        (
            var(&env, "SCRIPT_NAME").map(text),
            var(&env, "PATH_INFO").map(text),
        )
    };
    let some = |sn: &str, pi: &str| (Some(sn.to_owned()), Some(pi.to_owned()));
    for path in [
        &b"/app/.../x"[..],
        b"/app/.well-known/x",
        b"/app/a..b/c.",
        b"/app/x/..y",
        b"/app/x/.y.",
        b"/app/%2e%2e/x",
    ] {
        let pi = text(&path[4..]);
        assert_eq!(split(&[(b"DOCUMENT_URI", path)]), some("/app", &pi));
    }
    // `//` in a decoded path is passed on as sent; decoded from REQUEST_URI it is merged.
    assert_eq!(
        split(&[(b"DOCUMENT_URI", b"/app//x//")]),
        some("/app", "//x//")
    );
    assert_eq!(
        split(&[(b"SCRIPT_NAME", b"/app/"), (b"PATH_INFO", b"/x")]),
        some("/app", "//x")
    );
    assert_eq!(
        split(&[(b"REQUEST_URI", b"/app//x%2F%2Fy//")]),
        some("/app", "/x/y/")
    );
}

#[test]
fn nul_bytes_never_reach_the_environ() {
    let name = Err(Reject::BadRequest("NUL in a param name"));
    let value = Err(Reject::BadRequest("NUL in a param value"));
    // In the request path, whichever param it is in.
    assert_eq!(verdict(&[(b"DOCUMENT_URI", b"/app/x\0y")], "/app"), value);
    assert_eq!(
        verdict(
            &[(b"SCRIPT_NAME", b"/app"), (b"PATH_INFO", b"/x\0")],
            "/app"
        ),
        value
    );
    // Decoded by wsgid from REQUEST_URI.
    assert_eq!(
        verdict(&[(b"REQUEST_URI", b"/app/x%00.py")], "/app"),
        NUL_PATH
    );
    assert_eq!(verdict(&[(b"REQUEST_URI", b"/app/x%00")], ""), NUL_PATH);
    // In any other value, and in names, also of params that would be dropped anyway.
    assert_eq!(verdict(&[(b"HTTP_X_A", b"a\0b")], ""), value);
    assert_eq!(verdict(&[(b"QUERY_STRING", b"\0")], ""), value);
    assert_eq!(verdict(&[(b"HTTP_PROXY", b"\0")], ""), value);
    assert_eq!(verdict(&[(b"HTTP_X\0A", b"v")], ""), name);
    assert_eq!(verdict(&[(b"\0", b"")], ""), name);
    assert_eq!(verdict(&[(b"HTTP_X\0A", b"v\0")], ""), name);
    assert_eq!(verdict(&[(b"REQUEST_METHOD\0", b"GET")], ""), name);
    // Past the first block of the scan and in its remainder; a %00 in the query stays
    // encoded (QUERY_STRING is raw), so it is no NUL.
    let long = vec![b'a'; 1000];
    for at in [0, 127, 128, 129, 255, 256, 999] {
        let mut v = long.clone();
        v[at] = 0;
        let pairs = [(&b"HTTP_X_LONG"[..], &long[..]), (b"HTTP_X_B", &v[..])];
        assert_eq!(verdict(&pairs, ""), value, "at {at}");
    }
    assert_eq!(verdict(&[(b"HTTP_X_LONG", &long[..])], ""), Ok(()));
    assert_eq!(verdict(&[(b"QUERY_STRING", b"a=%00")], ""), Ok(()));
}

#[test]
fn missing_request_uri_and_paths_give_an_empty_path() {
    let params = params_of(&[(b"REQUEST_METHOD", b"GET")]);
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(var(&env, "SCRIPT_NAME"), Some(&b""[..]));
    assert_eq!(var(&env, "PATH_INFO"), Some(&b""[..]));
    assert_eq!(build(&params, "/app", &local()), Err(Reject::NotFound));
}

#[test]
fn empty_script_name_and_path_info() {
    // P is "" → "/" only when the client asked for "/".
    let root = |uri: &[u8]| {
        params_of(&[
            (b"REQUEST_METHOD", b"GET"),
            (b"SCRIPT_NAME", b""),
            (b"PATH_INFO", b""),
            (b"REQUEST_URI", uri),
        ])
    };
    let params = root(b"/?q");
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(var(&env, "PATH_INFO"), Some(&b"/"[..]));
    let params = root(b"/elsewhere");
    let env = build(&params, "", &local()).unwrap();
    assert_eq!(var(&env, "PATH_INFO"), Some(&b""[..]));
    // An empty DOCUMENT_URI is ignored.
    let params = params_of(&[
        (b"REQUEST_METHOD", b"GET"),
        (b"DOCUMENT_URI", b""),
        (b"REQUEST_URI", b"/app/z"),
    ]);
    let env = build(&params, "/app", &local()).unwrap();
    assert_eq!(var(&env, "PATH_INFO"), Some(&b"/z"[..]));
}

#[test]
fn apache_encoded_path_info_repair() {
    let apache = |sn: &[u8], pi: &[u8], uri: &[u8]| {
        params_of(&[
            (b"REQUEST_METHOD", b"GET"),
            (b"REQUEST_URI", uri),
            (b"SCRIPT_NAME", sn),
            (b"PATH_INFO", pi),
        ])
    };
    // proxy-fcgi-pathinfo=1: whole decoded path ‖ encoded tail.
    let p = apache(b"/app/caf\xc3\xa9", b"/caf%C3%A9", b"/app/caf%C3%A9");
    let env = build(&p, "/app", &local()).unwrap();
    assert_eq!(var(&env, "PATH_INFO"), Some(&b"/caf\xc3\xa9"[..]));
    // A '%' that is really part of the path (AllowEncodedSlashes NoDecode) is kept.
    let p = apache(b"/app", b"/a%2Fb/c d", b"/app/a%2Fb/c%20d");
    let env = build(&p, "/app", &local()).unwrap();
    assert_eq!(var(&env, "PATH_INFO"), Some(&b"/a%2Fb/c d"[..]));
    // proxy-scgi-pathinfo: `/app` arrives as `/app` ‖ `/`.
    let p = apache(b"/app", b"/", b"/app?x=1");
    let env = build(&p, "/app", &local()).unwrap();
    assert_eq!(var(&env, "PATH_INFO"), Some(&b""[..]));
    // A slash the client did send stays.
    let p = apache(b"/app", b"/", b"/app/");
    let env = build(&p, "/app", &local()).unwrap();
    assert_eq!(var(&env, "PATH_INFO"), Some(&b"/"[..]));
}

#[test]
fn mount_point_boundaries() {
    let doc = |path: &[u8]| params_of(&[(b"REQUEST_METHOD", b"GET"), (b"DOCUMENT_URI", path)]);
    let split = |path: &[u8], mount: &str| {
        let params = doc(path);
        build(&params, mount, &local()).map(|env| {
            (
                var(&env, "SCRIPT_NAME").map(text),
                var(&env, "PATH_INFO").map(text),
            )
        })
    };
    let ok = |sn: &str, pi: &str| Ok((Some(sn.to_owned()), Some(pi.to_owned())));
    assert_eq!(split(b"/a/b", "/a/b"), ok("/a/b", ""));
    assert_eq!(split(b"/a/b/", "/a/b"), ok("/a/b", "/"));
    assert_eq!(split(b"/a/bc", "/a/b"), Err(Reject::NotFound));
    assert_eq!(split(b"/a", "/a/b"), Err(Reject::NotFound));
    assert_eq!(split(b"/A/b", "/a/b"), Err(Reject::NotFound));
    assert_eq!(split(b"/a/b/c", "/a/b"), ok("/a/b", "/c"));
    // SCRIPT_NAME is the configured mount point, not what the front end claims.
    let params = params_of(&[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/a"),
        (b"PATH_INFO", b"/b/c"),
    ]);
    let env = build(&params, "/a/b", &local()).unwrap();
    assert_eq!(var(&env, "SCRIPT_NAME"), Some(&b"/a/b"[..]));
    assert_eq!(var(&env, "PATH_INFO"), Some(&b"/c"[..]));
}

#[test]
fn borrows_from_params_when_nothing_is_synthesised() {
    let params = params_of(&[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/app"),
        (b"PATH_INFO", b"/x"),
        (b"DOCUMENT_URI", b"/app/x"),
        (b"SERVER_NAME", b"h"),
        (b"SERVER_PORT", b"80"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"QUERY_STRING", b""),
        (b"HTTP_HOST", b"h"),
    ]);
    let env = build(&params, "/app", &local()).unwrap();
    for (n, v) in &env.vars {
        assert!(matches!(n, Cow::Borrowed(_)), "{}", text(n));
        assert!(matches!(v, Cow::Borrowed(_)), "{}", text(n));
    }
}

proptest::proptest! {
    /// Duplicates against the obvious quadratic answer, from a few params (the stack
    /// arrays) to past 64 (the vectors), with names drawn from a small set so they repeat.
    #[test]
    fn duplicates_link_every_occurrence_in_arrival_order(
        picks in proptest::collection::vec(0u8..40, 0..150),
    ) {
        let names: Vec<Vec<u8>> = picks.iter().map(|k| format!("N{k}").into_bytes()).collect();
        let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (&n[..], &b"v"[..])).collect();
        let params = params_of(&pairs);
        let mut memory = DupMemory::new();
        let found = Duplicates::find(&params, &mut memory);
        let occurrences = |i: usize| -> Vec<usize> {
            (0..names.len()).filter(|&j| names[j] == names[i]).collect()
        };
        let any_repeat = (0..names.len()).any(|i| occurrences(i).len() > 1);
        proptest::prop_assert_eq!(found.is_some(), any_repeat);
        if let Some(d) = found {
            for i in 0..names.len() {
                let all = occurrences(i);
                match d.slot[i] {
                    Slot::Single => proptest::prop_assert_eq!(all, vec![i]),
                    Slot::Later => proptest::prop_assert!(all.len() > 1 && all[0] < i),
                    Slot::First { .. } => {
                        proptest::prop_assert!(all.len() > 1 && all[0] == i);
                        proptest::prop_assert_eq!(d.group(i).collect::<Vec<_>>(), all);
                    }
                }
            }
        }
    }
}

// --- X-Forwarded-* from trusted proxies (forwarded.rs) -------------------------------

/// The environ of a request with `extra` params (after nginx-like basics from
/// REMOTE_ADDR `remote`, None: not sent) at `mount`, with `trusted` applied as the worker
/// applies it: the variables by name, and wsgi.url_scheme.
struct Applied {
    vars: Vec<(Vec<u8>, Vec<u8>)>,
    scheme: &'static str,
}

impl Applied {
    fn get(&self, name: &str) -> Option<String> {
        let found: Vec<&Vec<u8>> = self
            .vars
            .iter()
            .filter(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v)
            .collect();
        assert!(found.len() <= 1, "{name} occurs {} times", found.len());
        found.first().map(|v| text(v))
    }
}

fn proxies(list: &[&str]) -> forwarded::TrustedProxies {
    forwarded::TrustedProxies::new(
        list.iter()
            .map(|s| forwarded::parse_trusted_proxy(s).unwrap_or_else(|e| panic!("{s}: {e}"))),
    )
}

fn applied(remote: Option<&str>, extra: &[Pair], mount: &str, trusted: &[&str]) -> Applied {
    let mut pairs: Vec<Pair> = vec![
        (b"REQUEST_METHOD", b"GET"),
        (b"REQUEST_URI", b"/app/x?q=1"),
        (b"DOCUMENT_URI", b"/app/x"),
        (b"QUERY_STRING", b"q=1"),
        (b"SERVER_NAME", b"backend.internal"),
        (b"SERVER_PORT", b"8080"),
        (b"REMOTE_PORT", b"40000"),
        (b"HTTP_HOST", b"backend.internal:8080"),
    ];
    if let Some(r) = remote {
        pairs.push((b"REMOTE_ADDR", r.as_bytes()));
    }
    pairs.extend_from_slice(extra);
    let params = params_of(&pairs);
    let mut env = build(&params, mount, &local()).unwrap();
    let trusted = proxies(trusted);
    if !trusted.is_empty() {
        forwarded::apply(&mut env, &params, &trusted);
    }
    assert_unique_names(&env);
    Applied {
        vars: env
            .vars
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect(),
        scheme: env.url_scheme,
    }
}

/// Every header a proxy in front of the front end sends.
const ALL_FORWARDED: &[Pair] = &[
    (b"HTTP_X_FORWARDED_FOR", b"203.0.113.7"),
    (b"HTTP_X_FORWARDED_PROTO", b"https"),
    (b"HTTP_X_FORWARDED_HOST", b"www.example.org"),
    (b"HTTP_X_FORWARDED_PREFIX", b"/shop"),
];

/// The environ as `build` alone makes it, which an untrusted request keeps.
fn assert_untouched(a: &Applied, remote: Option<&str>) {
    assert_eq!(a.get("REMOTE_ADDR").as_deref(), remote);
    assert_eq!(a.get("REMOTE_PORT").as_deref(), Some("40000"));
    assert_eq!(a.scheme, "http");
    assert_eq!(a.get("HTTPS"), None);
    assert_eq!(a.get("HTTP_HOST").as_deref(), Some("backend.internal:8080"));
    assert_eq!(a.get("SERVER_NAME").as_deref(), Some("backend.internal"));
    assert_eq!(a.get("SERVER_PORT").as_deref(), Some("8080"));
    assert_eq!(a.get("SCRIPT_NAME").as_deref(), Some("/app"));
    assert_eq!(a.get("PATH_INFO").as_deref(), Some("/x"));
    // The headers themselves stay, like any header.
    assert_eq!(
        a.get("HTTP_X_FORWARDED_FOR").as_deref(),
        Some("203.0.113.7")
    );
    assert_eq!(a.get("HTTP_X_FORWARDED_PREFIX").as_deref(), Some("/shop"));
}

#[test]
fn forwarded_headers_from_a_trusted_proxy_are_applied() {
    let a = applied(Some("10.1.2.3"), ALL_FORWARDED, "/app", &["10.0.0.0/8"]);
    assert_eq!(a.get("REMOTE_ADDR").as_deref(), Some("203.0.113.7"));
    // The proxy's port is not the client's.
    assert_eq!(a.get("REMOTE_PORT"), None);
    assert_eq!(a.scheme, "https");
    assert_eq!(a.get("HTTPS").as_deref(), Some("on"));
    assert_eq!(a.get("HTTP_HOST").as_deref(), Some("www.example.org"));
    assert_eq!(a.get("SERVER_NAME").as_deref(), Some("www.example.org"));
    assert_eq!(a.get("SERVER_PORT").as_deref(), Some("443"));
    assert_eq!(a.get("SCRIPT_NAME").as_deref(), Some("/shop/app"));
    assert_eq!(a.get("PATH_INFO").as_deref(), Some("/x"));
    assert_eq!(
        a.get("HTTP_X_FORWARDED_HOST").as_deref(),
        Some("www.example.org")
    );
}

#[test]
fn forwarded_headers_from_anyone_else_are_never_applied() {
    for (remote, trusted) in [
        // Outside every range.
        (Some("192.0.2.1"), &["10.0.0.0/8", "::1"][..]),
        (Some("11.0.0.1"), &["10.0.0.0/8"]),
        (Some("::2"), &["::1"]),
        // unix is not listed: no address is not trusted.
        (None, &["127.0.0.1"]),
        (Some(""), &["127.0.0.1"]),
        (Some("unix:"), &["127.0.0.0/8"]),
        // Not an address at all.
        (Some("10.0.0.1 "), &["10.0.0.0/8"]),
        (Some("010.0.0.1"), &["10.0.0.0/8"]),
        (Some("fe80::1%eth0"), &["fe80::/10"]),
        (Some("localhost"), &["127.0.0.1"]),
        // The IPv4 range does not hold IPv6 addresses, nor the other way round.
        (Some("::a00:1"), &["10.0.0.0/8"]),
        (Some("10.0.0.1"), &["::a00:0/104"]),
    ] {
        let a = applied(remote, ALL_FORWARDED, "/app", trusted);
        assert_untouched(&a, remote);
    }
    // With no list at all (the worker does not call apply).
    assert_untouched(
        &applied(Some("10.0.0.1"), ALL_FORWARDED, "/app", &[]),
        Some("10.0.0.1"),
    );
}

#[test]
fn trusted_ranges_match_ipv4_and_ipv6_at_their_edges() {
    let trusts = |list: &[&str], remote: &str| proxies(list).trusts_remote(Some(remote.as_bytes()));
    for (list, inside, outside) in [
        (
            &["10.0.0.0/8"][..],
            &["10.0.0.0", "10.255.255.255", "10.1.2.3"][..],
            &["9.255.255.255", "11.0.0.0"][..],
        ),
        (
            &["192.168.1.128/25"],
            &["192.168.1.128", "192.168.1.255"],
            &["192.168.1.127", "192.168.2.128"],
        ),
        (&["127.0.0.1"], &["127.0.0.1"], &["127.0.0.2", "::1"]),
        (&["0.0.0.0/0"], &["0.0.0.0", "255.255.255.255"], &["::1"]),
        (&["::1"], &["::1"], &["::2", "127.0.0.1"]),
        (
            &["2001:db8::/32"],
            &["2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"],
            &["2001:db9::", "2001:db7:ffff::"],
        ),
        (&["fd00::/8"], &["fd12:3456::1"], &["fe00::1", "fc00::1"]),
        (&["::/0"], &["::", "2001:db8::1"], &["10.0.0.1"]),
        // An IPv4-mapped address is its IPv4 address, on either side.
        (&["10.0.0.0/8"], &["::ffff:10.0.0.1"], &["::ffff:11.0.0.1"]),
        (
            &["::ffff:10.0.0.0/104"],
            &["10.0.0.1", "::ffff:10.9.9.9"],
            &["11.0.0.1"],
        ),
        (
            &["10.0.0.0/8", "unix", "2001:db8::/64"],
            &["10.0.0.1", "2001:db8::5", "unix:", "unix:/run/lb.sock"],
            &["2001:db8:0:1::"],
        ),
    ] {
        for ip in inside {
            assert!(trusts(list, ip), "{list:?} should hold {ip}");
        }
        for ip in outside {
            assert!(!trusts(list, ip), "{list:?} should not hold {ip}");
        }
    }
    let unix = proxies(&["unix"]);
    assert!(unix.trusts_remote(None));
    assert!(unix.trusts_remote(Some(b"")));
    assert!(unix.trusts_remote(Some(b"unix:")));
    assert!(!unix.trusts_remote(Some(b"127.0.0.1")));
    assert!(!unix.trusts_remote(Some(b"unixy")));
    assert!(!proxies(&["127.0.0.1"]).trusts_remote(None));
}

#[test]
fn unix_trusts_front_end_clients_without_an_address() {
    // nginx on `listen unix:` behind a local proxy sends REMOTE_ADDR "unix:"; a front end
    // may send it empty or not at all.
    for remote in [Some("unix:"), Some("unix:/run/lb.sock"), Some(""), None] {
        let a = applied(remote, ALL_FORWARDED, "", &["unix"]);
        assert_eq!(
            a.get("REMOTE_ADDR").as_deref(),
            Some("203.0.113.7"),
            "{remote:?}"
        );
        assert_eq!(a.scheme, "https");
        assert_eq!(a.get("SCRIPT_NAME").as_deref(), Some("/shop"));
    }
    // An address is not unix.
    assert_untouched(
        &applied(Some("127.0.0.1"), ALL_FORWARDED, "/app", &["unix"]),
        Some("127.0.0.1"),
    );
}

#[test]
fn trusted_proxy_entries_parse_or_say_why_not() {
    let p = |s: &str| forwarded::parse_trusted_proxy(s);
    use forwarded::TrustedProxy::{Net, Unix};
    let net = |a: &str, bits: u8| Net {
        addr: a.parse().unwrap(),
        bits,
    };
    assert_eq!(p("10.0.0.0/8"), Ok(net("10.0.0.0", 8)));
    assert_eq!(p("127.0.0.1"), Ok(net("127.0.0.1", 32)));
    assert_eq!(p("::1"), Ok(net("::1", 128)));
    assert_eq!(p("fd00::/8"), Ok(net("fd00::", 8)));
    assert_eq!(p("0.0.0.0/0"), Ok(net("0.0.0.0", 0)));
    assert_eq!(p("::/0"), Ok(net("::", 0)));
    assert_eq!(p("10.0.0.1/32"), Ok(net("10.0.0.1", 32)));
    assert_eq!(p("2001:db8::1/128"), Ok(net("2001:db8::1", 128)));
    assert_eq!(p(" 10.0.0.0/8 "), Ok(net("10.0.0.0", 8)));
    assert_eq!(p("::ffff:10.0.0.0/104"), Ok(net("10.0.0.0", 8)));
    assert_eq!(p("::ffff:192.0.2.1"), Ok(net("192.0.2.1", 32)));
    assert_eq!(p("unix"), Ok(Unix));
    assert_eq!(p("UNIX"), Ok(Unix));
    assert_eq!(p("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
    assert_eq!(p("unix").unwrap().to_string(), "unix");
    for bad in [
        "",
        "*",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "10.0.0",
        "010.0.0.0/8",
        "example.org",
        "[::1]",
        "::1%lo",
        "unix:",
        "unix:/run/x.sock",
        "10.0.0.0 /8",
        "10.0.0.0/x",
    ] {
        assert!(p(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        p("10.1.2.3/8"),
        Err("\"10.1.2.3/8\" has bits set past the first 8: write 10.0.0.0/8".into())
    );
    assert_eq!(
        p("2001:db8::1/32"),
        Err("\"2001:db8::1/32\" has bits set past the first 32: write 2001:db8::/32".into())
    );
    let e = p("proxy.example").unwrap_err();
    assert!(e.contains("10.0.0.0/8") && e.contains("unix"), "{e}");
    // Repeats are kept once, in the order given.
    let list = forwarded::TrustedProxies::new([Unix, net("::1", 128), Unix]);
    assert_eq!(list.entries(), &[Unix, net("::1", 128)]);
}

/// (X-Forwarded-For occurrences, REMOTE_ADDR afterwards, REMOTE_PORT afterwards)
type ForCase<'a> = (&'a [&'a [u8]], &'a str, Option<&'a str>);

/// X-Forwarded-For from a trusted proxy with (10.0.0.0/8, unix) trusted: REMOTE_ADDR
/// afterwards and REMOTE_PORT (None: removed; "40000": untouched, the header ignored).
#[test]
fn forwarded_for_walks_from_the_right_past_trusted_proxies() {
    let cases: &[ForCase] = &[
        (&[b"203.0.113.7"], "203.0.113.7", None),
        // Entries left of the first untrusted one are the client's to write: never read.
        (&[b"1.1.1.1, 203.0.113.7"], "203.0.113.7", None),
        (&[b"garbage, 203.0.113.7"], "203.0.113.7", None),
        (&[b"10.9.9.9, 203.0.113.7"], "203.0.113.7", None),
        // Trusted proxies on the right are walked past.
        (
            &[b"198.51.100.1, 203.0.113.7, 10.0.0.2, 10.0.0.3"],
            "203.0.113.7",
            None,
        ),
        (&[b"203.0.113.7,10.0.0.2"], "203.0.113.7", None),
        (&[b" 203.0.113.7 ,\t10.0.0.2 "], "203.0.113.7", None),
        (&[b"203.0.113.7, unix:"], "203.0.113.7", None),
        // Every entry trusted: the left-most.
        (&[b"10.0.0.5, 10.0.0.6"], "10.0.0.5", None),
        // Repeated headers are one list, in arrival order.
        (&[b"203.0.113.7", b"10.0.0.2"], "203.0.113.7", None),
        (&[b"1.1.1.1", b"203.0.113.7, 10.0.0.2"], "203.0.113.7", None),
        // IPv6, bracketed or not; ports.
        (&[b"2001:db8::7"], "2001:db8::7", None),
        (&[b"[2001:db8::7]"], "2001:db8::7", None),
        (&[b"[2001:db8::7]:4711"], "2001:db8::7", Some("4711")),
        (&[b"203.0.113.7:4711"], "203.0.113.7", Some("4711")),
        (&[b"::ffff:203.0.113.7"], "203.0.113.7", None),
        (&[b"2001:DB8:0:0::7"], "2001:db8::7", None),
        // Not addresses where the walk reads: the header is ignored.
        (&[b"unknown"], "10.0.0.1", Some("40000")),
        (&[b""], "10.0.0.1", Some("40000")),
        (&[b"203.0.113.7, "], "10.0.0.1", Some("40000")),
        (&[b"203.0.113.7,,10.0.0.2"], "10.0.0.1", Some("40000")),
        (&[b"203.0.113.7, _hidden"], "10.0.0.1", Some("40000")),
        (&[b"www.example.org"], "10.0.0.1", Some("40000")),
        (&[b"203.0.113.7:99999"], "10.0.0.1", Some("40000")),
        (&[b"203.0.113.7:"], "10.0.0.1", Some("40000")),
        (&[b"2001:db8::7:4711:1:2:3:4"], "10.0.0.1", Some("40000")),
        (&[b"[2001:db8::7"], "10.0.0.1", Some("40000")),
        (&[b"[2001:db8::7]x"], "10.0.0.1", Some("40000")),
        (&[b"203.0.113.7\r\nX: y"], "10.0.0.1", Some("40000")),
        // A unix: entry is trusted or stops the walk, and never becomes REMOTE_ADDR.
        (&[b"unix:"], "10.0.0.1", Some("40000")),
        (&[b"unix:, 10.0.0.2"], "10.0.0.1", Some("40000")),
    ];
    for (values, remote, port) in cases {
        let extra: Vec<Pair> = values
            .iter()
            .map(|v| (&b"HTTP_X_FORWARDED_FOR"[..], *v))
            .collect();
        let a = applied(Some("10.0.0.1"), &extra, "", &["10.0.0.0/8", "unix"]);
        assert_eq!(a.get("REMOTE_ADDR").as_deref(), Some(*remote), "{values:?}");
        assert_eq!(a.get("REMOTE_PORT").as_deref(), *port, "{values:?}");
    }
    // A unix: entry that is not trusted stops the walk too.
    let a = applied(
        Some("10.0.0.1"),
        &[(b"HTTP_X_FORWARDED_FOR", b"203.0.113.7, unix:")],
        "",
        &["10.0.0.0/8"],
    );
    assert_eq!(a.get("REMOTE_ADDR").as_deref(), Some("10.0.0.1"));
    // No REMOTE_ADDR sent (unix trusted): the forwarded one is added.
    let a = applied(
        None,
        &[(b"HTTP_X_FORWARDED_FOR", b"203.0.113.7:80")],
        "",
        &["unix"],
    );
    assert_eq!(a.get("REMOTE_ADDR").as_deref(), Some("203.0.113.7"));
    assert_eq!(a.get("REMOTE_PORT").as_deref(), Some("80"));
}

#[test]
fn forwarded_for_walks_at_most_max_hops_entries() {
    let chain = |trusted_hops: usize| {
        let mut v = vec!["203.0.113.7".to_string()];
        v.extend((0..trusted_hops).map(|i| format!("10.0.0.{}", i + 2)));
        v.join(", ")
    };
    let remote_after = |xff: &str| {
        applied(
            Some("10.0.0.1"),
            &[(b"HTTP_X_FORWARDED_FOR", xff.as_bytes())],
            "",
            &["10.0.0.0/8"],
        )
        .get("REMOTE_ADDR")
    };
    // The client is the MAX_HOPS-th entry from the right: found.
    let at = chain(forwarded::MAX_HOPS - 1);
    assert_eq!(remote_after(&at).as_deref(), Some("203.0.113.7"));
    // One further: the header is ignored.
    let past = chain(forwarded::MAX_HOPS);
    assert_eq!(remote_after(&past).as_deref(), Some("10.0.0.1"));
    // Every one of MAX_HOPS entries trusted: the left-most; one more, ignored.
    let all: Vec<String> = (0..forwarded::MAX_HOPS)
        .map(|i| format!("10.0.1.{i}"))
        .collect();
    assert_eq!(remote_after(&all.join(",")).as_deref(), Some("10.0.1.0"));
    let more = format!("10.0.2.0,{}", all.join(","));
    assert_eq!(remote_after(&more).as_deref(), Some("10.0.0.1"));
}

/// (X-Forwarded-Proto, HTTPS sent by the front end, scheme, HTTPS afterwards)
type ProtoCase<'a> = (&'a [u8], Option<&'a [u8]>, &'a str, Option<&'a str>);

#[test]
fn forwarded_proto_sets_the_scheme_and_https() {
    let cases: &[ProtoCase] = &[
        (b"https", None, "https", Some("on")),
        (b"HTTPS", None, "https", Some("on")),
        (b" https ", None, "https", Some("on")),
        (b"http", None, "http", None),
        (b"https", Some(b"on"), "https", Some("on")),
        (b"https", Some(b"1"), "https", Some("on")),
        // TLS between the proxy and the front end, plain HTTP before it.
        (b"http", Some(b"on"), "http", None),
        // The right-most entry: what the nearest proxy saw.
        (b"http, https", None, "https", Some("on")),
        (b"https,http", Some(b"on"), "http", None),
        // Anything else is ignored.
        (b"ftp", None, "http", None),
        (b"wss", Some(b"on"), "https", Some("on")),
        (b"", None, "http", None),
        (b"https;", None, "http", None),
        (b"http s", None, "http", None),
    ];
    for (proto, https, scheme, after) in cases {
        let mut extra: Vec<Pair> = vec![(b"HTTP_X_FORWARDED_PROTO", proto)];
        if let Some(h) = https {
            extra.push((b"HTTPS", h));
        }
        let a = applied(Some("10.0.0.1"), &extra, "", &["10.0.0.0/8"]);
        assert_eq!(a.scheme, *scheme, "{}", text(proto));
        assert_eq!(a.get("HTTPS").as_deref(), *after, "{}", text(proto));
        // Nothing else moves.
        assert_eq!(a.get("SERVER_PORT").as_deref(), Some("8080"));
        assert_eq!(a.get("HTTP_HOST").as_deref(), Some("backend.internal:8080"));
    }
    // REQUEST_SCHEME, when sent, follows.
    for (proto, scheme) in [
        (&b"https"[..], "https"),
        (b"http", "http"),
        (b"gopher", "http"),
    ] {
        let a = applied(
            Some("10.0.0.1"),
            &[
                (b"REQUEST_SCHEME", b"http"),
                (b"HTTP_X_FORWARDED_PROTO", proto),
            ],
            "",
            &["10.0.0.0/8"],
        );
        assert_eq!(a.get("REQUEST_SCHEME").as_deref(), Some(scheme));
    }
}

/// (X-Forwarded-Host, X-Forwarded-Proto, HTTP_HOST, SERVER_NAME, SERVER_PORT)
type HostCase<'a> = (&'a [u8], &'a [u8], &'a str, &'a str, &'a str);

#[test]
fn forwarded_host_sets_host_server_name_and_port() {
    let cases: &[HostCase] = &[
        (
            b"www.example.org",
            b"",
            "www.example.org",
            "www.example.org",
            "80",
        ),
        (
            b"www.example.org",
            b"https",
            "www.example.org",
            "www.example.org",
            "443",
        ),
        (
            b"www.example.org:8443",
            b"https",
            "www.example.org:8443",
            "www.example.org",
            "8443",
        ),
        (
            b"WWW.Example.ORG",
            b"",
            "WWW.Example.ORG",
            "WWW.Example.ORG",
            "80",
        ),
        (
            b"my_host-1.example",
            b"",
            "my_host-1.example",
            "my_host-1.example",
            "80",
        ),
        (b"192.0.2.5:81", b"", "192.0.2.5:81", "192.0.2.5", "81"),
        (
            b"[2001:db8::5]",
            b"",
            "[2001:db8::5]",
            "[2001:db8::5]",
            "80",
        ),
        (
            b"[2001:db8::5]:8080",
            b"",
            "[2001:db8::5]:8080",
            "[2001:db8::5]",
            "8080",
        ),
        (
            b"a.example, www.example.org",
            b"",
            "www.example.org",
            "www.example.org",
            "80",
        ),
        (
            b"localhost:65535",
            b"",
            "localhost:65535",
            "localhost",
            "65535",
        ),
    ];
    for (host, proto, http_host, name, port) in cases {
        let mut extra: Vec<Pair> = vec![(b"HTTP_X_FORWARDED_HOST", host)];
        if !proto.is_empty() {
            extra.push((b"HTTP_X_FORWARDED_PROTO", proto));
        }
        let a = applied(Some("10.0.0.1"), &extra, "", &["10.0.0.0/8"]);
        let got = (
            a.get("HTTP_HOST"),
            a.get("SERVER_NAME"),
            a.get("SERVER_PORT"),
        );
        let want = (
            Some(http_host.to_string()),
            Some(name.to_string()),
            Some(port.to_string()),
        );
        assert_eq!(got, want, "{}", text(host));
    }
    // The front end's own scheme counts when no X-Forwarded-Proto says otherwise.
    let a = applied(
        Some("10.0.0.1"),
        &[
            (b"HTTPS", b"on"),
            (b"HTTP_X_FORWARDED_HOST", b"www.example.org"),
        ],
        "",
        &["10.0.0.0/8"],
    );
    assert_eq!(a.get("SERVER_PORT").as_deref(), Some("443"));
    // Bad values are ignored.
    for bad in [
        &b""[..],
        b"evil.example/path",
        b"evil.example\r\nX-Injected: 1",
        b"evil example",
        b"user@evil.example",
        b"evil.example:",
        b"evil.example:0",
        b"evil.example:65536",
        b"evil.example:80x",
        b"evil.example:80:81",
        b"2001:db8::5",
        b"[2001:db8::5",
        b"[not-an-address]",
        b"[2001:db8::5]80",
        b"http://evil.example",
        b"evil.example%2f",
        b"caf\xc3\xa9.example",
        b":8080",
    ] {
        let a = applied(
            Some("10.0.0.1"),
            &[(b"HTTP_X_FORWARDED_HOST", bad)],
            "",
            &["10.0.0.0/8"],
        );
        assert_eq!(
            a.get("HTTP_HOST").as_deref(),
            Some("backend.internal:8080"),
            "{}",
            text(bad)
        );
        assert_eq!(a.get("SERVER_NAME").as_deref(), Some("backend.internal"));
        assert_eq!(a.get("SERVER_PORT").as_deref(), Some("8080"));
    }
    // At most MAX_HOST bytes of name.
    let name = |n: usize| "a".repeat(n);
    let at = name(forwarded::MAX_HOST);
    let a = applied(
        Some("10.0.0.1"),
        &[(b"HTTP_X_FORWARDED_HOST", at.as_bytes())],
        "",
        &["10.0.0.0/8"],
    );
    assert_eq!(a.get("SERVER_NAME"), Some(at));
    let past = name(forwarded::MAX_HOST + 1);
    let a = applied(
        Some("10.0.0.1"),
        &[(b"HTTP_X_FORWARDED_HOST", past.as_bytes())],
        "",
        &["10.0.0.0/8"],
    );
    assert_eq!(a.get("SERVER_NAME").as_deref(), Some("backend.internal"));
    // No Host header sent: the forwarded one is added.
    let params = params_of(&[
        (b"REQUEST_METHOD", b"GET"),
        (b"REQUEST_URI", b"/"),
        (b"REMOTE_ADDR", b"10.0.0.1"),
        (b"HTTP_X_FORWARDED_HOST", b"www.example.org"),
    ]);
    let mut env = build(&params, "", &local()).unwrap();
    forwarded::apply(&mut env, &params, &proxies(&["10.0.0.0/8"]));
    assert_eq!(var(&env, "HTTP_HOST"), Some(&b"www.example.org"[..]));
    assert_eq!(var(&env, "SERVER_NAME"), Some(&b"www.example.org"[..]));
}

#[test]
fn forwarded_prefix_goes_in_front_of_the_mount_and_nowhere_else() {
    // (mount, X-Forwarded-Prefix, SCRIPT_NAME afterwards)
    let cases: &[(&str, &[u8], &str)] = &[
        ("/app", b"/shop", "/shop/app"),
        ("/app", b"/shop/", "/shop/app"),
        ("/app", b"/a/b", "/a/b/app"),
        ("", b"/shop", "/shop"),
        ("/app", b"/", "/app"),
        ("/app", b" /shop ", "/shop/app"),
        // Decoded like every path in the environ.
        ("/app", b"/caf%C3%A9", "/caf\u{e9}/app"),
        ("/app", b"/a%20b", "/a b/app"),
        (
            "/app",
            b"/~u/x-y_z.1/a:b@c!$&'()*+;=",
            "/~u/x-y_z.1/a:b@c!$&'()*+;=/app",
        ),
        ("/app", b"/.well-known/...", "/.well-known/.../app"),
        // The right-most entry of a list.
        ("/app", b"/evil, /shop", "/shop/app"),
    ];
    for (mount, prefix, script_name) in cases {
        let a = applied(
            Some("10.0.0.1"),
            &[(b"HTTP_X_FORWARDED_PREFIX", prefix)],
            mount,
            &["10.0.0.0/8"],
        );
        assert_eq!(
            a.get("SCRIPT_NAME").as_deref(),
            Some(*script_name),
            "{}",
            text(prefix)
        );
        let path_info = if mount.is_empty() { "/app/x" } else { "/x" };
        assert_eq!(
            a.get("PATH_INFO").as_deref(),
            Some(path_info),
            "{}",
            text(prefix)
        );
    }
    // Escapes, absolute URLs, scheme-relative URLs, dot segments, NUL, control characters:
    // ignored, SCRIPT_NAME stays the mount.
    for bad in [
        &b""[..],
        b"shop",
        b"..",
        b"/..",
        b"/../etc",
        b"/a/../b",
        b"/a/..",
        b"/.",
        b"/./a",
        b"/%2e%2e",
        b"/%2E%2E/x",
        b"/a/%2e",
        b"//evil.example",
        b"//evil.example/x",
        b"/a//b",
        b"/a/b//",
        b"/%2Fevil.example",
        b"/a%2F%2Fb",
        b"/%5Cevil.example",
        b"/\\evil.example",
        b"http://evil.example/x",
        b"https:/x",
        b"javascript:alert(1)",
        b"/a%00b",
        b"/a%0d%0aX-Injected:%201",
        b"/a%7f",
        b"/a\tb",
        b"/a b",
        b"/a?b",
        b"/a#b",
        b"/a%2",
        b"/a%zz",
        b"/caf\xc3\xa9",
        b"/a\"b",
        b"/a<b>",
    ] {
        let a = applied(
            Some("10.0.0.1"),
            &[(b"HTTP_X_FORWARDED_PREFIX", bad)],
            "/app",
            &["10.0.0.0/8"],
        );
        assert_eq!(
            a.get("SCRIPT_NAME").as_deref(),
            Some("/app"),
            "{}",
            text(bad)
        );
        assert_eq!(a.get("PATH_INFO").as_deref(), Some("/x"), "{}", text(bad));
    }
}

/// Each header is applied on its own: a bad one does not stop the others.
#[test]
fn each_forwarded_header_stands_alone() {
    let a = applied(
        Some("10.0.0.1"),
        &[
            (b"HTTP_X_FORWARDED_FOR", b"unknown"),
            (b"HTTP_X_FORWARDED_PROTO", b"https"),
            (b"HTTP_X_FORWARDED_HOST", b"bad host"),
            (b"HTTP_X_FORWARDED_PREFIX", b"/shop"),
        ],
        "/app",
        &["10.0.0.0/8"],
    );
    assert_eq!(a.get("REMOTE_ADDR").as_deref(), Some("10.0.0.1"));
    assert_eq!(a.get("REMOTE_PORT").as_deref(), Some("40000"));
    assert_eq!(a.scheme, "https");
    assert_eq!(a.get("HTTP_HOST").as_deref(), Some("backend.internal:8080"));
    assert_eq!(a.get("SCRIPT_NAME").as_deref(), Some("/shop/app"));
    // Nothing forwarded at all, from a trusted proxy: the environ is build's.
    let params = params_of(&[
        (b"REQUEST_METHOD", b"GET"),
        (b"REMOTE_ADDR", b"10.0.0.1"),
        (b"DOCUMENT_URI", b"/x"),
    ]);
    let plain = build(&params, "", &local()).unwrap();
    let mut env = build(&params, "", &local()).unwrap();
    forwarded::apply(&mut env, &params, &proxies(&["10.0.0.0/8"]));
    assert_eq!(env, plain);
}

/// [`mount_fit`] of `pairs` at `mount`.
fn fit_of(pairs: &[Pair<'_>], mount: &str) -> String {
    let p = params_of(pairs);
    format!("{:?}", mount_fit(&p, mount))
}

/// A mismatch as [`mount_fit`] reports it, in the form `fit_of` prints.
fn mismatch(sn: &[u8], param: &'static str, value: &[u8], stripped: Option<&[u8]>) -> String {
    format!(
        "{:?}",
        MountFit::ScriptNameMismatch {
            script_name: sn,
            param,
            value,
            stripped: stripped.map(<[u8]>::to_vec),
        }
    )
}

#[test]
fn every_front_end_shape_fits_its_mount() {
    let mut checked = 0;
    for line in MATRIX.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let shape = cells[0];
        for (col, cell) in cells[1..].iter().enumerate() {
            if cell.parse::<u16>().is_ok() {
                continue;
            }
            let (sn, pi) = cell.split_once('‖').expect("SCRIPT_NAME ‖ PATH_INFO");
            let params = shape_params(shape, col, cell_value(sn), cell_value(pi));
            for mount in ["", "/app"] {
                let ctx = format!("{shape} {} mount {mount:?}", TARGETS[col]);
                // The stock shapes never disagree with themselves: the fit is the 404 rule.
                let want = match build(&params, mount, &local()) {
                    Ok(_) => MountFit::Inside,
                    Err(Reject::NotFound) => MountFit::Outside,
                    Err(Reject::BadRequest(why)) => panic!("{ctx}: {why}"),
                };
                assert_eq!(mount_fit(&params, mount), want, "{ctx}");
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} cells checked");
}

#[test]
fn a_front_end_that_strips_the_prefix_is_a_script_name_mismatch() {
    let stripped = Some(&b"/app"[..]);
    // nginx `location /app/ { rewrite ^/app(/.*)$ $1 break; include fastcgi_params; }`:
    // $uri and $fastcgi_script_name are the rewritten path, REQUEST_URI the client's.
    let nginx_stock: &[Pair<'_>] = &[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/x"),
        (b"REQUEST_URI", b"/app/x?q=1"),
        (b"DOCUMENT_URI", b"/x"),
    ];
    for mount in ["", "/app", "/other"] {
        assert_eq!(
            fit_of(nginx_stock, mount),
            mismatch(b"/x", "REQUEST_URI", b"/app/x?q=1", stripped),
            "mount {mount:?}"
        );
    }
    // The same rewrite with `fastcgi_param SCRIPT_NAME /app;` set by hand.
    let nginx_static: &[Pair<'_>] = &[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/x"),
        (b"REQUEST_URI", b"/app/x"),
        (b"DOCUMENT_URI", b"/x"),
        (b"SCRIPT_NAME", b"/app"),
        (b"PATH_INFO", b"/x"),
    ];
    assert_eq!(
        fit_of(nginx_static, ""),
        mismatch(b"/app", "DOCUMENT_URI", b"/x", stripped)
    );
    // lighttpd with url.rewrite-once stripping the prefix: SCRIPT_NAME + PATH_INFO of the
    // rewritten path, REQUEST_URI the client's (percent-encoded).
    let lighttpd: &[Pair<'_>] = &[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/caf\xc3\xa9"),
        (b"PATH_INFO", b"/y"),
        (b"REQUEST_URI", b"/app//caf%C3%A9/y"),
    ];
    assert_eq!(
        fit_of(lighttpd, ""),
        mismatch(
            b"/caf\xc3\xa9",
            "REQUEST_URI",
            b"/app//caf%C3%A9/y",
            stripped
        )
    );
    // No prefix to name when the paths share no tail.
    let unrelated: &[Pair<'_>] = &[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/app"),
        (b"PATH_INFO", b"/x"),
        (b"REQUEST_URI", b"/other/y"),
    ];
    assert_eq!(
        fit_of(unrelated, "/app"),
        mismatch(b"/app", "REQUEST_URI", b"/other/y", None)
    );
}

#[test]
fn script_names_that_fit_the_request_path() {
    let base: &[Pair<'_>] = &[(b"REQUEST_METHOD", b"GET")];
    let with = |extra: &[Pair<'static>]| -> Vec<Pair<'static>> {
        let mut v: Vec<Pair<'static>> = vec![base[0]];
        v.extend_from_slice(extra);
        v
    };
    let cases: [(&str, Vec<Pair<'static>>, &str, &str); 12] = [
        // nginx's fastcgi_index appends a file name to a SCRIPT_NAME ending in '/'.
        (
            "fastcgi_index",
            with(&[
                (b"SCRIPT_NAME", b"/app/index.py"),
                (b"REQUEST_URI", b"/app/"),
                (b"DOCUMENT_URI", b"/app/"),
            ]),
            "/app",
            "Inside",
        ),
        (
            "SCRIPT_NAME with a trailing slash, the bare mount asked for",
            with(&[(b"SCRIPT_NAME", b"/app/"), (b"REQUEST_URI", b"/app")]),
            "/app",
            "Inside",
        ),
        (
            "SCRIPT_NAME / fits any path",
            with(&[(b"SCRIPT_NAME", b"/"), (b"REQUEST_URI", b"/x")]),
            "",
            "Inside",
        ),
        (
            "empty SCRIPT_NAME",
            with(&[
                (b"SCRIPT_NAME", b""),
                (b"PATH_INFO", b"/x"),
                (b"REQUEST_URI", b"/y"),
            ]),
            "",
            "Inside",
        ),
        (
            "nginx merge_slashes off",
            with(&[
                (b"SCRIPT_NAME", b"/a//b"),
                (b"REQUEST_URI", b"/a//b"),
                (b"DOCUMENT_URI", b"/a//b"),
            ]),
            "",
            "Inside",
        ),
        (
            "an encoded slash is not judged",
            with(&[
                (b"SCRIPT_NAME", b"/app/a%2Fb"),
                (b"REQUEST_URI", b"/app/a%2Fb"),
            ]),
            "/app",
            "Inside",
        ),
        (
            "a dot segment in REQUEST_URI is not judged",
            with(&[
                (b"SCRIPT_NAME", b"/app/y"),
                (b"REQUEST_URI", b"/app/./x/../y"),
            ]),
            "/app",
            "Inside",
        ),
        (
            "a SCRIPT_NAME left encoded, as the client sent it",
            with(&[
                (b"SCRIPT_NAME", b"/app/caf%C3%A9"),
                (b"REQUEST_URI", b"/app/caf%C3%A9"),
            ]),
            "/app",
            "Inside",
        ),
        (
            "an encoded percent is decoded once",
            with(&[(b"SCRIPT_NAME", b"/100%41"), (b"REQUEST_URI", b"/100%2541")]),
            "",
            "Inside",
        ),
        (
            "absolute-form REQUEST_URI",
            with(&[
                (b"SCRIPT_NAME", b"/app"),
                (b"PATH_INFO", b"/x"),
                (b"REQUEST_URI", b"http://example.test/app/x?q"),
            ]),
            "/app",
            "Inside",
        ),
        // nginx's common split regex forwards `/appx/z` as `/app` ‖ `x/z`: a byte prefix,
        // and outside an application at /app.
        (
            "split regex at /appx",
            with(&[
                (b"SCRIPT_NAME", b"/app"),
                (b"PATH_INFO", b"x/z"),
                (b"REQUEST_URI", b"/appx/z"),
                (b"DOCUMENT_URI", b"/appx/z"),
            ]),
            "/app",
            "Outside",
        ),
        (
            "nginx SCGI sends no SCRIPT_NAME",
            with(&[(b"REQUEST_URI", b"/x"), (b"DOCUMENT_URI", b"/x")]),
            "/app",
            "Outside",
        ),
    ];
    for (name, pairs, mount, want) in cases {
        assert_eq!(fit_of(&pairs, mount), want, "{name}");
    }
}

#[test]
fn requests_refused_anyway_tell_nothing_about_the_mount() {
    let dots: &[Pair<'_>] = &[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/x"),
        (b"REQUEST_URI", b"/app/../x"),
        (b"DOCUMENT_URI", b"/app/../x"),
    ];
    assert_eq!(fit_of(dots, "/app"), "Unknown");
    let nul: &[Pair<'_>] = &[
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b"/x\0"),
        (b"REQUEST_URI", b"/app/x"),
    ];
    assert_eq!(fit_of(nul, "/app"), "Unknown");
}
