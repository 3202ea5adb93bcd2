//! Workers as the application's own user, with every privilege dropped, against real
//! users: two apps as two users, as two daemons and as two `[[app]]` tables of one (each
//! worker's /proc status: its ids four times, no group 0, every capability set empty,
//! no_new_privs; neither reads the other's secret), umask and supplementary groups
//! applied, Unix socket owner, group and mode, a real chroot, a master holding capabilities
//! without being root, wsgid's library read through its descriptor, and the refusals (the
//! application as root, at start and on reload; a switch an unprivileged master may not
//! make; an interpreter, a directory or a file the user cannot reach; check_ownership).
//!
//! Most tests need root (CI runs the suite as root); without it they say so and return.
//! The test users and group are made when missing. Workers running as them must reach
//! wsgid's library, the interpreter and the application: each test stages a copy of wsgid,
//! libwsgid.so and the application in a fresh world-readable directory (the checkout and
//! the target directory may be under /root, which other users cannot enter), and runs
//! Debian's /usr/bin/python3 without a virtualenv.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use common::fcgi::{self, Request};
use common::{Daemon, Scratch};

const USER_A: &str = "wsgid-test-a";
const USER_B: &str = "wsgid-test-b";
const GROUP: &str = "wsgid-test-g";

/// Whether the test can run; without root it prints why not.
fn root(test: &str) -> bool {
    if common::is_root() {
        accounts();
        return true;
    }
    println!("{test}: skipped: needs root (the CI runs the tests as root)");
    false
}

/// Makes the test users and group once per test binary; they may exist already, or be
/// made at the same moment by another test binary.
fn accounts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let group_exists = || {
            nix::unistd::Group::from_name(GROUP)
                .ok()
                .flatten()
                .is_some()
        };
        make(&["groupadd", "--system", GROUP], group_exists);
        for user in [USER_A, USER_B] {
            let exists = || nix::unistd::User::from_name(user).ok().flatten().is_some();
            make(
                &[
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    user,
                ],
                exists,
            );
        }
    });
}

