//! The TOML configuration file: one key per command-line option (`--max-body` is
//! `max_body`), all optional. Unknown keys are rejected, so a misspelt key is an error rather
//! than silently ignored. A problem is worded for the user: the key and its line, what was
//! given and what is expected (`processes in /etc/wsgid.toml, line 3: expected a whole
//! number such as 4, got the string "two"`), and every problem in the file is reported, not
//! only the first. Paths are returned as written; `resolve` anchors relative ones at the
//! file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Spanned, Value};

use super::settings::{OffloadMode, TrustedProxy};
use super::values::{
    check_mode, parse_body_limit, parse_duration_ms, parse_mode, parse_offload, parse_size,
    parse_trusted_proxy, seconds_to_ms, BodyLimit, Millis, Mode, OneOrMany, Size,
};

/// The contents of a configuration file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileConfig {
    pub name: Option<String>,
    pub app: Option<String>,
    pub authorizer: Option<String>,
    /// `PROTOCOL:ADDR` strings (`fastcgi:127.0.0.1:9000`, `scgi:unix:/run/x.sock`).
    pub listen: Option<Vec<String>>,
    pub fastcgi: Option<OneOrMany>,
    pub scgi: Option<OneOrMany>,
    pub processes: Option<usize>,
    pub threads: Option<usize>,
    pub mount: Option<String>,
    pub socket_mode: Option<Mode>,
    pub chdir: Option<PathBuf>,
    pub pythonpath: Option<Vec<PathBuf>>,
    pub virtualenv: Option<PathBuf>,
    pub env: Option<BTreeMap<String, String>>,
    pub max_params_bytes: Option<Size>,
    pub max_params: Option<usize>,
    pub max_scgi_header: Option<Size>,
    pub max_body: Option<BodyLimit>,
    pub idle_timeout: Option<Millis>,
    pub read_timeout: Option<Millis>,
    pub send_timeout: Option<Millis>,
    pub graceful_timeout: Option<Millis>,
    pub interrupt_timeout: Option<Millis>,
    pub request_timeout: Option<Millis>,
    pub request_timeout_grace: Option<Millis>,
    pub max_connections: Option<usize>,
    pub max_in_flight: Option<usize>,
    pub reload_on: Option<Vec<PathBuf>>,
    pub max_requests: Option<u64>,
    pub max_requests_jitter: Option<u64>,
    pub max_rss: Option<Size>,
    pub max_cpu_time: Option<Millis>,
    pub max_lifetime: Option<Millis>,
    pub output_buffer: Option<Size>,
    pub input_buffer: Option<Size>,
    pub log_level: Option<String>,
    /// A user or group name, or its number as written (`33` or `"33"`).
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_groups: Option<Vec<String>>,
    pub umask: Option<Mode>,
    pub chroot: Option<PathBuf>,
    pub allow_root: Option<bool>,
    pub check_ownership: Option<bool>,
    pub socket_owner: Option<String>,
    pub socket_group: Option<String>,
    pub offload: Option<OffloadMode>,
    /// (path, URI or path) pairs, as written.
    pub offload_map: Option<Vec<(String, String)>>,
    pub trusted_proxies: Option<Vec<TrustedProxy>>,
    /// The line each key is on, for messages about values checked after parsing.
    pub lines: BTreeMap<String, usize>,
    /// The file each key was read from, when it came from a file (an `[[app]]` table's
    /// inherited keys come from the main file, its own from the file that declares it).
    pub files: BTreeMap<String, PathBuf>,
    /// Keys whose values were refused (`load_partial`): left unset here.
    pub rejected: Vec<String>,
}

/// Every key a file may set.
pub const KEYS: [&str; 48] = [
    "name",
    "app",
    "authorizer",
    "listen",
    "fastcgi",
    "scgi",
    "processes",
    "threads",
    "mount",
    "socket_mode",
    "chdir",
    "pythonpath",
    "virtualenv",
    "env",
    "max_params_bytes",
    "max_params",
    "max_scgi_header",
    "max_body",
    "idle_timeout",
    "read_timeout",
    "send_timeout",
    "graceful_timeout",
    "interrupt_timeout",
    "request_timeout",
    "request_timeout_grace",
    "max_connections",
    "max_in_flight",
    "reload_on",
    "max_requests",
    "max_requests_jitter",
    "max_rss",
    "max_cpu_time",
    "max_lifetime",
    "output_buffer",
    "input_buffer",
    "log_level",
    "user",
    "group",
    "supplementary_groups",
    "umask",
    "chroot",
    "allow_root",
    "check_ownership",
    "socket_owner",
    "socket_group",
    "offload",
    "offload_map",
    "trusted_proxies",
];

