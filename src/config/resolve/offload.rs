//! The offload settings: `offload` (which header a file response becomes) and
//! `offload_map` (which files, and what the front end is told for each), checked so that
//! nothing the front end could misread reaches a header: every path absolute with no `.`
//! or `..` segment and no control character, every URI one nginx takes as it is written.

use super::{non_empty, Cli, FileConfig, Merger, Problems};
use crate::config::settings::{Offload, OffloadMode};

/// The offload settings of `cli` over `f`; every problem is noted in `problems`.
pub(super) fn offload(
    m: &Merger<'_>,
    cli: &Cli,
    f: &FileConfig,
    problems: &mut Problems,
) -> Offload {
    let picked = m.pick("offload", cli.offload, f.offload);
    let mode = picked.as_ref().map_or(OffloadMode::Off, |p| p.value);
    let Some(given) = m.pick(
        "offload_map",
        non_empty(cli.offload_map.clone()),
        f.offload_map.clone(),
    ) else {
        if let Some(p) = picked.filter(|p| p.value == OffloadMode::XAccelRedirect) {
            problems.add(
                p.err(
                    "x-accel-redirect needs offload_map: each directory nginx may send files \
                 from, with the URI of the internal location that aliases it"
                        .into(),
                ),
            );
        }
        return Offload {
            mode,
            map: Vec::new(),
        };
    };
    let mut map: Vec<(String, String)> = Vec::with_capacity(given.value.len());
    for (path, target) in &given.value {
        let path = match normalize_path(path) {
            Ok(p) => p,
            Err(e) => {
                problems.add(given.err(e));
                continue;
            }
        };
        let target = match mode {
            OffloadMode::XAccelRedirect => check_uri(target).map(|()| target.clone()),
            OffloadMode::XSendfile => normalize_path(target),
            // Unused: kept as written.
            OffloadMode::Off => Ok(target.clone()),
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => {
                problems.add(given.err(format!("for {path}: {e}")));
                continue;
            }
        };
        if map.iter().any(|(p, _)| *p == path) {
            problems.add(given.err(format!("{path} is given more than once")));
            continue;
        }
        map.push((path, target));
    }
    Offload { mode, map }
}

