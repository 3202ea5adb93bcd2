//! `wsgi.errors` (PEP 3333): a text stream whose lines go to wsgid's log, tagged with the
//! request they came from.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::worker::exchange::Exchange;

#[pyclass(module = "wsgid")]
pub struct Errors {
    /// The request the lines are tagged with.
    ex: Arc<Exchange>,
    pending: String,
}

impl Errors {
    pub fn new(ex: Arc<Exchange>) -> Errors {
        Errors {
            ex,
            pending: String::new(),
        }
    }

    fn emit(&self, line: &str) {
        tracing::warn!(target: "wsgi.errors", request = %self.ex.ident(), "{line}");
    }
}

#[pymethods]
impl Errors {
    fn write(&mut self, s: &str) -> usize {
        self.pending.push_str(s);
        while let Some(i) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=i).collect();
            self.emit(line.trim_end_matches('\n'));
        }
        s.chars().count()
    }

    fn writelines(&mut self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            let line = line?;
            self.write(line.extract::<&str>()?);
        }
        Ok(())
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        self.flush();
    }
}