const A_STRING: &str = "a string";
const A_COUNT: &str = "a whole number such as 4";
const A_SIZE: &str = "a number of bytes, or a string such as \"256K\"";
const A_BODY_LIMIT: &str = "a number of bytes, a string such as \"10M\", or \"unlimited\"";
const A_DURATION: &str = "seconds (such as 30 or 0.5), or a string such as \"250ms\"";
const A_MODE: &str = "an octal mode: a string such as \"0660\", or an integer such as 0o660";
const ADDRESSES: &str = "an address string such as \"127.0.0.1:9000\", or a list of them";
const LISTEN: &str =
    "a list of listeners, such as [\"fastcgi:127.0.0.1:9000\", \"scgi:unix:/run/a.sock\"]";
const DIRECTORIES: &str = "a list of directories, such as [\"/srv/lib\"]";
const AN_ACCOUNT: &str = "a name, or a number such as 33";
const ACCOUNTS: &str = "a list of group names or numbers, such as [\"www-data\", 1001]";
const A_BOOLEAN: &str = "true or false";
const A_TABLE_OF_STRINGS: &str = "a table of strings, such as { NAME = \"value\" }";

impl FileConfig {
    /// Parses configuration text; each problem names its key and line.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        let (config, problems) = parse_from(text, None)?;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Reads and parses a configuration file; each problem names the file too.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let (config, problems) = FileConfig::load_partial(path)?;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Reads and parses a configuration file, keeping the keys whose values are valid: the
    /// configuration, and a problem per refused key (in line order; the key is listed in
    /// `rejected`). Err when the file cannot be read or is not TOML at all.
    pub fn load_partial(path: &Path) -> Result<(FileConfig, Vec<String>), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
        parse_from(&text, Some(path))
    }

    /// Sets `key` from `value`; Err says what is wrong with the value.
    fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        match key {
            "name" => self.name = Some(string(value)?),
            "app" => self.app = Some(string(value)?),
            "authorizer" => self.authorizer = Some(string(value)?),
            "listen" => self.listen = Some(listen_list(value)?),
            "fastcgi" => self.fastcgi = Some(addresses(value)?),
            "scgi" => self.scgi = Some(addresses(value)?),
            "processes" => self.processes = Some(count(value)?),
            "threads" => self.threads = Some(count(value)?),
            "mount" => self.mount = Some(string(value)?),
            "socket_mode" => self.socket_mode = Some(mode(value)?),
            "chdir" => self.chdir = Some(string(value)?.into()),
            "pythonpath" => self.pythonpath = Some(directories(value)?),
            "virtualenv" => self.virtualenv = Some(string(value)?.into()),
            "env" => self.env = Some(table_of_strings(value)?),
            "max_params_bytes" => self.max_params_bytes = Some(size(value)?),
            "max_params" => self.max_params = Some(count(value)?),
            "max_scgi_header" => self.max_scgi_header = Some(size(value)?),
            "max_body" => self.max_body = Some(body_limit(value)?),
            "idle_timeout" => self.idle_timeout = Some(duration(value)?),
            "read_timeout" => self.read_timeout = Some(duration(value)?),
            "send_timeout" => self.send_timeout = Some(duration(value)?),
            "graceful_timeout" => self.graceful_timeout = Some(duration(value)?),
            "interrupt_timeout" => self.interrupt_timeout = Some(duration(value)?),
            "request_timeout" => self.request_timeout = Some(duration(value)?),
            "request_timeout_grace" => self.request_timeout_grace = Some(duration(value)?),
            "max_connections" => self.max_connections = Some(count(value)?),
            "max_in_flight" => self.max_in_flight = Some(count(value)?),
            "reload_on" => self.reload_on = Some(files_list(value)?),
            "max_requests" => self.max_requests = Some(count(value)? as u64),
            "max_requests_jitter" => self.max_requests_jitter = Some(count(value)? as u64),
            "max_rss" => self.max_rss = Some(size(value)?),
            "max_cpu_time" => self.max_cpu_time = Some(duration(value)?),
            "max_lifetime" => self.max_lifetime = Some(duration(value)?),
            "output_buffer" => self.output_buffer = Some(size(value)?),
            "input_buffer" => self.input_buffer = Some(size(value)?),
            "log_level" => self.log_level = Some(string(value)?),
            "user" => self.user = Some(account(value)?),
            "group" => self.group = Some(account(value)?),
            "supplementary_groups" => self.supplementary_groups = Some(accounts(value)?),
            "umask" => self.umask = Some(mode(value)?),
            "chroot" => self.chroot = Some(string(value)?.into()),
            "allow_root" => self.allow_root = Some(boolean(value)?),
            "check_ownership" => self.check_ownership = Some(boolean(value)?),
            "socket_owner" => self.socket_owner = Some(account(value)?),
            "socket_group" => self.socket_group = Some(account(value)?),
            "offload" => self.offload = Some(parse_offload(&string(value)?)?),
            "offload_map" => self.offload_map = Some(offload_map(value)?),
            "trusted_proxies" => self.trusted_proxies = Some(trusted_proxies(value)?),
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
}

