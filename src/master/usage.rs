//! What a worker process uses, read from `/proc/PID/stat` (proc(5)): resident memory and
//! CPU time (user and system, its own threads; not its children's). For `max_rss` and
//! `max_cpu_time`, and for `wsgid status`.

use std::time::Duration;

use nix::unistd::Pid;

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub rss_bytes: u64,
    pub cpu: Duration,
}

/// The clock ticks per second and the page size, read once.
#[derive(Debug, Clone, Copy)]
pub struct Units {
    ticks_per_second: u64,
    page_size: u64,
}

impl Units {
    pub fn of_this_system() -> Units {
        // SAFETY: sysconf reads a configuration value; it has no memory effects.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Units {
            ticks_per_second: u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
            page_size: u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096),
        }
    }
}

/// Reads `pid`'s usage; None if the process is gone or the file is not as proc(5) says.
pub fn read(pid: Pid, units: Units) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(&stat, units)
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so fields are counted after its last `)`.
fn parse(stat: &str, units: Units) -> Option<Usage> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): utime is field 14, stime 15, rss 24.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = field(14)?.checked_add(field(15)?)?;
    let cpu_ms = ticks.checked_mul(1000)? / units.ticks_per_second;
    Some(Usage {
        rss_bytes: field(24)?.checked_mul(units.page_size)?,
        cpu: Duration::from_millis(cpu_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: Units = Units {
        ticks_per_second: 100,
        page_size: 4096,
    };

    #[test]
    fn parses_proc_stat() {
        // A real line, with a command name holding a space and a parenthesis.
        let line = "4242 (wsgid: wor) ker) S 1 4242 4242 0 -1 4194560 1521 0 0 0 250 75 0 0 \
                    20 0 9 0 1234567 123456789 2560 18446744073709551615 1 1 0 0 0 0 0 \
                    16781312 17410 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse(line, UNITS),
            Some(Usage {
                rss_bytes: 2560 * 4096,
                cpu: Duration::from_millis(3250),
            })
        );
        assert_eq!(parse("4242 (x) S 1 2", UNITS), None);
        assert_eq!(parse("no parenthesis", UNITS), None);
    }

    #[test]
    fn reads_this_process() {
        let u = read(nix::unistd::getpid(), Units::of_this_system()).unwrap();
        assert!(u.rss_bytes > 0, "{u:?}");
    }
}
