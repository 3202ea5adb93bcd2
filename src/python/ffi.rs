//! CPython's C API that PyO3 does not declare, declared here and nowhere else, each behind
//! a safe function.

use pyo3::prelude::*;
use pyo3::types::PyDict;

extern "C" {
    /// An empty dict with room for `minused` entries.
    fn _PyDict_NewPresized(minused: pyo3::ffi::Py_ssize_t) -> *mut pyo3::ffi::PyObject;
}

/// An empty dict with room for `entries` entries before its table grows.
pub fn dict_with_room(py: Python<'_>, entries: usize) -> PyResult<Bound<'_, PyDict>> {
    let n = pyo3::ffi::Py_ssize_t::try_from(entries)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("dict size"))?;
    // SAFETY: attached to the interpreter (`py`). `_PyDict_NewPresized` returns a new
    // reference to an empty dict, or NULL with an exception set, which
    // `from_owned_ptr_or_err` turns into an error.
    let d = unsafe { Bound::from_owned_ptr_or_err(py, _PyDict_NewPresized(n))? };
    Ok(d.cast_into::<PyDict>()?)
}
