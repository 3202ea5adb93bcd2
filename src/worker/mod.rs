//! A worker process (the interpreter, with wsgid's library loaded as an extension
//! module): sets up Python, loads the app, adopts the listeners the master passed down,
//! then runs the Python threads (`pool`), which take turns at the reactor (`event_loop`,
//! coordinated by `lead`), until a signal tells it to stop.

mod conn;
mod event_loop;
pub mod exchange;
pub mod framing;
mod lead;
pub mod mount_watch;
mod notify;
mod pool;
pub mod report;
mod spare;
pub mod stream;
mod title;

use std::sync::Arc;

use mio::{Poll, Waker};
use tracing::{error, info, warn};

use crate::board::Board;
use crate::config::resolve::DEFAULT_LOG_LEVEL;
use crate::config::values::format_listen_addr;
use crate::config::{Protocol, WorkerSpec, EXIT_APP_LOAD_FAILED, WORKER_SPEC_ENV};
use crate::environ::Local;
use crate::inherit;
use crate::master::EXIT_FAILURE;
use crate::python;
use event_loop::{EventLoop, Exit, ListenerSlot};
use exchange::Job;
use lead::Core;
use notify::Notifier;
use report::Report;
use spare::SpareBuffers;

/// What the requests of one listener share: its address, for the environ's SERVER_NAME and
/// SERVER_PORT fallbacks, and its mount watch.
pub struct Listening {
    pub local: Local,
    pub mount_watch: mount_watch::MountWatch,
}

/// What the reactor and its connections share.
pub struct Shared {
    /// Requests decoded and not yet handed to a Python thread.
    pub ready: Vec<Job>,
    pub notifier: Arc<Notifier>,
    /// Requests dispatched whose jobs are not done (`exchange::InFlight`).
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    pub max_in_flight: usize,
    pub input_buffer: usize,
    pub output_buffer: usize,
    pub stopping: bool,
    /// Output buffers of finished requests, for the next ones.
    pub spare_buffers: SpareBuffers,
    /// To the master.
    pub report: Arc<Report>,
    /// Requests dispatched so far.
    pub taken: u64,
    /// Ask for a replacement once `taken` reaches this (`WorkerSpec::max_requests`).
    pub max_requests: Option<u64>,
    /// `request_timeout`.
    pub request_timeout: Option<std::time::Duration>,
    /// When the reactor next looks for requests past `request_timeout` (None: no request
    /// is timed).
    pub request_check: Option<std::time::Instant>,
}

impl Shared {
    /// Counts a request dispatched to the application; at `max_requests`, asks the master
    /// for a replacement (the worker keeps serving until it is stopped).
    pub fn count_taken(&mut self) {
        self.taken += 1;
        if self.max_requests == Some(self.taken) {
            tracing::info!(
                "{} requests taken (max_requests): asking for a replacement",
                self.taken
            );
            self.report.ask_replacement(report::Replace::MaxRequests);
        }
    }
}

/// A worker's life, from its spec (JSON, as the master wrote it) to its exit status; called
/// by the extension module on the interpreter's main thread, detached.
pub fn main(raw: &str) -> u8 {
    let spec = match serde_json::from_str::<WorkerSpec>(raw) {
        Ok(spec) => spec,
        Err(e) => {
            crate::logging::init(DEFAULT_LOG_LEVEL, "worker".into());
            error!("invalid {WORKER_SPEC_ENV}: {e}");
            return EXIT_APP_LOAD_FAILED;
        }
    };
    let (tag, title) = match spec.settings.name.as_str() {
        "" => (
            format!("worker-{}", spec.index),
            format!("wsgid: worker {}", spec.index),
        ),
        name => (
            format!("{name}-{}", spec.index),
            format!("wsgid: {name} worker {}", spec.index),
        ),
    };
    crate::logging::init(&spec.settings.log_level, tag);
    title::set(&title);
    run(spec)
}