/// One configuration file's text, for the lines and names in messages.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: Option<PathBuf>,
    pub text: String,
}

impl Source {
    /// `KEY in FILE, line N` (or `KEY, line N` for text that is not a file).
    pub fn locate(&self, key: &str, span_start: usize) -> (usize, String) {
        let line = line_of(&self.text, span_start);
        let place = match &self.path {
            Some(p) => format!("{key} in {}, line {line}", p.display()),
            None => format!("{key}, line {line}"),
        };
        (line, place)
    }

    /// Parses the text as a TOML table; a syntax error is one line with its position.
    pub fn table<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let text = &self.text;
        toml::from_str(text).map_err(|e| {
            let at = match e.span() {
                Some(span) => {
                    let line = line_of(text, span.start);
                    let start = text[..span.start.min(text.len())]
                        .rfind('\n')
                        .map_or(0, |i| i + 1);
                    let column = text[start..span.start.min(text.len())].chars().count() + 1;
                    format!("line {line}, column {column}: ")
                }
                None => String::new(),
            };
            let why = e.message().trim_end().replace('\n', "; ");
            match &self.path {
                Some(p) => format!("{}, {at}invalid TOML: {why}", p.display()),
                None => format!("{at}invalid TOML: {why}"),
            }
        })
    }
}

/// A key, its value, and the file it was read from.
pub struct Entry<'a> {
    pub key: String,
    pub value: Spanned<Value>,
    pub source: &'a Source,
}

/// A problem, with the place it sorts by (source order, then line).
pub type Problem = ((usize, usize), String);

/// The configuration `entries` set, every valid key set, and a problem per invalid one.
/// `order` is the position of each entry's source among the files read, for sorting.
pub fn build<'a>(
    entries: impl IntoIterator<Item = Entry<'a>>,
    order: impl Fn(&Source) -> usize,
) -> (FileConfig, Vec<Problem>) {
    let mut config = FileConfig::default();
    let mut problems = Vec::new();
    for Entry { key, value, source } in entries {
        let (line, place) = source.locate(&key, value.span().start);
        config.lines.insert(key.clone(), line);
        if let Some(path) = &source.path {
            config.files.insert(key.clone(), path.clone());
        }
        if let Err(e) = config.set(&key, value.into_inner()) {
            problems.push(((order(source), line), format!("{place}: {e}")));
            config.rejected.push(key);
        }
    }
    (config, problems)
}