fn make(argv: &[&str], exists: impl Fn() -> bool) {
    if exists() {
        return;
    }
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    // Made meanwhile by someone else: useradd and groupadd then fail, and that is fine.
    assert!(
        out.status.success() || exists(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn uid(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

fn primary_gid(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .gid
        .as_raw()
}

fn gid(group: &str) -> u32 {
    nix::unistd::Group::from_name(group)
        .unwrap()
        .unwrap()
        .gid
        .as_raw()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, user: &str) {
    std::os::unix::fs::chown(path, Some(uid(user)), Some(primary_gid(user))).unwrap();
}

/// A copy of wsgid, its library and the test application in a world-readable directory.
struct Stage {
    dir: Scratch,
    exe: PathBuf,
    /// The application file.
    app: String,
}

fn stage(name: &str) -> Stage {
    let dir = common::scratch(name);
    chmod(&dir, 0o755);
    let built = Path::new(env!("CARGO_BIN_EXE_wsgid"));
    let exe = dir.join("wsgid");
    std::fs::copy(built, &exe).unwrap();
    let target = built.parent().unwrap();
    let library = [target.join("deps/libwsgid.so"), target.join("libwsgid.so")]
        .into_iter()
        .find(|p| p.is_file())
        .expect("libwsgid.so next to the test build of wsgid");
    std::fs::copy(&library, dir.join("libwsgid.so")).unwrap();
    chmod(&dir.join("libwsgid.so"), 0o755);
    let app = dir.join("app.py");
    std::fs::copy(common::fixtures().join("privileges_app.py"), &app).unwrap();
    chmod(&app, 0o644);
    Stage {
        exe,
        app: app.to_str().unwrap().to_string(),
        dir,
    }
}

impl Stage {
    /// A daemon of this stage's wsgid serving its application over FastCGI.
    fn daemon(&self) -> common::Builder {
        Daemon::builder(&self.app)
            .exe(&self.exe)
            .cwd(&self.dir)
            .fastcgi()
    }
}

fn get(d: &Daemon, uri: &str) -> String {
    let r = fcgi::request(d.fcgi.as_deref().unwrap(), &Request::get(uri)).cgi();
    assert_eq!(r.status, 200, "{uri}: {}", r.text());
    r.text()
}

/// The value of `field` in a /proc status text.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
}

/// What a worker of a daemon running as `user` must show in /proc/self/status.
fn assert_dropped(status: &str, user: &str, groups: &[u32]) {
    let (u, g) = (uid(user), primary_gid(user));
    assert_eq!(
        field(status, "Uid"),
        format!("{u}\t{u}\t{u}\t{u}"),
        "{status}"
    );
    assert_eq!(
        field(status, "Gid"),
        format!("{g}\t{g}\t{g}\t{g}"),
        "{status}"
    );
    let mut have: Vec<u32> = field(status, "Groups")
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    have.sort_unstable();
    let mut want = groups.to_vec();
    want.sort_unstable();
    assert_eq!(have, want, "{status}");
    assert!(!have.contains(&0), "{status}");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(status, set), "0000000000000000", "{set}: {status}");
    }
    assert_eq!(field(status, "NoNewPrivs"), "1", "{status}");
}

/// Two applications as two users: each worker holds only its user's ids, no groups, no
/// capability in any set and no_new_privs; each reads its own secret and not the other's;
/// each gets its user's HOME, USER and LOGNAME.
#[test]
fn two_apps_as_two_users_hold_nothing_more() {
    if !root("two_apps_as_two_users_hold_nothing_more") {
        return;
    }
    let s = stage("two-users");
    let secrets: Vec<PathBuf> = [USER_A, USER_B]
        .iter()
        .map(|user| {
            let path = s.dir.join(format!("secret-{user}"));
            std::fs::write(&path, format!("secret of {user}")).unwrap();
            chmod(&path, 0o600);
            chown(&path, user);
            path
        })
        .collect();
    let a = s.daemon().args(&["--user", USER_A]).start();
    let b = s.daemon().args(&["--user", USER_B]).start();
    assert!(
        a.log().contains(&format!(
            "workers run as user {USER_A} (uid {})",
            uid(USER_A)
        )),
        "{}",
        a.log()
    );
    for (d, user, own, other) in [
        (&a, USER_A, &secrets[0], &secrets[1]),
        (&b, USER_B, &secrets[1], &secrets[0]),
    ] {
        assert_dropped(&get(d, "/status"), user, &[]);
        assert_eq!(
            get(d, &format!("/read?{}", own.display())),
            format!("read:secret of {user}")
        );
        assert_eq!(
            get(d, &format!("/read?{}", other.display())),
            "PermissionError"
        );
        let home = nix::unistd::User::from_name(user).unwrap().unwrap().dir;
        assert_eq!(get(d, "/env"), format!("{} {user} {user}", home.display()));
    }
}

/// The same with one wsgid serving both applications from `[[app]]` tables, each with its
/// own user: every worker holds its own app's user and nothing more.
#[test]
fn one_wsgid_two_apps_two_users() {
    if !root("one_wsgid_two_apps_two_users") {
        return;
    }
    let s = stage("apps-users");
    let addrs = [
        format!("127.0.0.1:{}", common::free_port()),
        format!("127.0.0.1:{}", common::free_port()),
    ];
    let mut conf = String::from("threads = 2\n");
    for (name, user, addr) in [("a", USER_A, &addrs[0]), ("b", USER_B, &addrs[1])] {
        let secret = s.dir.join(format!("secret-{name}"));
        std::fs::write(&secret, format!("secret of {name}")).unwrap();
        chmod(&secret, 0o600);
        chown(&secret, user);
        conf.push_str(&format!(
            "[[app]]\nname = \"{name}\"\nuser = \"{user}\"\napp = \"{}\"\n\
             fastcgi = \"{addr}\"\n",
            s.app
        ));
    }
    let path = s.dir.join("apps.toml");
    std::fs::write(&path, conf).unwrap();
    chmod(&path, 0o644);
    let d = Daemon::builder("")
        .exe(&s.exe)
        .cwd(&s.dir)
        .args(&["--config", path.to_str().unwrap()])
        .start();
    d.wait_log("wsgid ready: 2 workers", 30);
    let at = |addr: &str, uri: &str| {
        let r = fcgi::request(addr, &Request::get(uri)).cgi();
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
        r.text()
    };
    for (name, user, addr, other) in [("a", USER_A, &addrs[0], "b"), ("b", USER_B, &addrs[1], "a")]
    {
        assert_dropped(&at(addr, "/status"), user, &[]);
        let own = s.dir.join(format!("secret-{name}"));
        let theirs = s.dir.join(format!("secret-{other}"));
        assert_eq!(
            at(addr, &format!("/read?{}", own.display())),
            format!("read:secret of {name}")
        );
        assert_eq!(
            at(addr, &format!("/read?{}", theirs.display())),
            "PermissionError"
        );
        assert!(
            d.log().contains(&format!(
                "app {name}: workers run as user {user} (uid {})",
                uid(user)
            )),
            "{}",
            d.log()
        );
    }
}

/// --umask sets the mode of the files the application creates; --supplementary-groups
/// are the worker's groups, and nothing else; --chdir is entered as the user.
#[test]
fn umask_supplementary_groups_and_chdir_are_applied() {
    if !root("umask_supplementary_groups_and_chdir_are_applied") {
        return;
    }
    let s = stage("umask");
    let out = s.dir.join("out");
    std::fs::create_dir(&out).unwrap();
    chown(&out, USER_A);
    let groups = format!("{GROUP},users");
    let d = s
        .daemon()
        .args(&["--user", USER_A, "--umask", "0027"])
        .args(&["--supplementary-groups", &groups])
        .args(&["--chdir", out.to_str().unwrap()])
        .start();
    let users = gid("users");
    assert_dropped(&get(&d, "/status"), USER_A, &[gid(GROUP), users]);
    let file = out.join("made");
    assert_eq!(get(&d, &format!("/create?{}", file.display())), "0640");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (uid(USER_A), primary_gid(USER_A)));
    assert_eq!(get(&d, "/cwd"), out.display().to_string());

    // In the file too, with the group named by number.
    let conf = s.dir.join("wsgid.toml");
    std::fs::write(
        &conf,
        format!(
            "user = \"{USER_A}\"\numask = 0o077\nsupplementary_groups = [{}]\n",
            gid(GROUP)
        ),
    )
    .unwrap();
    let d = s
        .daemon()
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    assert_dropped(&get(&d, "/status"), USER_A, &[gid(GROUP)]);
    assert_eq!(get(&d, &format!("/create?{}", file.display())), "0600");
}

