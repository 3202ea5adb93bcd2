//! `wsgi.file_wrapper` (PEP 3333 "Optional Platform-Specific File Handling"). Iterating it
//! reads `blksize` bytes at a time through the file's own read(); when the app returns one
//! for a real file (one with fileno() and tell()), the request runner instead reads the
//! descriptor directly from the current position, detached from the interpreter, so a large
//! file streams without being loaded whole and without holding the GIL. With `offload`
//! configured, such a file may instead go to the front end as one header
//! (`crate::offload`), which then sends it itself.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(module = "wsgid")]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = 8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        let empty = match data.cast::<PyBytes>() {
            Ok(b) => b.as_bytes().is_empty(),
            Err(_) => data.len()? == 0,
        };
        Ok(if empty { None } else { Some(data) })
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}
