//! The project's runner, as a library so its parts are tested: dataset readers and
//! generators, the validation and benchmark drivers, and the dependency check.

#[cfg(feature = "profile")]
#[allow(unsafe_code)]
pub mod alloc_count;
pub mod baseline;
pub mod dataset;
pub mod frontier;
pub mod hdf5;
pub mod paired;
pub mod synthetic;
pub mod sysinfo;
pub mod texmex;
pub mod tidy;

/// The repository README's example, compiled and run as a doctest so it stays true. It lives
/// here, in the crate that is never published, so a packaged crate reads only its own files.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct RepositoryReadmeDoctests;