/// The configuration with every valid key set, and a problem per invalid one; Err for a
/// file that is not TOML.
fn parse_from(text: &str, path: Option<&Path>) -> Result<(FileConfig, Vec<String>), String> {
    let source = Source {
        path: path.map(Path::to_path_buf),
        text: text.to_string(),
    };
    let table: BTreeMap<String, Spanned<Value>> = source.table()?;
    // The main file's own keys are read by `files::load`.
    let entries = table
        .into_iter()
        .filter(|(key, _)| !super::files::TOP_KEYS.contains(&key.as_str()))
        .map(|(key, value)| Entry {
            key,
            value,
            source: &source,
        });
    let (config, mut problems) = build(entries, |_| 0);
    problems.sort();
    Ok((config, problems.into_iter().map(|(_, p)| p).collect()))
}

/// The 1-based line of byte `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// What a value is, in words: `the string "two"`, `the number 1.5`, `true`, `a list`.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the number {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(a) if a.is_empty() => "an empty list".into(),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
    }
}

fn expected(what: &str, got: &Value) -> String {
    format!("expected {what}, got {}", describe(got))
}

fn string(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(expected(A_STRING, &other)),
    }
}

fn count(v: Value) -> Result<usize, String> {
    match v {
        Value::Integer(i) if i < 0 => Err(format!("{} (it is negative)", expected(A_COUNT, &v))),
        // Above usize::MAX on a 32-bit build: at the top, for `resolve` to report as too large.
        Value::Integer(i) => Ok(usize::try_from(i).unwrap_or(usize::MAX)),
        other => Err(expected(A_COUNT, &other)),
    }
}

fn size(v: Value) -> Result<Size, String> {
    match v {
        Value::Integer(i) => u64::try_from(i)
            .map(Size)
            .map_err(|_| format!("a size cannot be negative (got {i})")),
        Value::String(s) => parse_size(&s).map(Size),
        other => Err(expected(A_SIZE, &other)),
    }
}

fn body_limit(v: Value) -> Result<BodyLimit, String> {
    match v {
        Value::Integer(i) => u64::try_from(i)
            .map(|n| BodyLimit(Some(n)))
            .map_err(|_| format!("a size cannot be negative (got {i})")),
        Value::String(s) => parse_body_limit(&s),
        other => Err(expected(A_BODY_LIMIT, &other)),
    }
}

fn duration(v: Value) -> Result<Millis, String> {
    let secs = match v {
        Value::Integer(i) => i as f64,
        Value::Float(f) => f,
        Value::String(s) => return parse_duration_ms(&s).map(Millis),
        other => return Err(expected(A_DURATION, &other)),
    };
    seconds_to_ms(secs)
        .map(Millis)
        .map_err(|e| format!("{e} (got {secs})"))
}

fn mode(v: Value) -> Result<Mode, String> {
    match v {
        Value::Integer(i) => {
            let m = u32::try_from(i).map_err(|_| format!("a mode cannot be negative (got {i})"))?;
            check_mode(m).map(Mode).map_err(|e| {
                format!("{e}; write the mode as a string (\"0660\") or an octal integer (0o660)")
            })
        }
        Value::String(s) => parse_mode(&s).map(Mode),
        other => Err(expected(A_MODE, &other)),
    }
}

/// A list of strings, or Err naming the first item that is not one.
fn strings(items: Vec<Value>, what: &str) -> Result<Vec<String>, String> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "expected {what}, got a list whose item {} is {}",
                i + 1,
                describe(&other)
            )),
        })
        .collect()
}

fn boolean(v: Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(b),
        other => Err(expected(A_BOOLEAN, &other)),
    }
}

/// A user or group: a name, or a number (as an integer or a string of digits).
fn account(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::Integer(i) => u32::try_from(i)
            .map(|n| n.to_string())
            .map_err(|_| format!("{} (not a user or group number)", expected(AN_ACCOUNT, &v))),
        other => Err(expected(AN_ACCOUNT, &other)),
    }
}

fn accounts(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| account(item).map_err(|e| format!("item {} of the list: {e}", i + 1)))
            .collect(),
        other => Err(expected(ACCOUNTS, &other)),
    }
}

fn addresses(v: Value) -> Result<OneOrMany, String> {
    match v {
        Value::String(s) => Ok(OneOrMany::One(s)),
        Value::Array(items) => strings(items, ADDRESSES).map(OneOrMany::Many),
        other => Err(expected(ADDRESSES, &other)),
    }
}

fn listen_list(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => strings(items, LISTEN),
        other => Err(expected(LISTEN, &other)),
    }
}