/// An absolute path with no `.` or `..` segment and no control character, without empty
/// segments or a trailing `/` ("/" stays "/").
pub fn normalize_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("{s:?} is not an absolute path"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{s:?} contains a control character"));
    }
    let mut out = String::with_capacity(s.len());
    for segment in s.split('/').filter(|x| !x.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(format!("{s:?} contains a {segment:?} segment"));
        }
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// A URI path nginx takes as written: starting with `/`, of RFC 3986 path characters
/// (percent-escapes included), with no `.` or `..` segment (nginx refuses an
/// X-Accel-Redirect holding one).
pub fn check_uri(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err(format!("URI {s:?} must start with \"/\""));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&c);
        if c == b'%' {
            let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(format!(
                    "URI {s:?} holds a % not followed by two hex digits"
                ));
            }
            i += 3;
            continue;
        }
        if !ok {
            return Err(format!(
                "URI {s:?} holds {:?}, which must be percent-encoded",
                char::from(c)
            ));
        }
        i += 1;
    }
    if s.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!("URI {s:?} contains a . or .. segment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolve::{merge_for_test, ConfigError};
    use crate::config::Settings;
    use clap::Parser;

    fn run(args: &[&str], toml: &str) -> Result<Settings, ConfigError> {
        merge_for_test(args, toml, "/etc/wsgid/site.toml", "/")
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn off_by_default() {
        assert_eq!(run(&[], "").unwrap().offload, Offload::default());
    }

    #[test]
    fn from_the_file_and_the_command_line() {
        let toml = "offload = \"x-accel-redirect\"\n\
                    offload_map = { \"/srv/media/\" = \"/_protected/media\" }\n";
        let o = run(&[], toml).unwrap().offload;
        assert_eq!(o.mode, OffloadMode::XAccelRedirect);
        assert_eq!(o.map, pairs(&[("/srv/media", "/_protected/media")]));
        // The command line's map replaces the file's; its mode wins.
        let o = run(
            &[
                "--offload",
                "x-sendfile",
                "--offload-map",
                "/app/media=/srv/site/media/",
            ],
            toml,
        )
        .unwrap()
        .offload;
        assert_eq!(o.mode, OffloadMode::XSendfile);
        assert_eq!(o.map, pairs(&[("/app/media", "/srv/site/media")]));
        // x-sendfile needs no map.
        let o = run(&["--offload", "x-sendfile"], "").unwrap().offload;
        assert_eq!((o.mode, o.map.len()), (OffloadMode::XSendfile, 0));
        // Off: the map is kept, its targets unchecked.
        let o = run(
            &["--offload", "off"],
            "offload_map = { \"/a\" = \"any thing\" }",
        )
        .unwrap()
        .offload;
        assert_eq!(o.mode, OffloadMode::Off);
    }

    #[test]
    fn problems_name_the_key() {
        let e = run(&[], "offload = \"x-accel-redirect\"").unwrap_err().0;
        assert!(
            e.starts_with("offload in /etc/wsgid/site.toml: x-accel-redirect needs offload_map"),
            "{e}"
        );
        let e = run(&["--offload", "x-accel-redirect"], "").unwrap_err().0;
        assert!(
            e.starts_with("--offload: x-accel-redirect needs offload_map"),
            "{e}"
        );
        let e = run(
            &[
                "--offload",
                "x-accel-redirect",
                "--offload-map",
                "/srv/../etc=/p",
            ],
            "",
        )
        .unwrap_err()
        .0;
        assert!(
            e.starts_with("--offload-map: \"/srv/../etc\" contains"),
            "{e}"
        );
        let e = run(
            &[],
            "offload = \"x-accel-redirect\"\noffload_map = { \"/srv/m\" = \"/p?x\" }",
        )
        .unwrap_err()
        .0;
        assert!(
            e.contains("offload_map in /etc/wsgid/site.toml: for /srv/m: URI"),
            "{e}"
        );
        let e = run(
            &["--offload", "x-sendfile", "--offload-map", "/a=relative"],
            "",
        )
        .unwrap_err()
        .0;
        assert!(e.contains("not an absolute path"), "{e}");
        let e = run(
            &[
                "--offload",
                "x-sendfile",
                "--offload-map",
                "/a/=/x",
                "--offload-map",
                "/a=/y",
            ],
            "",
        )
        .unwrap_err()
        .0;
        assert!(e.contains("/a is given more than once"), "{e}");
        let e = FileConfig::parse("offload = \"sendfile\"").unwrap_err();
        assert!(
            e.starts_with("offload, line 1: \"sendfile\": expected"),
            "{e}"
        );
        let e = FileConfig::parse("offload_map = [\"/a=/b\"]").unwrap_err();
        assert!(e.contains("a table of paths and URIs"), "{e}");
        assert!(Cli::try_parse_from(["wsgid", "--offload-map", "/a"]).is_err());
    }

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(normalize_path("/srv/media/").as_deref(), Ok("/srv/media"));
        assert_eq!(normalize_path("//srv//media").as_deref(), Ok("/srv/media"));
        assert_eq!(normalize_path("/").as_deref(), Ok("/"));
        assert_eq!(normalize_path("///").as_deref(), Ok("/"));
        for bad in [
            "srv/media",
            "",
            "/srv/../etc",
            "/srv/./media",
            "/srv/..",
            "/srv/a\nb",
            "/srv/a\0b",
        ] {
            assert!(normalize_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uris_are_checked() {
        for good in [
            "/_protected/media",
            "/_protected/media/",
            "/a%20b/c",
            "/~u/x-y_z.1",
            "/",
        ] {
            assert_eq!(check_uri(good), Ok(()), "{good:?}");
        }
        for bad in [
            "_protected",
            "/a b",
            "/a?b",
            "/a#b",
            "/a%2",
            "/a%zz",
            "/a/../b",
            "/a/./b",
            "/..",
            "/a\r\nX-Evil: 1",
            "/caf\u{e9}",
            "/a\\b",
        ] {
            assert!(check_uri(bad).is_err(), "{bad:?}");
        }
    }
}
