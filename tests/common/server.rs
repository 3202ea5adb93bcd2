//! A front-end server process the tests start and own: spawned from a rendered config in
//! a scratch directory, waited for until every port it serves accepts connections, and on
//! drop stopped (SIGTERM, then SIGKILL) with its config and logs printed when the test
//! panicked, and its directory removed when it passed.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running front end.
pub struct Server {
    /// "Apache", "lighttpd": named in messages.
    name: &'static str,
    child: Option<Child>,
    /// Its scratch directory: config, logs, pid file.
    pub dir: PathBuf,
    /// The rendered config, printed on a failure.
    config: PathBuf,
    /// Logs printed on a failure: (what, file).
    logs: Vec<(&'static str, PathBuf)>,
}

impl Server {
    /// Runs `cmd` (in the foreground; its standard output and error go to `stderr.log`
    /// in `dir`) and waits up to 10 s until every port in `ports` accepts connections.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        dir: PathBuf,
        config: PathBuf,
        mut logs: Vec<(&'static str, PathBuf)>,
        ports: &[u16],
    ) -> Server {
        let stderr = dir.join("stderr.log");
        let out = std::fs::File::create(&stderr).expect("create stderr log");
        let err = out.try_clone().expect("clone stderr log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name} ({e}): {cmd:?}"));
        logs.push(("standard error", stderr));
        let mut s = Server {
            name,
            child: Some(child),
            dir,
            config,
            logs,
        };
        let end = Instant::now() + Duration::from_secs(10);
        let mut waiting = ports.to_vec();
        loop {
            if let Some(st) = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                s.child = None;
                panic!("{name} exited early ({st})");
            }
            waiting.retain(|p| TcpStream::connect(("127.0.0.1", *p)).is_err());
            if waiting.is_empty() {
                return s;
            }
            if Instant::now() > end {
                panic!("{name} not listening on {waiting:?} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log called `what` so far ("" if it is not there).
    pub fn log(&self, what: &str) -> String {
        self.logs
            .iter()
            .find(|(w, _)| *w == what)
            .and_then(|(_, p)| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The server's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            super::stop_child(c);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut text = format!(
                "---- {} config ----\n{}\n",
                self.name,
                std::fs::read_to_string(&self.config).unwrap_or_default()
            );
            for (what, path) in &self.logs {
                text.push_str(&format!(
                    "---- {} {what} ----\n{}\n",
                    self.name,
                    std::fs::read_to_string(path).unwrap_or_default()
                ));
            }
            eprintln!("{text}");
        }
        self.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