fn files_list(v: Value) -> Result<Vec<PathBuf>, String> {
    const FILES: &str = "a list of files, such as [\"/srv/blog/reload\"]";
    match v {
        Value::Array(items) => Ok(strings(items, FILES)?
            .into_iter()
            .map(PathBuf::from)
            .collect()),
        other => Err(expected(FILES, &other)),
    }
}

fn directories(v: Value) -> Result<Vec<PathBuf>, String> {
    match v {
        Value::Array(items) => Ok(strings(items, DIRECTORIES)?
            .into_iter()
            .map(PathBuf::from)
            .collect()),
        other => Err(expected(DIRECTORIES, &other)),
    }
}

fn table_of_strings(v: Value) -> Result<BTreeMap<String, String>, String> {
    match v {
        Value::Table(t) => t
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(s) => Ok((name, s)),
                other => Err(format!(
                    "expected {A_TABLE_OF_STRINGS}, got {} for {name}",
                    describe(&other)
                )),
            })
            .collect(),
        other => Err(expected(A_TABLE_OF_STRINGS, &other)),
    }
}

/// `{ "/srv/media" = "/_protected/media" }`: each path with what the front end is told.
fn offload_map(v: Value) -> Result<Vec<(String, String)>, String> {
    const A_MAP: &str =
        "a table of paths and URIs, such as { \"/srv/media\" = \"/_protected/media\" }";
    match v {
        Value::Table(t) => t
            .into_iter()
            .map(|(path, target)| match target {
                Value::String(s) => Ok((path, s)),
                other => Err(format!(
                    "expected {A_MAP}, got {} for {path:?}",
                    describe(&other)
                )),
            })
            .collect(),
        other => Err(expected(A_MAP, &other)),
    }
}

/// `["10.0.0.0/8", "::1", "unix"]`: each entry parsed.
fn trusted_proxies(v: Value) -> Result<Vec<TrustedProxy>, String> {
    const PROXIES: &str =
        "a list of addresses, ranges or \"unix\", such as [\"10.0.0.0/8\", \"::1\", \"unix\"]";
    match v {
        Value::Array(items) => strings(items, PROXIES)?
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_trusted_proxy(s).map_err(|e| format!("item {} of the list: {e}", i + 1))
            })
            .collect(),
        other => Err(expected(PROXIES, &other)),
    }
}

/// "unknown key", with the nearest known key when one is a slip of the keyboard away.
fn unknown_key(key: &str) -> String {
    let nearest = KEYS
        .iter()
        .chain(&super::files::TOP_KEYS)
        .map(|k| (edit_distance(key, k), *k))
        .min();
    match nearest {
        Some((d, k)) if d <= 2 => format!("unknown key (did you mean {k}?)"),
        _ => "unknown key (see wsgid.toml(5) for the keys)".to_string(),
    }
}