/// A Unix socket wsgid creates gets --socket-owner, --socket-group and --socket-mode
/// before it listens.
#[test]
fn unix_socket_carries_owner_group_and_mode() {
    if !root("unix_socket_carries_owner_group_and_mode") {
        return;
    }
    let s = stage("socket");
    let sock = s.dir.join("app.sock");
    let listen = format!("unix:{}", sock.display());
    let d = Daemon::builder(&s.app)
        .exe(&s.exe)
        .cwd(&s.dir)
        .args(&["--fastcgi", &listen, "--user", USER_A])
        .args(&["--socket-owner", USER_B, "--socket-group", GROUP])
        .args(&["--socket-mode", "0640"])
        .start();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.uid(), uid(USER_B));
    assert_eq!(meta.gid(), gid(GROUP));
    assert_eq!(meta.mode() & 0o7777, 0o640);
    drop(d);

    // An unknown group is a configuration error naming the option.
    let (st, out) = Daemon::builder(&s.app)
        .exe(&s.exe)
        .args(&[
            "--fastcgi",
            &listen,
            "--socket-group",
            "no-such-group-wsgid",
        ])
        .run();
    assert_eq!(st.code(), Some(2), "{out}");
    assert!(
        out.contains("--socket-group: there is no group named \"no-such-group-wsgid\""),
        "{out}"
    );
}

