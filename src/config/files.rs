//! A configuration file with everything it pulls in: its top-level keys, the `[[app]]`
//! tables it and its `include`d drop-ins declare, and the keys only the main file may set
//! (`include`, `control_socket`).
//!
//! Without `[[app]]` tables the top-level keys describe the one application, as they
//! always have. With them, the top-level keys are defaults every app inherits, each app's
//! own keys winning; an app's keys are read as if written in its table, so a problem names
//! the file and line where the value was written. Drop-ins hold `[[app]]` tables only.
//! `include` takes paths whose last component may hold `*` and `?` wildcards (matched
//! files are read in name order; a directory that does not exist is an error, a pattern
//! matching nothing is not).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use toml::{Spanned, Value};

use super::file::{build, Entry, FileConfig, Source};

/// Keys only the main file's top level may set.
pub const TOP_KEYS: [&str; 2] = ["include", "control_socket"];

/// Keys that describe one application alone: with `[[app]]` tables they are not defaults.
const PER_APP: [&str; 5] = ["name", "app", "listen", "fastcgi", "scgi"];

/// A configuration file and its drop-ins, read.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The main file's top-level keys: the application itself without `[[app]]` tables,
    /// the defaults of every app with them.
    pub top: FileConfig,
    pub apps: Vec<AppTable>,
    /// As written (relative to the main file's directory if not absolute).
    pub control_socket: Option<PathBuf>,
}

/// One `[[app]]` table, with the defaults it inherits applied.
#[derive(Debug)]
pub struct AppTable {
    pub config: FileConfig,
    /// The file that declares it: relative paths of its keys are anchored at its
    /// directory.
    pub file: PathBuf,
    pub line: usize,
}

type Table = BTreeMap<String, Spanned<Value>>;

/// The `[[app]]` tables of a file, with their positions (a second reading of the text:
/// values inside an array of tables keep their spans only when read as such).
#[derive(serde::Deserialize)]
struct Apps {
    app: Vec<Spanned<Table>>,
}

