//! The supervision loop: starts each application's workers (`pool`), waits until each is
//! ready, keeps them serving (replacing the dead with backoff and the recycled gracefully),
//! and on SIGTERM or SIGINT forwards the signal, waits for the workers to finish their
//! requests, kills stragglers, and returns the exit status.
//!
//! The loop is single-threaded and sleeps in poll(2) on the signals' self-pipe and the
//! workers' report pipes, or until the next timer (a respawn, a recycling check, a
//! deadline); every wake-up re-reads signals, report pipes and exited children.

use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal as Sig;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::control::{self, Control, Request};
use super::listeners::Listener;
use super::notify::{self, notify};
use super::pool::{Exited, Pool};
use super::signals::{Signal, Signals};
use super::spawn::Image;
use super::status::Status;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::config::resolve::Config;
use crate::config::{Settings, EXIT_APP_LOAD_FAILED};
use std::os::fd::AsFd;

/// Added to the graceful and interrupt timeouts before stragglers are killed: the workers
/// apply the timeout themselves, the master only backs them up.
pub const STOP_MARGIN: Duration = Duration::from_secs(1);

/// How long the master waits for killed workers to be reaped before it exits anyway.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// Reads the configuration anew, for a reload.
pub type Loader = Box<dyn Fn() -> Result<Config, String>>;

pub struct Supervisor {
    /// Every application's pool, and on a reload their successors and the pools they
    /// replace while those finish.
    pub(super) pools: Vec<Pool>,
    pub(super) next_generation: u64,
    pub(super) load: Loader,
    signals: Signals,
    phase: Phase,
    control: Option<Control>,
    started: Instant,
    /// A reload the service manager was told of (`RELOADING=1`) and not yet of its end.
    pending_reload: Option<PendingReload>,
}

/// A reload under way, as the service manager will be told of its end.
#[derive(Debug, Default)]
struct PendingReload {
    /// What went wrong, if anything: the first problem.
    problem: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for every worker to be ready for the first time.
    Starting,
    Running,
    /// Workers were signalled; once none is left the master exits with `exit`.
    Stopping {
        deadline: Instant,
        killed: bool,
        exit: u8,
    },
}

impl Supervisor {
    /// A supervisor of one pool per application, each with its image and its opened
    /// listeners.
    pub fn new(
        apps: Vec<(Settings, Image, Vec<Listener>)>,
        signals: Signals,
        load: Loader,
        control: Option<Control>,
    ) -> Supervisor {
        let pools: Vec<Pool> = apps
            .into_iter()
            .zip(0..)
            .map(|((settings, image, listeners), generation)| {
                let listeners = listeners.into_iter().map(Rc::new).collect();
                Pool::new(settings, image, listeners, generation, None)
            })
            .collect();
        Supervisor {
            next_generation: pools.len() as u64,
            pools,
            load,
            signals,
            phase: Phase::Starting,
            control,
            started: Instant::now(),
            pending_reload: None,
        }
    }

    /// Runs until the workers are stopped; returns the exit status. The listeners (and their
    /// socket files) are closed when the supervisor is dropped.
    pub fn run(mut self) -> u8 {
        let starting: Vec<String> = self
            .pools
            .iter()
            .map(|p| {
                format!(
                    "{} for {}",
                    plural(p.settings().processes, "worker"),
                    p.settings().app
                )
            })
            .collect();
        notify(&notify::status_line(&format!(
            "starting {}",
            starting.join(", ")
        )));
        for p in &mut self.pools {
            let s = p.settings();
            let name = if s.name.is_empty() {
                String::new()
            } else {
                format!(" (app {})", s.name)
            };
            tracing::info!(
                "starting {} for {}{name}",
                plural(s.processes, "worker"),
                s.app
            );
        }
        if !self.pools.iter_mut().all(Pool::start_all) {
            self.begin_stop(Sig::SIGTERM, self.interrupt_timeout(), EXIT_FAILURE);
        }
        loop {
            for signal in self.signals.take() {
                self.on_signal(signal);
            }
            self.serve_control();
            let stopping = self.is_stopping();
            for p in &mut self.pools {
                let phase = p.phase(stopping);
                p.read_reports(phase);
            }
            self.reap();
            if let Some(exit) = self.advance() {
                return exit;
            }
            self.wait();
        }
    }

    /// The longest of the pools' graceful timeouts.
    fn graceful_timeout(&self) -> Duration {
        let ms = self
            .pools
            .iter()
            .map(|p| p.settings().timeouts.graceful_ms)
            .max();
        Duration::from_millis(ms.unwrap_or(0))
    }

