//! `wsgi.errors` (PEP 3333): a text stream whose text goes to wsgid's log, one record per
//! flush, tagged with the request it came from.
//!
//! A traceback is written in pieces: `traceback.print_exc(file=...)` calls write() once per
//! frame and never flushes, while `logging.StreamHandler` writes a whole record (traceback
//! included) with one write() and then calls flush(). Cutting records at newlines broke
//! either into one log record per line, each tagged again. So written text is kept until
//! flush() and logged as one record; PEP 3333 lets a server buffer this stream ("portable
//! applications ... must call flush() if they need to ensure that output has in fact been
//! written"). What is still pending when the request ends is logged then (and, for text
//! written after that through a stream the app kept, when the stream is released). The buffer is bounded: past [`MAX_RECORD`] bytes the
//! complete lines it holds are logged as one record (the whole buffer when it holds a
//! single line that long), so a stream that is never flushed cannot grow a worker.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::worker::exchange::Exchange;

/// The most text one record holds, and so the most the stream buffers.
pub const MAX_RECORD: usize = 64 * 1024;

#[pyclass(module = "wsgid")]
pub struct Errors {
    /// The request the records are tagged with.
    ex: Arc<Exchange>,
    pending: Pending,
}

impl Errors {
    pub fn new(ex: Arc<Exchange>) -> Errors {
        Errors {
            ex,
            pending: Pending::default(),
        }
    }
}

/// Logs one record.
fn emit(ex: &Exchange, record: &str) {
    tracing::warn!(target: "wsgi.errors", request = %ex.ident(), "{record}");
}

#[pymethods]
impl Errors {
    fn write(&mut self, s: &str) -> usize {
        let ex = &self.ex;
        self.pending.push(s, |record| emit(ex, record));
        s.chars().count()
    }

    fn writelines(&mut self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            let line = line?;
            self.write(line.extract::<&str>()?);
        }
        Ok(())
    }

    /// Logs what was written since the last record (also called as the request ends).
    pub fn flush(&mut self) {
        let ex = &self.ex;
        self.pending.flush(|record| emit(ex, record));
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The text written since the last record: never more than [`MAX_RECORD`] bytes.
#[derive(Default)]
struct Pending {
    text: String,
}

impl Pending {
    /// Adds `s`, handing `emit` a record each time the buffer fills.
    fn push(&mut self, mut s: &str, mut emit: impl FnMut(&str)) {
        loop {
            let room = MAX_RECORD - self.text.len();
            if s.len() <= room {
                self.text.push_str(s);
                return;
            }
            let cut = floor_char_boundary(s, room);
            self.text.push_str(&s[..cut]);
            s = &s[cut..];
            self.spill(&mut emit);
        }
    }

    /// Logs what is pending as one record.
    fn flush(&mut self, mut emit: impl FnMut(&str)) {
        record(&self.text, &mut emit);
        self.text.clear();
    }

    /// The buffer is full: logs its complete lines, or all of it when it holds none.
    fn spill(&mut self, emit: &mut impl FnMut(&str)) {
        match self.text.rfind('\n') {
            Some(end) if end + 1 < self.text.len() => {
                record(&self.text[..=end], emit);
                self.text.drain(..=end);
            }
            _ => self.flush(emit),
        }
    }
}

/// Emits `text` without its line ending (the log adds one), unless nothing is left.
fn record(text: &str, emit: &mut impl FnMut(&str)) {
    let text = text.trim_end_matches(['\n', '\r']);
    if !text.is_empty() {
        emit(text);
    }
}

/// The largest index at most `at` that starts a character of `s` (`at` < `s.len()`).
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records `writes` give, with a flush after them when `flush`.
    fn records(writes: &[&str], flush: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut p = Pending::default();
        for w in writes {
            p.push(w, |r| out.push(r.to_owned()));
            assert!(p.text.len() <= MAX_RECORD);
        }
        if flush {
            p.flush(|r| out.push(r.to_owned()));
            assert!(p.text.is_empty());
        }
        out
    }

    #[test]
    fn a_traceback_in_pieces_is_one_record_at_the_flush() {
        let tb = [
            "Traceback (most recent call last):\n",
            "  File \"app.py\", line 3, in f\n    g()\n",
            "ValueError: boom\n",
        ];
        assert!(records(&tb, false).is_empty(), "nothing before the flush");
        assert_eq!(
            records(&tb, true),
            ["Traceback (most recent call last):\n  File \"app.py\", line 3, in f\n    g()\nValueError: boom"]
        );
        // logging.StreamHandler: the whole record in one write, then flush().
        assert_eq!(
            records(&["msg\nTraceback\n  x\nE\n"], true),
            ["msg\nTraceback\n  x\nE"]
        );
        // Nothing, or only line endings: no record.
        assert!(records(&[], true).is_empty());
        assert!(records(&["\n", "\r\n"], true).is_empty());
        assert_eq!(records(&["a", "b"], true), ["ab"]);
    }

    #[test]
    fn a_full_buffer_logs_its_complete_lines() {
        let line = format!("{}\n", "x".repeat(999));
        let many: Vec<&str> = std::iter::repeat_n(line.as_str(), 200).collect();
        let got = records(&many, true);
        assert!(got.len() >= 3, "{} records", got.len());
        let mut rejoined = got.join("\n");
        rejoined.push('\n');
        assert_eq!(rejoined, line.repeat(200));
        for r in &got[..got.len() - 1] {
            assert!(r.len() <= MAX_RECORD && r.len() > MAX_RECORD - 1000);
            // Cut at line ends only.
            assert!(r.split('\n').all(|l| l.len() == 999), "{}", r.len());
        }
    }

    #[test]
    fn one_line_longer_than_a_record_is_cut_at_characters() {
        // "é" is two bytes and the line starts with one more: the bound falls inside an
        // "é", which must not be split.
        let long = format!("a{}", "é".repeat(MAX_RECORD));
        let got = records(&[long.as_str(), "\n"], true);
        assert_eq!(got.concat(), long);
        assert!(got.iter().all(|r| r.len() <= MAX_RECORD));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].len(), MAX_RECORD - 1);
        // A write that fills the buffer exactly waits for the next one.
        let exact = "y".repeat(MAX_RECORD);
        assert!(records(&[exact.as_str()], false).is_empty());
        assert_eq!(records(&[exact.as_str(), "z"], false), [exact]);
    }
}
