//! latin-1 conversions between bytes and `str` (PEP 3333 "Unicode Issues": environ values
//! and response status/headers are latin-1 "native strings"), done directly on CPython's
//! compact one-byte string representation instead of going through UTF-8.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// A `str` whose code points are the bytes of `b` (a latin-1 decode).
pub fn to_str<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: PyO3 FFI with the GIL held (`py`). PyUnicode_FromKindAndData copies `len`
    // one-byte code points from a valid pointer into a new string; every byte is a valid
    // latin-1 code point. The new reference is owned by the returned Bound, and a NULL
    // result (memory error) becomes the pending Python exception.
    unsafe {
        let ptr = ffi::PyUnicode_FromKindAndData(
            ffi::PyUnicode_1BYTE_KIND as std::ffi::c_int,
            b.as_ptr().cast(),
            b.len() as ffi::Py_ssize_t,
        );
        Bound::from_owned_ptr_or_err(py, ptr).map(|o| o.cast_into_unchecked())
    }
}

/// The latin-1 bytes of `s`, borrowed from the string itself; None when `s` has a code
/// point above U+00FF (it cannot be encoded as latin-1).
pub fn as_bytes<'a>(s: &'a Bound<'_, PyString>) -> Option<&'a [u8]> {
    let op = s.as_ptr();
    // SAFETY: PyO3 FFI with the GIL held (a Bound exists). `op` is a str (the Bound's type
    // guarantees it). Once ready (always on 3.12+; PyUnicode_READY makes a legacy 3.11
    // string ready, or fails) its KIND and DATA describe its buffer of GET_LENGTH code
    // points; for the one-byte kind those are exactly the latin-1 bytes. The slice
    // borrows from `s`, which keeps the immutable string alive for 'a.
    unsafe {
        if ffi::PyUnicode_READY(op) != 0 {
            ffi::PyErr_Clear();
            return None;
        }
        if ffi::PyUnicode_KIND(op) != ffi::PyUnicode_1BYTE_KIND {
            return None;
        }
        let len = ffi::PyUnicode_GET_LENGTH(op) as usize;
        let data = ffi::PyUnicode_1BYTE_DATA(op);
        Some(std::slice::from_raw_parts(data, len))
    }
}