    /// The longest of the pools' interrupt timeouts.
    fn interrupt_timeout(&self) -> Duration {
        let ms = self
            .pools
            .iter()
            .map(|p| p.settings().timeouts.interrupt_ms)
            .max();
        Duration::from_millis(ms.unwrap_or(0))
    }

    fn live(&self) -> usize {
        self.pools.iter().map(Pool::live).sum()
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Term => {
                if matches!(self.phase, Phase::Stopping { .. }) {
                    tracing::info!("SIGTERM: already stopping");
                    return;
                }
                let t = self.graceful_timeout();
                tracing::info!(
                    "SIGTERM: stopping {} (graceful timeout {:.3} s)",
                    plural(self.live(), "worker"),
                    t.as_secs_f64()
                );
                self.begin_stop(Sig::SIGTERM, t, EXIT_OK);
            }
            Signal::Int | Signal::Quit => {
                let t = self.interrupt_timeout();
                tracing::info!(
                    "{}: stopping {} (interrupt timeout {:.3} s)",
                    if signal == Signal::Int {
                        "SIGINT"
                    } else {
                        "SIGQUIT"
                    },
                    plural(self.live(), "worker"),
                    t.as_secs_f64()
                );
                let exit = match self.phase {
                    Phase::Stopping { exit, .. } => exit,
                    _ => EXIT_OK,
                };
                self.begin_stop(Sig::SIGINT, t, exit);
            }
            Signal::Hup => match self.phase {
                Phase::Running => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    match self.announced_reload(None) {
                        Ok(done) => tracing::info!("{done}"),
                        Err(e) => {
                            for line in e.lines() {
                                tracing::error!("reload: {line}");
                            }
                            tracing::error!("reload failed; the running workers keep serving");
                        }
                    }
                }
                Phase::Starting => tracing::warn!("SIGHUP while starting: ignored"),
                Phase::Stopping { .. } => tracing::info!("SIGHUP while stopping: ignored"),
            },
        }
    }

    /// Signals every worker and stops respawning. Called again while stopping, it signals
    /// again and only ever brings the deadline closer.
    fn begin_stop(&mut self, sig: Sig, timeout: Duration, exit: u8) {
        let deadline = Instant::now() + timeout + STOP_MARGIN;
        match &mut self.phase {
            Phase::Stopping {
                deadline: d,
                killed,
                ..
            } => {
                if *killed {
                    return;
                }
                *d = (*d).min(deadline);
            }
            phase => {
                *phase = Phase::Stopping {
                    deadline,
                    killed: false,
                    exit,
                };
                let why = if exit == EXIT_OK {
                    format!(
                        "stopping: {} finishing their requests",
                        plural(self.pools.iter().map(Pool::live).sum(), "worker")
                    )
                } else {
                    "stopping: the workers could not start".to_string()
                };
                notify(&notify::stopping(&why));
            }
        }
        for p in &mut self.pools {
            p.signal_all(sig);
        }
    }

    /// Collects every exited child.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("waitpid: {e}");
                    return;
                }
                Ok(status) => status,
            };
            let Some(pid) = status.pid() else { continue };
            if !matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                continue;
            }
            let stopping = self.is_stopping();
            let mut outcome = (Exited::NotOurs, 0);
            for (at, p) in self.pools.iter_mut().enumerate() {
                let phase = p.phase(stopping);
                outcome = (p.on_exit(pid, status, phase), at);
                if outcome.0 != Exited::NotOurs {
                    break;
                }
            }
            match outcome {
                (Exited::NotOurs, _) => {
                    tracing::debug!("reaped unknown child {pid}: {}", describe(status, false))
                }
                (Exited::Handled, _) => {}
                (Exited::Fatal, _) if matches!(self.phase, Phase::Starting) => {
                    self.begin_stop(Sig::SIGTERM, self.interrupt_timeout(), EXIT_FAILURE)
                }
                (Exited::Fatal, at) => {
                    // A pool started by a reload (or for an app it added) cannot serve:
                    // whatever it was to replace goes on serving.
                    let p = &mut self.pools[at];
                    tracing::error!(
                        "{}: the new workers cannot start; {}",
                        app_name(p.name()),
                        if p.replaces.is_some() {
                            "the running ones keep serving"
                        } else {
                            "it is not served"
                        }
                    );
                    p.replaces = None;
                    p.retire(Instant::now());
                    let problem = format!("{}: the new workers cannot start", app_name(p.name()));
                    if let Some(r) = &mut self.pending_reload {
                        r.problem.get_or_insert(problem);
                    }
                }
            }
        }
    }

    /// Answers what clients asked on the control socket.
    fn serve_control(&mut self) {
        let Some(control) = &mut self.control else {
            return;
        };
        for (stream, request) in control.take_requests(Instant::now()) {
            let reply = match request {
                Ok(Request::Status) => serde_json::to_string(&self.status()),
                Ok(Request::Reload(only)) => {
                    let result = match self.phase {
                        Phase::Running => {
                            let what = only.as_deref().map_or("every app".into(), app_name);
                            tracing::info!("control socket: reloading {what}");
                            self.announced_reload(only.as_deref())
                        }
                        Phase::Starting => Err("wsgid is still starting".into()),
                        Phase::Stopping { .. } => Err("wsgid is stopping".into()),
                    };
                    match &result {
                        Ok(done) => tracing::info!("{done}"),
                        Err(e) => e.lines().for_each(|l| tracing::error!("reload: {l}")),
                    }
                    serde_json::to_string(&match result {
                        Ok(message) => serde_json::json!({ "ok": true, "message": message }),
                        Err(error) => serde_json::json!({ "ok": false, "error": error }),
                    })
                }
                Err(e) => serde_json::to_string(&serde_json::json!({ "ok": false, "error": e })),
            };
            match reply {
                Ok(text) => control::answer(stream, &text),
                Err(e) => tracing::error!("control socket: cannot write the answer: {e}"),
            }
        }
    }

    /// What `wsgid status` shows.
    fn status(&self) -> Status {
        Status {
            pid: nix::unistd::getpid().as_raw(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            apps: self.pools.iter().map(Pool::status).collect(),
        }
    }

    fn is_stopping(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. })
    }

    /// Moves the phase on and lets the pools start due replacements; returns the exit
    /// status once done.
    fn advance(&mut self) -> Option<u8> {
        let now = Instant::now();
        match self.phase {
            Phase::Starting if self.pools.iter().all(Pool::all_ready_once) => {
                self.phase = Phase::Running;
                let status = self.serving();
                tracing::info!("wsgid ready: {status}");
                notify(&notify::ready(&status));
            }
            Phase::Stopping {
                deadline,
                killed,
                exit,
            } => {
                if self.live() == 0 {
                    tracing::info!("stopped");
                    return Some(exit);
                }
                if now >= deadline {
                    if killed {
                        tracing::error!(
                            "{} did not exit after SIGKILL; exiting anyway",
                            plural(self.live(), "worker")
                        );
                        return Some(exit);
                    }
                    tracing::warn!(
                        "{} did not stop in time; killing",
                        plural(self.live(), "worker")
                    );
                    for p in &mut self.pools {
                        p.signal_all(Sig::SIGKILL);
                    }
                    self.phase = Phase::Stopping {
                        deadline: now + KILL_WAIT,
                        killed: true,
                        exit,
                    };
                }
                return None;
            }
            _ => {}
        }
        self.take_over(now);
        self.touch_reloads(now);
        for p in &mut self.pools {
            p.advance(now);
        }
        self.end_reload();
        None
    }

    /// "2 workers, listening on fastcgi 127.0.0.1:9000": what serves, leaving out pools
    /// that retire.
    fn serving(&self) -> String {
        let serving = || self.pools.iter().filter(|p| !p.is_retiring());
        let mut listening: Vec<String> = Vec::new();
        for l in serving().flat_map(|p| p.listeners().iter().map(|l| l.describe())) {
            if !listening.contains(&l) {
                listening.push(l);
            }
        }
        let workers = serving().map(|p| p.settings().processes).sum();
        format!(
            "{}, listening on {}",
            plural(workers, "worker"),
            listening.join(", ")
        )
    }

    /// [`Supervisor::reload`], with the service manager told (`RELOADING=1`); it is told
    /// of the end (`READY=1`) by [`Supervisor::end_reload`].
    fn announced_reload(&mut self, only: Option<&str>) -> Result<String, String> {
        let what = only.map_or("the configuration".into(), app_name);
        notify(&notify::reloading(&format!("reloading {what}")));
        let result = self.reload(only);
        self.pending_reload = Some(PendingReload {
            problem: result
                .as_ref()
                .err()
                .map(|e| e.lines().next().unwrap_or_default().to_string()),
        });
        result
    }

    /// Once no pool a reload started is still starting (each serves, or could not start
    /// and retired), tells the service manager the reload is over: `READY=1`.
    fn end_reload(&mut self) {
        if self.pending_reload.is_none()
            || self
                .pools
                .iter()
                .any(|p| !p.is_retiring() && !p.all_ready_once())
        {
            return;
        }
        let Some(reload) = self.pending_reload.take() else {
            return;
        };
        let serving = self.serving();
        let status = match reload.problem {
            None => format!("reloaded; {serving}"),
            Some(problem) => {
                format!("reload failed ({problem}); the running workers keep serving; {serving}")
            }
        };
        notify(&notify::ready(&status));
    }

    /// Pools started by a reload whose workers are all ready take over from the pools they
    /// replace, which retire; retired pools whose workers are all gone are dropped (and
    /// the sockets no other pool holds closed).
    fn take_over(&mut self, now: Instant) {
        for i in 0..self.pools.len() {
            let Some(old) = self.pools[i].replaces else {
                continue;
            };
            if !self.pools[i].all_ready_once() {
                continue;
            }
            self.pools[i].replaces = None;
            let took = self.pools[i].started.elapsed();
            if let Some(p) = self.pools.iter_mut().find(|p| p.generation == old) {
                let n = p.live();
                p.retire(now);
                tracing::info!(
                    "{}: new workers ready {:.3} s after the reload; the {} they replace \
                     finish their requests",
                    app_name(self.pools[i].name()),
                    took.as_secs_f64(),
                    plural(n, "worker")
                );
            }
        }
        self.pools.retain(|p| {
            let gone = p.is_retiring() && p.live() == 0;
            if gone {
                tracing::debug!(
                    "{}: a retired pool's workers are all gone",
                    app_name(p.name())
                );
            }
            !gone
        });
    }

    /// Sleeps until a signal, a report, or the next timer.
    fn wait(&self) {
        let next = match self.phase {
            Phase::Stopping { deadline, .. } => Some(deadline),
            _ => self.pools.iter().filter_map(Pool::next_timer).min(),
        };
        let next = match (next, self.control.as_ref().and_then(Control::next_deadline)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = match next {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        if let Some(c) = &self.control {
            fds.extend(c.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        }
        for p in &self.pools {
            fds.extend(
                p.report_pipes()
                    .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)),
            );
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!("poll: {e}");
                // Do not spin if poll keeps failing.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// "exited with status 3 (the application failed to load)", "was killed by SIGSEGV"; for
/// a worker that had `loaded` its application, "exited with status 3 while serving" (the
/// application ended the process itself, with os._exit() or a crash).
pub fn describe(status: WaitStatus, loaded: bool) -> String {
    let serving = if loaded { " while serving" } else { "" };
    match status {
        WaitStatus::Exited(_, 0) => "exited cleanly (status 0)".into(),
        WaitStatus::Exited(_, code) if code == i32::from(EXIT_APP_LOAD_FAILED) && !loaded => {
            format!("exited with status {code} (the application failed to load)")
        }
        WaitStatus::Exited(_, code) => format!("exited with status {code}{serving}"),
        WaitStatus::Signaled(_, sig, core) => format!(
            "was killed by {}{}{serving}",
            sig.as_str(),
            if core { " (core dumped)" } else { "" }
        ),
        other => format!("changed state: {other:?}"),
    }
}

/// "app blog", or "the app" for the one unnamed app.
pub fn app_name(name: &str) -> String {
    if name.is_empty() {
        "the app".into()
    } else {
        format!("app {name}")
    }
}

/// "1 worker", "2 workers".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::Pid;

    #[test]
    fn exit_statuses_are_described() {
        let pid = Pid::from_raw(1);
        let exited = |code| WaitStatus::Exited(pid, code);
        assert_eq!(describe(exited(0), false), "exited cleanly (status 0)");
        assert_eq!(describe(exited(0), true), "exited cleanly (status 0)");
        assert_eq!(
            describe(exited(3), false),
            "exited with status 3 (the application failed to load)"
        );
        assert_eq!(describe(exited(1), false), "exited with status 1");
        assert_eq!(
            describe(WaitStatus::Signaled(pid, Sig::SIGSEGV, true), false),
            "was killed by SIGSEGV (core dumped)"
        );
        assert_eq!(
            describe(WaitStatus::Signaled(pid, Sig::SIGKILL, false), false),
            "was killed by SIGKILL"
        );
    }

    /// Once the application has loaded, status 3 (which the app can give itself, with
    /// os._exit(3)) is no failure to load.
    #[test]
    fn exits_after_loading_say_so() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            describe(WaitStatus::Exited(pid, 3), true),
            "exited with status 3 while serving"
        );
        assert_eq!(
            describe(WaitStatus::Exited(pid, 1), true),
            "exited with status 1 while serving"
        );
        assert_eq!(
            describe(WaitStatus::Signaled(pid, Sig::SIGSEGV, true), true),
            "was killed by SIGSEGV (core dumped) while serving"
        );
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "worker"), "1 worker");
        assert_eq!(plural(4, "worker"), "4 workers");
    }
}
