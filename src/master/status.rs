//! What `wsgid status` shows: per application and worker, its pid and user, its state,
//! requests taken and in flight (as the worker last posted them on the board, at most a
//! second old), connections, resident memory and CPU time, age, and the restarts of its
//! position with the last one's reason. The master answers with this as JSON on its
//! control socket; `wsgid status` prints it as a table (or the JSON, with `--json`).

use serde::{Deserialize, Serialize};

use super::recycle::mib;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The master's pid.
    pub pid: i32,
    pub uptime_s: f64,
    pub apps: Vec<AppStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    pub name: String,
    pub app: String,
    /// "starting", "serving", or "retiring" (replaced by a reload, or removed).
    pub state: String,
    pub listen: Vec<String>,
    pub workers: Vec<WorkerStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its position in the app's pool.
    pub index: usize,
    pub pid: i32,
    pub uid: Option<u32>,
    /// "starting", "serving", or "draining" (replaced, finishing its requests).
    pub state: String,
    pub requests: u64,
    pub in_flight: u64,
    pub connections: Option<u32>,
    pub rss_bytes: Option<u64>,
    pub cpu_s: Option<f64>,
    pub age_s: f64,
    /// Workers that have held this position before this one.
    pub restarts: u64,
    pub last_restart: Option<String>,
}

/// The real uid of `pid`, from `/proc/PID/status`.
pub fn uid_of(pid: i32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// "2h03m", "4m10s", "12.5s".
fn age(secs: f64) -> String {
    let s = secs as u64;
    if s >= 86_400 {
        format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// The table `wsgid status` prints.
pub fn table(status: &Status) -> String {
    let mut rows = vec![[
        "APP",
        "WORKER",
        "PID",
        "UID",
        "STATE",
        "REQUESTS",
        "IN-FLIGHT",
        "CONNS",
        "RSS",
        "CPU",
        "AGE",
        "RESTARTS",
        "LAST RESTART",
    ]
    .map(String::from)];
    for a in &status.apps {
        let name = if a.name.is_empty() { "-" } else { &a.name };
        for w in &a.workers {
            let dash = || "-".to_string();
            rows.push([
                name.to_string(),
                w.index.to_string(),
                w.pid.to_string(),
                w.uid.map_or_else(dash, |u| u.to_string()),
                w.state.clone(),
                w.requests.to_string(),
                w.in_flight.to_string(),
                w.connections.map_or_else(dash, |c| c.to_string()),
                w.rss_bytes.map_or_else(dash, mib),
                w.cpu_s.map_or_else(dash, |c| format!("{c:.1}s")),
                age(w.age_s),
                w.restarts.to_string(),
                w.last_restart.clone().unwrap_or_else(dash),
            ]);
        }
    }
    let mut widths = [0usize; 13];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "wsgid master pid {}, up {}\n",
        status.pid,
        age(status.uptime_s)
    );
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up() {
        let s = Status {
            pid: 10,
            uptime_s: 3725.0,
            apps: vec![AppStatus {
                name: "blog".into(),
                app: "blog:app".into(),
                state: "serving".into(),
                listen: vec!["fastcgi 127.0.0.1:9000".into()],
                workers: vec![WorkerStatus {
                    index: 0,
                    pid: 1234,
                    uid: Some(1001),
                    state: "serving".into(),
                    requests: 10,
                    in_flight: 1,
                    connections: Some(2),
                    rss_bytes: Some(45 << 20),
                    cpu_s: Some(1.25),
                    age_s: 75.0,
                    restarts: 1,
                    last_restart: Some("max_requests reached".into()),
                }],
            }],
        };
        let t = table(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "wsgid master pid 10, up 1h02m");
        assert!(
            lines[1].starts_with("APP   WORKER  PID   UID   STATE"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("blog  0       1234  1001  serving  10"),
            "{t}"
        );
        assert!(
            lines[2].contains("45.0 MiB  1.2s  1m15s  1         max_requests reached"),
            "{t}"
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
    }
}
