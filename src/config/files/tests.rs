//! Tests of reading a configuration with `[[app]]` tables and drop-ins.

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn without_app_tables_the_top_level_is_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "wsgid.toml", "app = \"a:b\"\nthreads = 2\n");
    let (l, problems) = load(&main).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(l.apps.is_empty());
    assert_eq!(l.top.app.as_deref(), Some("a:b"));
    assert_eq!(l.top.threads, Some(2));
}

#[test]
fn apps_inherit_the_top_level_and_override_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    write(
        &dir.path().join("conf.d"),
        "b.toml",
        "[[app]]\nname = \"b\"\napp = \"b:app\"\nthreads = 3\n",
    );
    write(
        &dir.path().join("conf.d"),
        "c.toml.disabled",
        "[[app]]\nname = \"x\"\n",
    );
    write(
        &dir.path().join("conf.d"),
        ".hidden.toml",
        "[[app]]\nname = \"y\"\n",
    );
    let main = write(
        dir.path(),
        "wsgid.toml",
        "threads = 4\nprocesses = 2\ninclude = \"conf.d/*.toml\"\ncontrol_socket = \"ctl.sock\"\n\
         [[app]]\nname = \"a\"\napp = \"a:app\"\nlisten = [\"fastcgi:127.0.0.1:9000\"]\n",
    );
    let (l, problems) = load(&main).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(l.control_socket, Some(PathBuf::from("ctl.sock")));
    let names: Vec<_> = l
        .apps
        .iter()
        .map(|a| a.config.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(l.apps[0].config.threads, Some(4));
    assert_eq!(l.apps[0].config.processes, Some(2));
    assert_eq!(l.apps[0].line, 5);
    assert_eq!(l.apps[1].config.threads, Some(3));
    assert_eq!(l.apps[1].config.processes, Some(2));
    assert_eq!(l.apps[1].file, dir.path().join("conf.d/b.toml"));
    assert_eq!(
        l.apps[0].config.listen,
        Some(vec!["fastcgi:127.0.0.1:9000".to_string()])
    );
}

/// A problem names the file and line where the value was written, once, also for a
/// default every app inherits.
#[test]
fn problems_name_the_file_and_line_they_are_in() {
    let dir = tempfile::tempdir().unwrap();
    let drop_in = write(
        dir.path(),
        "blog.toml",
        "processes = 2\n[[app]]\nname = \"blog\"\nthreads = \"many\"\n[[app]]\nname = \"a\"\n\
         proceses = 1\n",
    );
    let main = write(
        dir.path(),
        "wsgid.toml",
        "idle_timeout = true\napp = \"x:y\"\ninclude = [\"blog.toml\", \"missing.toml\"]\n",
    );
    let (_, problems) = load(&main).unwrap();
    let m = main.display();
    let d = drop_in.display();
    let expected = [
        format!(
            "cannot read {}/missing.toml (from include): ",
            dir.path().display()
        ),
        format!("idle_timeout in {m}, line 1: expected seconds"),
        format!("app in {m}, line 2: with [[app]] tables, app belongs in each app's table"),
        format!("processes in {d}, line 1: a file pulled in by include holds [[app]] tables only"),
        format!("threads in {d}, line 4: expected a whole number"),
        format!("proceses in {d}, line 7: unknown key (did you mean processes?)"),
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (p, e) in problems.iter().zip(&expected) {
        assert!(p.starts_with(e.as_str()), "{p:?} does not start with {e:?}");
    }
}

#[test]
fn include_patterns() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["a.toml", "b.toml", "ab.conf"] {
        write(dir.path(), n, "");
    }
    let names = |p: &str| -> Vec<String> {
        expand(dir.path(), p)
            .unwrap()
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names("*.toml"), ["a.toml", "b.toml"]);
    assert_eq!(names("?.toml"), ["a.toml", "b.toml"]);
    assert_eq!(names("a*"), ["a.toml", "ab.conf"]);
    assert!(names("*.none").is_empty());
    assert_eq!(names("exact.toml"), ["exact.toml"]);
    assert!(expand(dir.path(), "nodir/*.toml")
        .unwrap_err()
        .contains("cannot list"));
    assert!(expand(dir.path(), "*/x.toml")
        .unwrap_err()
        .contains("only the last part"));
    assert!(matches(b"*", b""));
    assert!(matches(b"a*b*c", b"aXbYc"));
    assert!(!matches(b"a*b", b"ac"));
}

/// The multi-application example in conf.d/ reads without a problem (its include matches
/// nothing here).
#[test]
fn the_example_reads() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../../conf.d/wsgid-apps.toml")
        .replace("/etc/wsgid/conf.d/*.toml", "conf.d/*.toml");
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    let main = write(dir.path(), "wsgid-apps.toml", &text);
    let (l, problems) = load(&main).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(l.apps.len(), 2);
    assert_eq!(l.apps[0].config.max_requests, Some(10_000));
    assert_eq!(l.apps[1].config.threads, Some(16));
}