fn run(spec: WorkerSpec) -> u8 {
    let report = Arc::new(Report::from_spec(&spec));
    let s = &spec.settings;
    if let Some(dir) = &s.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            error!("cannot chdir to {}: {e}", dir.display());
            return EXIT_APP_LOAD_FAILED;
        }
    }
    raise_nofile_limit();
    // The main thread's name in top, ps -L and profiles (the Python threads are python-N);
    // it is the guardian that leads the reactor when every Python thread is busy.
    let _ = nix::sys::prctl::set_name(c"wsgid-guard");
    let signals = match event_loop::stop_signals() {
        Ok(sig) => sig,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return EXIT_FAILURE;
        }
    };
    if let Err(msg) = python::prepare(s) {
        error!("{msg}");
        return EXIT_APP_LOAD_FAILED;
    }
    let app = match python::App::load(s) {
        Ok(app) => Arc::new(app),
        Err(msg) => {
            error!("cannot load the application {:?}:\n{msg}", s.app);
            return EXIT_APP_LOAD_FAILED;
        }
    };
    if spec.check_only {
        info!("application {:?} loaded: OK", s.app);
        python::finish();
        return 0;
    }
    // From here on, an exit is not a failure to load (the application may end the process
    // itself while serving, with os._exit()).
    report.loaded();
    match serve(&spec, app, signals, report) {
        Ok(exit) => {
            if exit == Exit::Drained {
                python::finish();
            }
            info!("worker {} stopped", spec.index);
            0
        }
        Err(e) => {
            error!("worker {} failed: {e}", spec.index);
            EXIT_FAILURE
        }
    }
}

fn serve(
    spec: &WorkerSpec,
    app: Arc<python::App>,
    signals: signal_hook_mio::v1_0::Signals,
    report: Arc<Report>,
) -> std::io::Result<Exit> {
    let s = &spec.settings;
    // Advisory: without it connections go to whichever worker accepts first, and each
    // worker warns of a mount mismatch on its own.
    let board = spec.board.and_then(|place| {
        inherit::take(place.fd, "connection board")
            .and_then(|fd| Board::adopt(fd, place.slots, spec.listeners.len()))
            .map(|b| (Arc::new(b), place.slot))
            .map_err(|e| warn!("no connection board, connections are not spread: {e}"))
            .ok()
    });
    let mut listeners = Vec::with_capacity(spec.listeners.len());
    for (i, l) in spec.listeners.iter().enumerate() {
        let name = format!(
            "{} {}",
            match l.protocol {
                Protocol::Fastcgi => "fastcgi",
                Protocol::Scgi => "scgi",
            },
            format_listen_addr(&l.addr)
        );
        let mount_watch = mount_watch::MountWatch::new(
            name,
            s.mount.clone(),
            s.mount_origin.clone(),
            board.as_ref().map(|(b, _)| (b.clone(), i)),
        );
        listeners.push(ListenerSlot {
            listener: stream::Listener::from_fd(inherit::take(l.fd, "listener")?)?,
            protocol: l.protocol,
            listening: Arc::new(Listening {
                local: Local::from_listen(&l.addr),
                mount_watch,
            }),
        });
    }
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), mio::Token(usize::MAX - 1))?;
    let notifier = Arc::new(Notifier::new(waker, lead::wait_io));
    let shared = Shared {
        ready: Vec::with_capacity(64),
        notifier: notifier.clone(),
        in_flight: Arc::default(),
        max_in_flight: s.max_in_flight,
        input_buffer: s.input_buffer,
        output_buffer: s.output_buffer,
        stopping: false,
        spare_buffers: SpareBuffers::default(),
        report: report.clone(),
        taken: 0,
        max_requests: spec.max_requests,
        request_timeout: s.timeouts.request_ms.map(std::time::Duration::from_millis),
        request_check: None,
    };
    let el = EventLoop::new(poll, listeners, shared, s, signals, board)?;
    let core = Core::new(el, notifier);
    let threads = pool::start(s.threads, &core, app)?;
    // Logged first, so that the master's lines that follow READY come after it.
    info!(worker = spec.index, threads = s.threads, "worker ready");
    report.ready();
    let exit = lead::guardian(&core);
    if exit == Exit::Drained {
        for t in threads {
            let _ = t.join();
        }
    }
    Ok(exit)
}

/// Many idle keep-alive connections need many descriptors: raise the soft limit to the
/// hard one.
fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