/// Levenshtein distance between two short ASCII strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key() {
        let c = FileConfig::parse(
            r#"
            app = "mysite.wsgi:application"
            fastcgi = ["127.0.0.1:9000", "unix:/run/wsgid/app.sock"]
            scgi = "[::1]:4000"
            processes = 2
            threads = 4
            mount = "/app"
            socket_mode = "0600"
            chdir = "/srv/app"
            pythonpath = ["/srv/lib", "lib"]
            virtualenv = "/srv/venv"
            env = { DJANGO_SETTINGS_MODULE = "mysite.settings", EMPTY = "" }
            max_params_bytes = "128K"
            max_params = 500
            max_scgi_header = 65536
            max_body = "10M"
            idle_timeout = 30
            read_timeout = 12.5
            send_timeout = "90s"
            graceful_timeout = "1m"
            interrupt_timeout = "500ms"
            request_timeout = "2m"
            request_timeout_grace = 5
            max_connections = 100
            max_in_flight = 50
            max_requests = 10000
            max_requests_jitter = 1000
            max_rss = "512M"
            max_cpu_time = "1h"
            max_lifetime = "1d"
            output_buffer = "64K"
            input_buffer = "2M"
            log_level = "debug"
            "#,
        )
        .unwrap();
        assert_eq!(c.app.as_deref(), Some("mysite.wsgi:application"));
        assert_eq!(c.fastcgi.clone().map(OneOrMany::into_vec).unwrap().len(), 2);
        assert_eq!(
            c.scgi.clone().map(OneOrMany::into_vec),
            Some(vec!["[::1]:4000".to_string()])
        );
        assert_eq!(c.processes, Some(2));
        assert_eq!(c.socket_mode, Some(Mode(0o600)));
        assert_eq!(c.env.as_ref().map(|e| e.len()), Some(2));
        assert_eq!(c.pythonpath.as_ref().map(|p| p.len()), Some(2));
        assert_eq!(c.max_params_bytes, Some(Size(128 << 10)));
        assert_eq!(c.max_scgi_header, Some(Size(65536)));
        assert_eq!(c.max_body, Some(BodyLimit(Some(10 << 20))));
        assert_eq!(c.idle_timeout, Some(Millis(30_000)));
        assert_eq!(c.read_timeout, Some(Millis(12_500)));
        assert_eq!(c.send_timeout, Some(Millis(90_000)));
        assert_eq!(c.graceful_timeout, Some(Millis(60_000)));
        assert_eq!(c.interrupt_timeout, Some(Millis(500)));
        assert_eq!(c.request_timeout, Some(Millis(120_000)));
        assert_eq!(c.request_timeout_grace, Some(Millis(5_000)));
        assert_eq!(c.max_in_flight, Some(50));
        assert_eq!(c.max_requests, Some(10_000));
        assert_eq!(c.max_requests_jitter, Some(1000));
        assert_eq!(c.max_rss, Some(Size(512 << 20)));
        assert_eq!(c.max_cpu_time, Some(Millis(3_600_000)));
        assert_eq!(c.max_lifetime, Some(Millis(86_400_000)));
        assert_eq!(c.input_buffer, Some(Size(2 << 20)));
        assert_eq!(c.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn value_forms() {
        let one = |text: &str| FileConfig::parse(text).unwrap();
        assert_eq!(
            one("max_body = \"unlimited\"").max_body,
            Some(BodyLimit(None))
        );
        assert_eq!(one("max_body = 5").max_body, Some(BodyLimit(Some(5))));
        assert_eq!(one("idle_timeout = 0.25").idle_timeout, Some(Millis(250)));
        assert_eq!(
            one("idle_timeout = \"10ms\"").idle_timeout,
            Some(Millis(10))
        );
        assert_eq!(one("socket_mode = 0o640").socket_mode, Some(Mode(0o640)));
        assert_eq!(one("socket_mode = 432").socket_mode, Some(Mode(0o660)));
        assert_eq!(
            one("output_buffer = \"4K\"").output_buffer,
            Some(Size(4096))
        );
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(FileConfig::parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = FileConfig::parse("app = \"a:b\"\nproceses = 2\n").unwrap_err();
        assert_eq!(e, "proceses, line 2: unknown key (did you mean processes?)");
        let e = FileConfig::parse("[section]\nx = 1").unwrap_err();
        assert!(
            e.starts_with("section, line 1: unknown key (see wsgid.toml(5)"),
            "{e}"
        );
    }

    /// A value of the wrong kind is said in words: which key, what was given, what is
    /// expected.
    #[test]
    fn wrong_types_are_said_in_words() {
        for (text, message) in [
            (
                "processes = \"two\"",
                "processes, line 1: expected a whole number such as 4, got the string \"two\"",
            ),
            (
                "processes = -1",
                "processes, line 1: expected a whole number such as 4, got the number -1 \
                 (it is negative)",
            ),
            (
                "threads = 1.5",
                "threads, line 1: expected a whole number such as 4, got the number 1.5",
            ),
            (
                "env = [\"A=1\"]",
                "env, line 1: expected a table of strings, such as { NAME = \"value\" }, got \
                 a list",
            ),
            (
                "env = { A = 1 }",
                "env, line 1: expected a table of strings, such as { NAME = \"value\" }, got \
                 the number 1 for A",
            ),
            (
                "pythonpath = \"/x\"",
                "pythonpath, line 1: expected a list of directories, such as [\"/srv/lib\"], \
                 got the string \"/x\"",
            ),
            (
                "fastcgi = [\"127.0.0.1:9000\", 9001]",
                "fastcgi, line 1: expected an address string such as \"127.0.0.1:9000\", or a \
                 list of them, got a list whose item 2 is the number 9001",
            ),
            (
                "idle_timeout = true",
                "idle_timeout, line 1: expected seconds (such as 30 or 0.5), or a string such \
                 as \"250ms\", got true",
            ),
            (
                "app = 5",
                "app, line 1: expected a string, got the number 5",
            ),
            (
                "max_params_bytes = 1.5",
                "max_params_bytes, line 1: expected a number of bytes, or a string such as \
                 \"256K\", got the number 1.5",
            ),
            (
                "max_body = -3",
                "max_body, line 1: a size cannot be negative (got -3)",
            ),
            (
                "idle_timeout = -3",
                "idle_timeout, line 1: a duration must be a non-negative number of seconds \
                 (got -3)",
            ),
        ] {
            assert_eq!(FileConfig::parse(text).unwrap_err(), message, "{text}");
        }
        for text in [
            "max_body = \"huge\"",
            "socket_mode = \"rw\"",
            "socket_mode = 660",
            "output_buffer = \"16E\"",
        ] {
            let e = FileConfig::parse(text).unwrap_err();
            let key = text.split(' ').next().unwrap_or_default();
            assert!(e.starts_with(&format!("{key}, line 1: ")), "{text}: {e}");
        }
        let e = FileConfig::parse("socket_mode = 660").unwrap_err();
        assert!(e.contains("0o660"), "{e}");
    }

    /// Every problem is reported, in line order, not only the first.
    #[test]
    fn every_problem_is_reported() {
        let e = FileConfig::parse(
            "threads = \"eight\"\napp = \"a:b\"\nproceses = 2\nmax_body = true\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(lines[0].starts_with("threads, line 1: "), "{e}");
        assert!(lines[1].starts_with("proceses, line 3: "), "{e}");
        assert!(lines[2].starts_with("max_body, line 4: "), "{e}");
    }

    #[test]
    fn syntax_errors_keep_the_position() {
        let e = FileConfig::parse("app = \"a:b\"\nthreads = = 2\n").unwrap_err();
        assert!(e.starts_with("line 2, column 11: invalid TOML: "), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    /// The example configuration sets every key, and the manual pages document every key
    /// and option: a new option cannot be added without its documentation.
    #[test]
    fn example_and_manuals_cover_every_key() {
        let example = include_str!("../../conf.d/wsgid.toml");
        let c = FileConfig::parse(example).unwrap();
        let table: BTreeMap<String, Value> = toml::from_str(example).unwrap();
        for key in KEYS {
            assert!(
                table.contains_key(key),
                "conf.d/wsgid.toml does not set {key}"
            );
        }
        assert!(c.max_requests.is_some());

        let man8 = include_str!("../../man/wsgid.8");
        let man5 = include_str!("../../man/wsgid.toml.5");
        let command = <super::super::cli::Cli as clap::CommandFactory>::command();
        let mut options = Vec::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(man8.contains(&roff), "wsgid.8 does not document --{long}");
            if !matches!(long, "config" | "check" | "help" | "version") {
                let key = format!(".BR {} ", long.replace('-', "_"));
                assert!(man5.contains(&key), "wsgid.toml.5 does not document {long}");
                options.push(long.replace('-', "_"));
            }
        }
        // Every option has a key, and every key an option (but include, which only a
        // file can use).
        options.push("app".into());
        options.sort();
        let mut keys: Vec<String> = KEYS
            .iter()
            .chain(&super::super::files::TOP_KEYS)
            .filter(|&&k| k != "include")
            .map(|k| k.to_string())
            .collect();
        keys.sort();
        assert_eq!(options, keys);
        assert!(
            man5.contains(".BR include "),
            "wsgid.toml.5 does not document include"
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "\nthreads = \"x\"\n").unwrap();
        let e = FileConfig::load(&path).unwrap_err();
        assert!(
            e.starts_with(&format!("threads in {}, line 2: ", path.display())),
            "{e}"
        );
        std::fs::write(&path, "threads = \n").unwrap();
        let e = FileConfig::load(&path).unwrap_err();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        let e = FileConfig::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