/// wsgid started as root does not run the application as root unless allow_root says so:
/// exit 2 at start, a problem for --check (exit 1), and the same for --user root.
#[test]
fn refuses_to_run_the_application_as_root() {
    if !root("refuses_to_run_the_application_as_root") {
        return;
    }
    let s = stage("as-root");
    let refusal = "refusing to run the application as root: set user (and group) to the \
                   account it should run as (--user, --group), or allow_root = true \
                   (--allow-root)";
    for extra in [
        &[][..],
        &["--user", "root"],
        &["--user", "0", "--group", GROUP],
    ] {
        let (st, out) = s.daemon().without_allow_root().args(extra).run();
        assert_eq!(st.code(), Some(2), "{extra:?}: {out}");
        assert!(out.contains(refusal), "{extra:?}: {out}");
        assert!(!out.contains("worker 0"), "a worker started: {out}");
        let (st, out) = s
            .daemon()
            .without_allow_root()
            .args(extra)
            .arg("--check")
            .run();
        assert_eq!(st.code(), Some(1), "{extra:?}: {out}");
        assert!(out.contains(refusal), "{extra:?}: {out}");
    }
    // In the file, allow_root lets it.
    let conf = s.dir.join("root.toml");
    std::fs::write(&conf, "allow_root = true\n").unwrap();
    let (st, out) = s
        .daemon()
        .without_allow_root()
        .args(&["--config", conf.to_str().unwrap(), "--check"])
        .run();
    assert_eq!(st.code(), Some(0), "{out}");
    // An application allowed to run as root keeps root's capabilities, with no_new_privs.
    let d = s.daemon().without_allow_root().arg("--allow-root").start();
    let status = get(&d, "/status");
    assert_eq!(field(&status, "Uid"), "0\t0\t0\t0", "{status}");
    assert_eq!(field(&status, "NoNewPrivs"), "1", "{status}");
}

/// A master that is not root may not switch to another user: it says so at once, naming
/// the user and why, instead of a worker dying; switching to the user it runs as is fine.
#[test]
fn an_unprivileged_master_cannot_switch_users() {
    if !root("an_unprivileged_master_cannot_switch_users") {
        return;
    }
    let s = stage("unprivileged");
    let as_a = |extra: &[&str]| {
        let mut args = vec![
            format!("--reuid={USER_A}"),
            format!("--regid={}", primary_gid(USER_A)),
            "--clear-groups".to_string(),
            "--".to_string(),
            s.exe.to_str().unwrap().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Daemon::builder(&s.app)
            .exe(Path::new("/usr/bin/setpriv"))
            .cwd(&s.dir)
            .args(&args)
    };
    let (st, out) = as_a(&["--fastcgi", "127.0.0.1:0", "--user", USER_B]).run();
    assert_eq!(st.code(), Some(2), "{out}");
    let b = format!("{USER_B} (uid {})", uid(USER_B));
    let a = format!("{USER_A} (uid {})", uid(USER_A));
    assert!(
        out.contains(&format!(
            "cannot run the application as user {b}: wsgid runs as {a}, which may not switch \
             to another user"
        )),
        "{out}"
    );
    let (st, out) = as_a(&["--user", USER_B, "--check"]).run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(out.contains("may not switch to another user"), "{out}");
    // A group it is not in is refused the same way.
    let (st, out) = as_a(&["--user", USER_A, "--group", GROUP, "--check"]).run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(out.contains("which may not change its groups"), "{out}");
    // Its Unix sockets for another owner, or a group it is not in.
    let listen = format!("unix:{}", s.dir.join("a.sock").display());
    let (st, out) = as_a(&["--fastcgi", &listen, "--socket-owner", USER_B]).run();
    assert_eq!(st.code(), Some(2), "{out}");
    assert!(
        out.contains(&format!(
            "cannot give the Unix sockets to owner {b}: wsgid runs as {a}, which may not"
        )),
        "{out}"
    );
    let (st, out) = as_a(&["--fastcgi", &listen, "--socket-group", GROUP, "--check"]).run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(out.contains("which is not in it"), "{out}");
    // Itself: no switch, and the application loads.
    let (st, out) = as_a(&["--user", USER_A, "--check"]).run();
    assert_eq!(st.code(), Some(0), "{out}");
    // Without a user to judge for, a working directory it cannot enter fails the worker's
    // start, said with the step that failed.
    let closed = s.dir.join("closed");
    std::fs::create_dir(&closed).unwrap();
    chmod(&closed, 0o700);
    let (st, out) = as_a(&["--chdir", closed.to_str().unwrap(), "--check"]).run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "cannot start a worker: cannot change to {}: Permission denied",
            closed.display()
        )),
        "{out}"
    );
}

