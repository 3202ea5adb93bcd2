//! The TOML configuration file: one key per command-line option (`--max-body` is
//! `max_body`), all optional, unknown keys rejected so a misspelt key is an error rather
//! than silently ignored. Paths are returned as written; `resolve` anchors relative ones at
//! the file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::{BodyLimit, Millis, Mode, OneOrMany, Size};

/// The contents of a configuration file.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub app: Option<String>,
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
    pub max_connections: Option<usize>,
    pub max_in_flight: Option<usize>,
    /// Refused with a message naming `max_in_flight` (see `resolve`).
    pub max_requests: Option<toml::Value>,
    pub output_buffer: Option<Size>,
    pub input_buffer: Option<Size>,
    pub log_level: Option<String>,
}

impl FileConfig {
    /// Parses configuration text; the error names the line and column.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Reads and parses a configuration file; the error names the file.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
        FileConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
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
            max_connections = 100
            max_in_flight = 50
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
        assert_eq!(c.socket_mode, Some(Mode(0o600)));
        assert_eq!(c.env.as_ref().map(|e| e.len()), Some(2));
        assert_eq!(c.max_params_bytes, Some(Size(128 << 10)));
        assert_eq!(c.max_body, Some(BodyLimit(Some(10 << 20))));
        assert_eq!(c.read_timeout, Some(Millis(12_500)));
        assert_eq!(c.graceful_timeout, Some(Millis(60_000)));
        assert_eq!(c.interrupt_timeout, Some(Millis(500)));
        assert_eq!(c.input_buffer, Some(Size(2 << 20)));
        assert_eq!(c.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(FileConfig::parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = FileConfig::parse("app = \"a:b\"\nproceses = 2\n").unwrap_err();
        assert!(e.contains("proceses"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn wrong_types_are_rejected() {
        for text in [
            "processes = \"two\"",
            "processes = -1",
            "threads = 1.5",
            "env = [\"A=1\"]",
            "env = { A = 1 }",
            "pythonpath = \"/x\"",
            "max_body = \"huge\"",
            "socket_mode = \"rw\"",
            "idle_timeout = true",
            "[section]\nx = 1",
        ] {
            assert!(FileConfig::parse(text).is_err(), "{text:?} accepted");
        }
    }

    /// The example configuration sets every key, and the manual pages document every key
    /// and option: a new option cannot be added without its documentation.
    #[test]
    fn example_and_manuals_cover_every_key() {
        let c = FileConfig::parse(include_str!("../../conf.d/wsgid.toml")).unwrap();
        let set = [
            c.app.is_some(),
            c.fastcgi.is_some(),
            c.scgi.is_some(),
            c.processes.is_some(),
            c.threads.is_some(),
            c.mount.is_some(),
            c.socket_mode.is_some(),
            c.chdir.is_some(),
            c.pythonpath.is_some(),
            c.virtualenv.is_some(),
            c.env.is_some(),
            c.max_params_bytes.is_some(),
            c.max_params.is_some(),
            c.max_scgi_header.is_some(),
            c.max_body.is_some(),
            c.idle_timeout.is_some(),
            c.read_timeout.is_some(),
            c.send_timeout.is_some(),
            c.graceful_timeout.is_some(),
            c.interrupt_timeout.is_some(),
            c.max_connections.is_some(),
            c.max_in_flight.is_some(),
            c.output_buffer.is_some(),
            c.input_buffer.is_some(),
            c.log_level.is_some(),
        ];
        assert!(set.iter().all(|&b| b), "{set:?}");

        let man8 = include_str!("../../man/wsgid.8");
        let man5 = include_str!("../../man/wsgid.toml.5");
        let command = <super::super::cli::Cli as clap::CommandFactory>::command();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(man8.contains(&roff), "wsgid.8 does not document --{long}");
            if !matches!(long, "config" | "check" | "help" | "version") {
                let key = format!(".BR {} ", long.replace('-', "_"));
                assert!(man5.contains(&key), "wsgid.toml.5 does not document {long}");
            }
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "threads = \"x\"\n").unwrap();
        let e = FileConfig::load(&path).unwrap_err();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        let e = FileConfig::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
