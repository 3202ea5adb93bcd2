//! What the benchmarks send: the params of a GET as nginx 1.22 (Debian) forwards it with its
//! stock `fastcgi_params` to an application at `/`, for a browser-like client.
//!
//! nginx sends every `fastcgi_param` line, empty values included (CONTENT_TYPE,
//! CONTENT_LENGTH and REMOTE_USER on a GET; HTTPS is `if_not_empty` and left out), then each
//! request header as `HTTP_*` except those a param already names (Host). That is 25 pairs,
//! about 700 bytes, for the request below.

/// The (name, value) pairs of `GET {uri}` from 127.0.0.1 to a server on 127.0.0.1:8080.
/// `uri` is the raw request target (path and optional `?query`).
pub fn nginx_params(uri: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let pairs: [(&str, &str); 25] = [
        // /etc/nginx/fastcgi_params, in its order.
        ("QUERY_STRING", query),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SCRIPT_NAME", path),
        ("REQUEST_URI", uri),
        ("DOCUMENT_URI", path),
        ("DOCUMENT_ROOT", "/var/www/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx/1.22.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "51724"),
        ("REMOTE_USER", ""),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_PORT", "8080"),
        ("SERVER_NAME", "localhost"),
        ("REDIRECT_STATUS", "200"),
        ("HTTP_HOST", "localhost"),
        // The request headers, as fastcgi_pass_request_headers forwards them.
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
        ("HTTP_CONNECTION", "keep-alive"),
    ];
    pairs
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}