/// An interpreter (here a virtualenv's) under a directory the application's user cannot
/// enter is named with its path, the user and the directory in the way, before anything
/// starts; so is an application file it cannot read.
#[test]
fn unreachable_interpreter_and_app_are_named() {
    if !root("unreachable_interpreter_and_app_are_named") {
        return;
    }
    let s = stage("unreachable");
    let closed = s.dir.join("closed");
    let venv = closed.join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    chmod(&closed, 0o700);
    let version = Command::new("/usr/bin/python3")
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    std::fs::write(
        venv.join("pyvenv.cfg"),
        format!(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = {}\n",
            version.trim()
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", venv.join("bin/python")).unwrap();
    let who = format!("user {USER_A} (uid {})", uid(USER_A));
    let expected = format!(
        "the Python interpreter {}: {who} cannot enter {} (mode 0700, owner root:root)",
        venv.join("bin/python").display(),
        closed.display()
    );
    let venv_arg = venv.to_str().unwrap();
    let (st, out) = s
        .daemon()
        .args(&["--user", USER_A, "--virtualenv", venv_arg])
        .run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(out.contains(&expected), "{out}");
    assert!(
        out.contains(&format!("the virtualenv {venv_arg}: {who} cannot enter")),
        "{out}"
    );
    let (st, out) = s
        .daemon()
        .args(&["--user", USER_A, "--virtualenv", venv_arg, "--check"])
        .run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(out.contains(&expected), "{out}");
    let (st, out) = s
        .daemon()
        .args(&["--user", USER_A, "--chdir", closed.to_str().unwrap()])
        .run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "the working directory (chdir) {}: {who} cannot enter it (mode 0700, owner \
             root:root)",
            closed.display()
        )),
        "{out}"
    );
    // Root itself (allowed to run it) enters any directory.
    let (st, out) = s
        .daemon()
        .args(&["--virtualenv", venv_arg, "--check"])
        .run();
    assert_eq!(st.code(), Some(0), "{out}");

    chmod(Path::new(&s.app), 0o600);
    let (st, out) = s.daemon().args(&["--user", USER_A]).run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "the application file {}: {who} cannot read it (mode 0600, owner root:root)",
            s.app
        )),
        "{out}"
    );
}

/// check_ownership refuses an application file, or its directory, that others than its
/// user or root could write; without it the same file loads.
#[test]
fn check_ownership_refuses_files_others_can_write() {
    let s = stage("ownership");
    let user: Vec<&str> = if common::is_root() {
        accounts();
        vec!["--user", USER_A]
    } else {
        Vec::new()
    };
    chmod(Path::new(&s.app), 0o664);
    let (st, out) = s
        .daemon()
        .args(&user)
        .args(&["--check-ownership", "--check"])
        .run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "refusing to load the application (check_ownership): {} is writable by its group \
             (mode 0664",
            s.app
        )),
        "{out}"
    );
    let (st, out) = s.daemon().args(&user).arg("--check-ownership").run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(out.contains("is writable by its group"), "{out}");
    let (st, out) = s.daemon().args(&user).arg("--check").run();
    assert_eq!(st.code(), Some(0), "{out}");

    chmod(Path::new(&s.app), 0o644);
    chmod(&s.dir, 0o777);
    let conf = s.dir.join("o.toml");
    std::fs::write(&conf, "check_ownership = true\n").unwrap();
    chmod(&conf, 0o644);
    let (st, out) = s
        .daemon()
        .args(&user)
        .args(&["--config", conf.to_str().unwrap(), "--check"])
        .run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "{} is writable by its group and everyone",
            s.dir.display()
        )),
        "{out}"
    );
    chmod(&s.dir, 0o755);
    let (st, out) = s
        .daemon()
        .args(&user)
        .args(&["--config", conf.to_str().unwrap(), "--check"])
        .run();
    assert_eq!(st.code(), Some(0), "{out}");
    if common::is_root() {
        // Owned by another user than the application's.
        chown(Path::new(&s.app), USER_B);
        let (st, out) = s
            .daemon()
            .args(&user)
            .args(&["--check-ownership", "--check"])
            .run();
        assert_eq!(st.code(), Some(1), "{out}");
        assert!(
            out.contains(&format!(
                "{} belongs to {USER_B}, neither the application's user nor root",
                s.app
            )),
            "{out}"
        );
    } else {
        println!(
            "check_ownership_refuses_files_others_can_write: other owners skipped: needs root"
        );
    }
}

