//! Log output for both processes. Master and workers share stderr, so every line carries
//! its process after the timestamp: `master[PID]` or `worker-N[PID]`.

use std::fmt;
use std::io::IsTerminal;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::EnvFilter;

use crate::config::resolve::DEFAULT_LOG_LEVEL;

/// Logs to stderr as `role`, filtered by `filter` (already validated by the master; an
/// invalid one falls back to the default).
pub fn init(filter: &str, role: String) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_LEVEL));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(Stamp {
            role,
            pid: std::process::id(),
        })
        .try_init();
}

/// The timestamp, followed by which process wrote the line.
struct Stamp {
    role: String,
    pid: u32,
}

impl FormatTime for Stamp {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        SystemTime.format_time(w)?;
        write!(w, " {}[{}]", self.role, self.pid)
    }
}
