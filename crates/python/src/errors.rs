//! The exceptions the package raises, and omendex errors as them.

use omendex::{StoreError, VectorId};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyIsADirectoryError, PyKeyError, PyNotADirectoryError, PyOSError,
    PyPermissionError, PyValueError,
};
use pyo3::prelude::*;

create_exception!(
    _omendex,
    CorruptIndexError,
    PyOSError,
    "An index file that fails its checks: truncated, corrupt, foreign, or another format version."
);

create_exception!(
    _omendex,
    SaveConflictError,
    PyOSError,
    "Another save of the same folder stands in the way (one committed since this save began, or a write into a generation no save is writing); nothing stored was changed."
);

/// The Python exception for an omendex error: `KeyError` for an unknown id, `OSError` for I/O,
/// `CorruptIndexError` (an `OSError`) for a file that fails its checks, `ValueError` for every
/// bad argument.
pub(crate) fn to_py(e: omendex::Error) -> PyErr {
    // What went wrong in a segment is classified by its cause.
    let mut cause = &e;
    while let omendex::Error::Segment { source, .. } = cause {
        cause = source;
    }
    let text = e.to_string();
    match cause {
        omendex::Error::UnknownId(id) => PyKeyError::new_err(id.0),
        omendex::Error::Store(StoreError::Io { kind, .. }) => match kind {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(text),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(text),
            std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(text),
            std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(text),
            std::io::ErrorKind::NotADirectory => PyNotADirectoryError::new_err(text),
            _ => PyOSError::new_err(text),
        },
        omendex::Error::Store(StoreError::Conflict(_)) => SaveConflictError::new_err(text),
        omendex::Error::Store(_) => CorruptIndexError::new_err(text),
        _ => PyValueError::new_err(text),
    }
}

/// An id as Python's int64, or `ValueError` for one above `i64::MAX` (which a file saved by
/// another program could hold).
pub(crate) fn id_to_i64(id: VectorId) -> PyResult<i64> {
    i64::try_from(id.0).map_err(|_| PyValueError::new_err(format!("id {} does not fit in int64", id.0)))
}