/// A chroot without /proc or an interpreter in it is refused before anything starts,
/// naming what is missing and the chroot.
#[test]
fn chroot_needs_the_interpreter_and_proc_inside() {
    if !root("chroot_needs_the_interpreter_and_proc_inside") {
        return;
    }
    let s = stage("chroot-empty");
    let jail = s.dir.join("jail");
    std::fs::create_dir(&jail).unwrap();
    std::fs::copy(&s.app, jail.join("app.py")).unwrap();
    let run = || {
        Daemon::builder("/app.py")
            .exe(&s.exe)
            .cwd(&s.dir)
            .fastcgi()
            .args(&["--user", USER_A, "--chroot", jail.to_str().unwrap()])
            .run()
    };
    let (st, out) = run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "chroot {}: no /proc inside it (workers load wsgid's library through /proc/self/fd",
            jail.display()
        )),
        "{out}"
    );
    std::fs::create_dir_all(jail.join("proc/self/fd")).unwrap();
    let (st, out) = run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "no Python interpreter at /usr/bin/python3 inside the chroot {}",
            jail.display()
        )),
        "{out}"
    );
}

/// A worker in a real chroot: Debian's /usr and a proc mounted in a directory, in a mount
/// namespace of wsgid's own (`unshare`), so the mounts go with it. The application sees
/// only the chroot (no /etc/passwd), runs as its user, and --chdir is inside it.
#[test]
fn workers_run_inside_the_chroot() {
    if !root("workers_run_inside_the_chroot") {
        return;
    }
    let probe = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "mount",
            "-t",
            "tmpfs",
            "t",
            "/mnt",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("workers_run_inside_the_chroot: skipped: cannot mount in a new mount namespace");
        return;
    }
    let s = stage("chroot");
    let jail = s.dir.join("jail");
    for dir in ["usr", "proc", "app"] {
        std::fs::create_dir_all(jail.join(dir)).unwrap();
    }
    for (link, to) in [
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("bin", "usr/bin"),
    ] {
        std::os::unix::fs::symlink(to, jail.join(link)).unwrap();
    }
    std::fs::copy(&s.app, jail.join("app/app.py")).unwrap();
    chmod(&jail.join("app"), 0o755);
    let jail_arg = jail.to_str().unwrap();
    let d = Daemon::builder("/app/app.py")
        .exe(Path::new("/usr/bin/unshare"))
        .cwd(&s.dir)
        .args(&["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(
            "mount --bind /usr \"$1/usr\" && mount -o remount,ro,bind \"$1/usr\" \
             && mount -t proc proc \"$1/proc\" && shift && exec \"$@\"",
        )
        .args(&["sh", jail_arg, s.exe.to_str().unwrap()])
        .args(&["--chroot", jail_arg, "--user", USER_A, "--chdir", "/app"])
        .fastcgi()
        .start();
    assert_dropped(&get(&d, "/status"), USER_A, &[]);
    assert_eq!(get(&d, "/cwd"), "/app");
    assert!(
        get(&d, "/read?/etc/passwd").starts_with("FileNotFoundError"),
        "the worker sees the host's /etc"
    );
    assert_eq!(get(&d, "/read?/app/app.py")[..5].to_string(), "read:");
    assert!(
        d.log().contains(&format!("chroot {jail_arg}")),
        "{}",
        d.log()
    );
}

/// Workers load wsgid's library through /proc/self/fd, as their user: the kernel checks
/// the file's mode then, not its directories', so a library in a directory the user
/// cannot enter loads, and one whose mode the user may not read is refused at start.
#[test]
fn the_library_needs_its_mode_not_its_directory() {
    if !root("the_library_needs_its_mode_not_its_directory") {
        return;
    }
    let s = stage("library");
    let bin = s.dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let exe = bin.join("wsgid");
    std::fs::rename(&s.exe, &exe).unwrap();
    std::fs::rename(s.dir.join("libwsgid.so"), bin.join("libwsgid.so")).unwrap();
    chmod(&bin, 0o700);
    let d = Daemon::builder(&s.app)
        .exe(&exe)
        .cwd(&s.dir)
        .fastcgi()
        .args(&["--user", USER_A])
        .start();
    assert_dropped(&get(&d, "/status"), USER_A, &[]);
    drop(d);

    chmod(&bin.join("libwsgid.so"), 0o700);
    let (st, out) = Daemon::builder(&s.app)
        .exe(&exe)
        .cwd(&s.dir)
        .fastcgi()
        .args(&["--user", USER_A])
        .run();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "wsgid's worker library {} is not readable by user {USER_A} (uid {}) (mode 0700)",
            bin.join("libwsgid.so").display(),
            uid(USER_A)
        )),
        "{out}"
    );
}