/// Reads `main` and what it includes; the configuration and every problem found (in file
/// and line order), or Err when the main file cannot be read or is not TOML.
pub fn load(main: &Path) -> Result<(Loaded, Vec<String>), String> {
    let text = std::fs::read_to_string(main)
        .map_err(|e| format!("cannot read configuration file {}: {e}", main.display()))?;
    let mut sources = vec![Source {
        path: Some(main.to_path_buf()),
        text,
    }];
    let mut top: Table = sources[0].table()?;
    let mut problems: BTreeSet<((usize, usize), String)> = BTreeSet::new();
    let dir = main.parent().unwrap_or(Path::new("/")).to_path_buf();

    let mut loaded = Loaded::default();
    if let Some(v) = top.remove("control_socket") {
        let (line, place) = sources[0].locate("control_socket", v.span().start);
        match v.into_inner() {
            Value::String(s) if !s.is_empty() => loaded.control_socket = Some(PathBuf::from(s)),
            other => {
                problems.insert((
                    (0, line),
                    format!("{place}: expected a path, got {}", what(&other)),
                ));
            }
        }
    }
    let mut includes = Vec::new();
    if let Some(v) = top.remove("include") {
        let (line, place) = sources[0].locate("include", v.span().start);
        match patterns(v.into_inner()) {
            Ok(list) => {
                for pattern in list {
                    match expand(&dir, &pattern) {
                        Ok(files) => includes.extend(files),
                        Err(e) => {
                            problems.insert(((0, line), format!("{place}: {e}")));
                        }
                    }
                }
            }
            Err(e) => {
                problems.insert(((0, line), format!("{place}: {e}")));
            }
        }
    }

    // Every [[app]] table, with the index of its source.
    let mut tables: Vec<(usize, Spanned<Table>)> = Vec::new();
    if is_app_tables(top.get("app")) {
        top.remove("app");
        let apps: Apps = sources[0].table()?;
        tables.extend(apps.app.into_iter().map(|t| (0, t)));
    }
    for path in includes {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.insert((
                    (0, 0),
                    format!("cannot read {} (from include): {e}", path.display()),
                ));
                continue;
            }
        };
        sources.push(Source {
            path: Some(path),
            text,
        });
        let i = sources.len() - 1;
        let table: Table = match sources[i].table() {
            Ok(t) => t,
            Err(e) => {
                problems.insert(((i, 0), e));
                continue;
            }
        };
        for (key, value) in &table {
            if key == "app" && is_app_tables(Some(value)) {
                continue;
            }
            let (line, place) = sources[i].locate(key, value.span().start);
            problems.insert((
                (i, line),
                format!(
                    "{place}: a file pulled in by include holds [[app]] tables only; set {key} \
                     in {} or in an [[app]] table",
                    main.display()
                ),
            ));
        }
        if table.contains_key("app") && is_app_tables(table.get("app")) {
            match sources[i].table::<Apps>() {
                Ok(apps) => tables.extend(apps.app.into_iter().map(|t| (i, t))),
                Err(e) => {
                    problems.insert(((i, 0), e));
                }
            }
        }
    }

    let order = |s: &Source| {
        sources
            .iter()
            .position(|x| std::ptr::eq(x, s))
            .unwrap_or(usize::MAX)
    };
    let top: Vec<(String, Spanned<Value>)> = top.into_iter().collect();
    if tables.is_empty() {
        let entries = top.into_iter().map(|(key, value)| Entry {
            key,
            value,
            source: &sources[0],
        });
        let (config, found) = build(entries, order);
        loaded.top = config;
        problems.extend(found);
    } else {
        let mut inherited = Vec::new();
        for (key, value) in top {
            if PER_APP.contains(&key.as_str()) {
                let (line, place) = sources[0].locate(&key, value.span().start);
                problems.insert((
                    (0, line),
                    format!(
                        "{place}: with [[app]] tables, {key} belongs in each app's table, not \
                         at the top level"
                    ),
                ));
            } else {
                inherited.push((key, value));
            }
        }
        let entries = inherited.iter().map(|(key, value)| Entry {
            key: key.clone(),
            value: value.clone(),
            source: &sources[0],
        });
        let (config, found) = build(entries, order);
        loaded.top = config;
        problems.extend(found);
        for (i, table) in tables {
            let line = super::file::line_of(&sources[i].text, table.span().start);
            let own = table.into_inner();
            let own_keys: BTreeSet<String> = own.keys().cloned().collect();
            let entries = inherited
                .iter()
                .filter(|(key, _)| !own_keys.contains(key))
                .map(|(key, value)| Entry {
                    key: key.clone(),
                    value: value.clone(),
                    source: &sources[0],
                })
                .chain(own.into_iter().map(|(key, value)| Entry {
                    key,
                    value,
                    source: &sources[i],
                }));
            let (config, found) = build(entries, order);
            problems.extend(found);
            loaded.apps.push(AppTable {
                config,
                file: sources[i]
                    .path
                    .clone()
                    .unwrap_or_else(|| main.to_path_buf()),
                line,
            });
        }
    }
    Ok((loaded, problems.into_iter().map(|(_, p)| p).collect()))
}

/// A value that is `[[app]]` tables (rather than the single app's `app = "..."`).
fn is_app_tables(v: Option<&Spanned<Value>>) -> bool {
    match v.map(Spanned::get_ref) {
        Some(Value::Array(items)) => {
            !items.is_empty() && items.iter().all(|i| matches!(i, Value::Table(_)))
        }
        _ => false,
    }
}

fn what(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
        other => format!("{other}"),
    }
}

/// `include`'s value: a path pattern or a list of them.
fn patterns(v: Value) -> Result<Vec<String>, String> {
    const EXPECTED: &str =
        "expected a path pattern such as \"/etc/wsgid/conf.d/*.toml\", or a list of them";
    match v {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                other => Err(format!("{EXPECTED}, got a list holding {}", what(&other))),
            })
            .collect(),
        other => Err(format!("{EXPECTED}, got {}", what(&other))),
    }
}

/// The files `pattern` names, relative to `dir` unless absolute, in name order.
fn expand(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let path = dir.join(pattern);
    let wild = |s: &str| s.contains(['*', '?']);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Err(format!("{pattern:?} names no file"));
    };
    if wild(&parent.to_string_lossy()) {
        return Err(format!(
            "{pattern:?}: only the last part of the path may hold * or ?"
        ));
    }
    if !wild(name) {
        return Ok(vec![path]);
    }
    let entries = std::fs::read_dir(parent)
        .map_err(|e| format!("cannot list {} for {pattern:?}: {e}", parent.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| !n.starts_with('.') && matches(name.as_bytes(), n.as_bytes()))
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Whether `name` matches `pattern`, where `*` matches any run of bytes and `?` one byte.
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            matches(rest, name) || (!name.is_empty() && matches(pattern, &name[1..]))
        }
        (Some((b'?', rest)), Some((_, name_rest))) => matches(rest, name_rest),
        (Some((p, rest)), Some((n, name_rest))) => p == n && matches(rest, name_rest),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