/// A master that is not root but holds CAP_SETUID, CAP_SETGID and CAP_KILL (as systemd's
/// AmbientCapabilities= gives) may switch users; its workers keep none of its capabilities.
/// With CAP_SETPCAP as well it empties their bounding set; without, the bounding set stays
/// (it grants nothing: no_new_privs keeps exec from using it). Without CAP_KILL it could
/// not signal its workers, and is refused.
#[test]
fn a_master_with_capabilities_but_not_root_switches_users() {
    if !root("a_master_with_capabilities_but_not_root_switches_users") {
        return;
    }
    let s = stage("capabilities");
    let as_a = |caps: &str| {
        let args = [
            format!("--reuid={USER_A}"),
            format!("--regid={}", primary_gid(USER_A)),
            "--clear-groups".to_string(),
            format!("--inh-caps={caps}"),
            format!("--ambient-caps={caps}"),
            "--".to_string(),
            s.exe.to_str().unwrap().to_string(),
            "--user".to_string(),
            USER_B.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Daemon::builder(&s.app)
            .exe(Path::new("/usr/bin/setpriv"))
            .cwd(&s.dir)
            .args(&args)
            .fastcgi()
    };
    let (st, out) = as_a("+setuid,+setgid").run();
    assert_eq!(st.code(), Some(2), "{out}");
    assert!(
        out.contains("but not signal its workers then (that takes CAP_KILL too)"),
        "{out}"
    );
    for (caps, bounding_empty) in [
        ("+setuid,+setgid,+kill", false),
        ("+setuid,+setgid,+kill,+setpcap", true),
    ] {
        let mut d = as_a(caps).start();
        let status = get(&d, "/status");
        let (u, g) = (uid(USER_B), primary_gid(USER_B));
        assert_eq!(
            field(&status, "Uid"),
            format!("{u}\t{u}\t{u}\t{u}"),
            "{status}"
        );
        assert_eq!(
            field(&status, "Gid"),
            format!("{g}\t{g}\t{g}\t{g}"),
            "{status}"
        );
        assert_eq!(field(&status, "Groups"), "", "{status}");
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(
                field(&status, set),
                "0000000000000000",
                "{caps} {set}: {status}"
            );
        }
        assert_eq!(
            field(&status, "CapBnd") == "0000000000000000",
            bounding_empty,
            "{caps}: {status}"
        );
        assert_eq!(field(&status, "NoNewPrivs"), "1", "{status}");
        // It stops its workers, of another user, as it should.
        let st = d.stop_with(nix::sys::signal::Signal::SIGTERM, 5);
        assert!(st.success(), "{caps}: {st}; log:\n{}", d.log());
    }
}

/// A reload checks the new configuration as a start does: an application now without a
/// user under a root master is refused and the running workers keep serving as their
/// user; another user takes effect with the new workers.
#[test]
fn a_reload_checks_the_new_user() {
    if !root("a_reload_checks_the_new_user") {
        return;
    }
    let s = stage("reload-user");
    let addr = format!("127.0.0.1:{}", common::free_port());
    let conf = s.dir.join("wsgid.toml");
    let write = |user: &str| {
        let user = if user.is_empty() {
            String::new()
        } else {
            format!("user = \"{user}\"\n")
        };
        std::fs::write(
            &conf,
            format!("{user}app = \"{}\"\nfastcgi = \"{addr}\"\n", s.app),
        )
        .unwrap();
    };
    write(USER_A);
    let d = Daemon::builder("")
        .exe(&s.exe)
        .cwd(&s.dir)
        .without_allow_root()
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    let status = || fcgi::request(&addr, &Request::get("/status")).cgi().text();
    assert_dropped(&status(), USER_A, &[]);
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(d.pid() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    write("");
    hup();
    d.wait_log("refusing to run the application as root", 20);
    d.wait_log("reload failed", 20);
    assert_dropped(&status(), USER_A, &[]);
    write(USER_B);
    hup();
    d.wait_log("new workers ready", 20);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !field(&status(), "Uid").starts_with(&uid(USER_B).to_string()) {
        assert!(std::time::Instant::now() < end, "{}", d.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_dropped(&status(), USER_B, &[]);
}
