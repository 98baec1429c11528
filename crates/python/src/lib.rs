//! `omendex._omendex`: the compiled core of the Python package (its Python face is
//! `python/omendex/__init__.py`, which checks and converts arguments and documents the API).
//!
//! An `Index` holds an `omendex::Index` behind a read-write lock: searches share it, an add or
//! a delete takes it alone, and every build and search runs with the GIL released, so Python
//! threads search in parallel and never see an index half-changed (a long add lets it go
//! between chunks, while signal handlers run). No lock is held while Python code runs on the
//! thread holding it, and every pool is this process's (see `pools`). Arrays come in as
//! float32 / int64 C-contiguous numpy arrays (the Python layer converts anything else once)
//! and are read in place.
#![deny(unsafe_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use omendex::{
    BuildError, Metric, Params, Quantization, QuantizationStatus, Query, SearchError, StoreError, VectorId, VectorIndex,
};
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyIsADirectoryError, PyKeyError, PyNotADirectoryError, PyOSError,
    PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

mod many;
mod pools;
use pools::pool;

/// An index shape as the batch search sees it.
trait Shape: VectorIndex {
    /// Whether one query may run rayon code: a segmented index searches its segments in
    /// parallel, a single graph answers on the calling thread (no pool, no thread hop).
    const FANS_OUT: bool;
}

impl Shape for omendex::Index {
    const FANS_OUT: bool = false;
}

impl Shape for omendex::SegmentedIndex {
    const FANS_OUT: bool = true;
}

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
fn to_py(e: omendex::Error) -> PyErr {
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

/// Runs `f` (which watches `stop`) on a thread of its own while this one, holding the GIL
/// only for a moment every 50 ms, checks for Ctrl-C and other signals; on one, raises `stop`,
/// waits for `f` to end (within one insertion) and returns the signal's exception.
///
/// A signal handler may fork. The child has this thread alone: `f` goes on in the parent only,
/// so the child's call raises `RuntimeError` at once instead of waiting for a thread it does
/// not have (which `std::thread::scope` would do, forever).
/// `tick` runs beside each check (the GIL held); an error from it ends the call as a
/// signal's exception does.
fn until_signal<T: Send>(
    py: Python<'_>,
    on_signal: impl FnOnce(),
    mut tick: impl FnMut() -> PyResult<()>,
    f: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    let ended = (Mutex::new(false), parking_lot::Condvar::new());
    let out: Mutex<Option<T>> = Mutex::new(None);
    let job = || {
        let res = f();
        *out.lock() = Some(res);
        *ended.0.lock() = true;
        ended.1.notify_all();
    };
    let worker = Worker::spawn(job)?;
    let wait = std::time::Duration::from_millis(50);
    let mut signalled = None;
    // `is_finished` also sees a worker that panicked (and so never set the flag).
    while !worker.is_finished() {
        let done = py.detach(|| {
            let mut done = ended.0.lock();
            if !*done {
                ended.1.wait_for(&mut done, wait);
            }
            *done
        });
        // Done: the result is stored, and the thread only has its exit left (joined below).
        if done || worker.is_finished() {
            break;
        }
        let signal = py.check_signals().and_then(|()| tick());
        if worker.forked_away() {
            return Err(PyRuntimeError::new_err(
                "this process was forked (by a signal handler) while the call ran: the call goes on in the \
                 parent alone, and has no result in this child",
            ));
        }
        if let Err(e) = signal {
            on_signal();
            signalled = Some(e);
            break;
        }
    }
    py.detach(|| worker.join());
    match signalled {
        Some(e) => Err(e),
        None => Ok(out.into_inner().expect("the worker ended without a panic, so it stored its result")),
    }
}

/// A thread running a closure that borrows from the caller's stack, as `std::thread::scope`'s
/// do, but one a forked child (in which the thread does not exist) may leave without joining.
/// In the process that spawned it, it is joined before the borrow ends: by `join`, or by
/// `Drop` on every other path (an early return, an unwinding panic).
struct Worker<'a> {
    handle: Option<std::thread::JoinHandle<()>>,
    pid: u32,
    _borrows: std::marker::PhantomData<&'a ()>,
}

impl<'a> Worker<'a> {
    // The binding's one unsafe block (see ARCHITECTURE.md's inventory).
    #[allow(unsafe_code)]
    fn spawn(job: impl FnOnce() + Send + 'a) -> PyResult<Self> {
        let job: Box<dyn FnOnce() + Send + 'a> = Box::new(job);
        // SAFETY: only the lifetime changes (same layout). The thread runs `job`, which borrows
        // for 'a; the returned `Worker` lives at most 'a and, in this process, joins the thread
        // before it is dropped (`join`, or `Drop` on every other path, unwinding included), so
        // the borrows outlive the thread's use of them. A `Worker` left unjoined is one in a
        // forked child, where the thread does not exist and so reads nothing.
        let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
        let handle = std::thread::Builder::new()
            .spawn(job)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start a thread: {e}")))?;
        Ok(Worker { handle: Some(handle), pid: std::process::id(), _borrows: std::marker::PhantomData })
    }

    fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(std::thread::JoinHandle::is_finished)
    }

    /// Whether this process is a child forked since the spawn (so the thread is not here).
    fn forked_away(&self) -> bool {
        std::process::id() != self.pid
    }

    /// Waits for the thread; its panic, if any, goes on here.
    fn join(mut self) {
        let handle = self.handle.take();
        if let Some(Err(panic)) = handle.map(std::thread::JoinHandle::join) {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        match self.handle.take() {
            // In a forked child the thread is not here to wait for; the handle is let go.
            Some(handle) if self.forked_away() => std::mem::forget(handle),
            // A panic of the thread while this one unwinds already is dropped with it.
            Some(handle) => drop(handle.join()),
            None => {}
        }
    }
}

/// Runs `f` with a stop flag that Ctrl-C (or any signal handler that raises) raises, beside a
/// signal watcher (see `until_signal`); on such a signal, returns its exception once `f` has
/// ended.
fn until_stopped<T: Send>(py: Python<'_>, f: impl FnOnce(&omendex::Stop) -> T + Send) -> PyResult<T> {
    let stop = omendex::Stop::new();
    until_signal(py, || stop.stop(), || Ok(()), || f(&stop))
}

/// Runs `f` on the index behind `lock`, taken for writing, on `pool`, with the index watching a
/// stop flag that Ctrl-C raises ([`until_stopped`]): a call that builds aside (rebuild,
/// add_segment, compact) then ends with the index as it was, and the signal's exception is
/// raised.
fn write_stoppable<I: VectorIndex, T: Send>(
    py: Python<'_>,
    lock: &RwLock<I>,
    pool: &rayon::ThreadPool,
    f: impl FnOnce(&mut I) -> T + Send,
) -> PyResult<T> {
    until_stopped(py, |stop| {
        let mut guard = lock.write();
        let index: &mut I = &mut guard;
        index.set_stop(Some(stop.clone()));
        let res = pool.install(|| f(index));
        index.set_stop(None);
        res
    })
}

/// Runs `f`, a call that may wait for a segmented folder's lock, on another thread (on `pool`
/// when given) while this one runs Python's signal handlers: one that returns lets the call go
/// on; one that raises (Ctrl-C's `KeyboardInterrupt`) ends a wait for the lock (the call
/// stops with nothing changed) and is raised.
fn folder_call<T: Send, E: Into<omendex::Error> + Send>(
    py: Python<'_>,
    pool: Option<Arc<rayon::ThreadPool>>,
    f: impl FnOnce() -> Result<T, E> + Send,
) -> PyResult<T> {
    let res = until_stopped(py, |stop| {
        let stop = stop.clone();
        let run = move || omendex::folder::with_interrupt_check(move || stop.is_stopped(), f);
        match &pool {
            Some(p) => p.install(run),
            None => run(),
        }
    })?;
    res.map_err(|e| to_py(e.into()))
}

/// The most values a batch search returns (`queries * k`): 2^28 ids and as many distances,
/// 3 GiB; a larger `k` is refused rather than allocated.
const MAX_ANSWERS: usize = 1 << 28;

/// An id as Python's int64, or `ValueError` for one above `i64::MAX` (which a file saved by
/// another program could hold).
fn id_to_i64(id: VectorId) -> PyResult<i64> {
    i64::try_from(id.0).map_err(|_| PyValueError::new_err(format!("id {} does not fit in int64", id.0)))
}

/// Which ids a search may return.
enum Allowed<'a> {
    All,
    /// `mask[id]`; ids past the mask's end are refused.
    Mask(&'a [bool]),
    Set(HashSet<u64>),
}

impl Allowed<'_> {
    fn allows(&self, id: VectorId) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Mask(m) => usize::try_from(id.0).ok().and_then(|i| m.get(i)).copied().unwrap_or(false),
            Allowed::Set(s) => s.contains(&id.0),
        }
    }
}

/// The parameters of a new index; `seed = None` keeps the default.
fn params(
    metric: &str,
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    seed: Option<u64>,
    quantization: &str,
) -> PyResult<Params> {
    let metric: Metric = metric.parse().map_err(|e: omendex::UnknownMetric| PyValueError::new_err(e.to_string()))?;
    let quantization: Quantization =
        quantization.parse().map_err(|e: omendex::UnknownQuantization| PyValueError::new_err(e.to_string()))?;
    let mut p =
        Params::new(metric).m(m).ef_construction(ef_construction).ef_search(ef_search).quantization(quantization);
    if let Some(seed) = seed {
        p = p.seed(seed);
    }
    p.validate().map_err(|e| to_py(e.into()))?;
    Ok(p)
}

/// Checks a whole batch before any of it is added (chunks are added one by one, so a bad row in
/// a late chunk must be found first): the width, the vector rule for every row, the ids (one per
/// row, none twice, none live) or, without ids, room for new ones within int64.
fn check_batch(index: &omendex::Index, rows: &[f32], n: usize, width: usize, ids: Option<&[VectorId]>) -> PyResult<()> {
    let dim = index.dim();
    check_width(dim, width)?;
    for (row, v) in rows.chunks_exact(dim.max(1)).enumerate() {
        omendex::check_vector(index.metric(), v, dim)
            .map_err(|source| to_py(BuildError::Vector { row, source }.into()))?;
    }
    match ids {
        Some(ids) => {
            if ids.len() != n {
                return Err(to_py(omendex::Error::IdCount { ids: ids.len(), vectors: n }));
            }
            let mut seen = HashSet::with_capacity(n);
            if let Some(&dup) = ids.iter().find(|&&id| !seen.insert(id) || index.contains(id)) {
                return Err(to_py(omendex::Error::DuplicateId(dup)));
            }
        }
        None => check_id_room(index.next_id(), n)?,
    }
    Ok(())
}

/// Refuses rows of `width` values for an index of dimension `dim`.
fn check_width(dim: usize, width: usize) -> PyResult<()> {
    if width == dim {
        return Ok(());
    }
    let source = omendex::VectorError::DimensionMismatch { expected: dim, got: width };
    Err(to_py(BuildError::Vector { row: 0, source }.into()))
}

/// Refuses `n` new ids from `next` on when the last would not fit Python's int64 (an id the
/// caller chose always does).
fn check_id_room(next: VectorId, n: usize) -> PyResult<()> {
    let next = next.0;
    if next.checked_add(n as u64).is_none_or(|end| end > i64::MAX as u64 + 1) {
        return Err(PyValueError::new_err(format!("{n} more ids from {next} would not fit in int64")));
    }
    Ok(())
}

/// The caller's ids of a batch, if it gave some.
fn given_ids(ids: &Option<PyReadonlyArray1<'_, i64>>) -> PyResult<Option<Vec<VectorId>>> {
    match ids {
        Some(ids) => Ok(Some(ids_of(ids.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?)?)),
        None => Ok(None),
    }
}

/// Deletes the vectors this call added before it stopped with `err`, and gives `err` back.
fn undo(index: &mut omendex::Index, added: &[VectorId], err: PyErr) -> PyErr {
    for &id in added {
        // Just added, so present: a delete cannot fail here.
        let _ = index.delete(id);
    }
    err
}

/// Ids from int64 values, refusing negative ones.
fn ids_of(values: &[i64]) -> PyResult<Vec<VectorId>> {
    values
        .iter()
        .map(|&v| u64::try_from(v).map(VectorId).map_err(|_| PyValueError::new_err(format!("id {v} is negative"))))
        .collect()
}

/// What a batch search asks besides the queries and the filter.
#[derive(Clone, Copy)]
struct Ask {
    k: usize,
    ef: Option<usize>,
    threads: usize,
}

/// The batch search of either index shape: every row of `queries` answered (in parallel on
/// `threads` threads), padded to `(n, k)` arrays.
fn search_any<'py, I: Shape>(
    py: Python<'py>,
    lock: &RwLock<I>,
    queries: PyReadonlyArray2<'py, f32>,
    ask: Ask,
    filter: Option<Bound<'py, PyAny>>,
) -> PyResult<Answers<'py>> {
    let q = queries.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
    let (n, width) = (queries.shape()[0], queries.shape()[1]);
    let Ask { k, ef, threads } = ask;
    if k == 0 {
        return Err(to_py(SearchError::ZeroK.into()));
    }
    if n.checked_mul(k).is_none_or(|answers| answers > MAX_ANSWERS) {
        return Err(PyValueError::new_err(format!(
            "{n} queries x k = {k} answers is more than one call returns ({MAX_ANSWERS}); ask for a smaller k"
        )));
    }
    let mask: Option<PyReadonlyArray1<'py, bool>> = filter.as_ref().and_then(|f| f.extract().ok());
    let id_set: Option<PyReadonlyArray1<'py, i64>> =
        match (&filter, &mask) {
            (Some(f), None) => Some(f.extract().map_err(|_| {
                PyValueError::new_err("a filter is a 1-D bool mask over ids or a 1-D int64 array of ids")
            })?),
            _ => None,
        };
    let allowed = match (&mask, &id_set) {
        (Some(m), _) => Allowed::Mask(m.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?),
        (None, Some(s)) => Allowed::Set(
            ids_of(s.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?)?
                .into_iter()
                .map(|id| id.0)
                .collect(),
        ),
        (None, None) => Allowed::All,
    };
    let filtered = !matches!(allowed, Allowed::All);
    pools::check(threads)?;
    let pool = if n > 1 || I::FANS_OUT { Some(pool(py, threads)?) } else { None };
    // `stop`, raised on Ctrl-C, ends the queries not yet begun.
    let work = |stop: &omendex::Stop| -> PyResult<Vec<Vec<omendex::Neighbor>>> {
        let guard = lock.read();
        let index: &I = &guard;
        if width != index.dim() {
            let source = omendex::VectorError::DimensionMismatch { expected: index.dim(), got: width };
            return Err(to_py(SearchError::Query(source).into()));
        }
        let filter = |id: VectorId| allowed.allows(id);
        let one = |row: &[f32]| {
            if stop.is_stopped() {
                return Err(BuildError::Stopped.into());
            }
            let mut query = Query::new(row, k);
            if let Some(ef) = ef {
                query = query.ef(ef);
            }
            if filtered {
                query = query.filter(&filter);
            }
            // An empty index answers nothing, once the query has passed every check.
            match index.query(&query) {
                Err(omendex::Error::EmptyIndex) => Ok(Vec::new()),
                res => res,
            }
        };
        let all = || -> Result<Vec<_>, omendex::Error> {
            if n <= 1 {
                q.chunks(width.max(1)).take(n).map(one).collect()
            } else {
                q.par_chunks(width.max(1)).take(n).map(one).collect()
            }
        };
        let res = match &pool {
            Some(p) => p.install(all),
            None => all(),
        };
        res.map_err(to_py)
    };
    // A batch that may run for a while runs beside a signal watcher, so Ctrl-C stops it within
    // one query per thread; a small one runs here, without a thread's start-up cost.
    let answers =
        if n >= WATCHED_QUERIES { until_stopped(py, work)? } else { py.detach(|| work(&omendex::Stop::new())) };
    let answers = answers?;
    let mut ids = Array2::<i64>::from_elem((n, k), -1);
    let mut dists = Array2::<f32>::from_elem((n, k), f32::INFINITY);
    for (r, hits) in answers.iter().enumerate() {
        for (c, h) in hits.iter().enumerate() {
            ids[[r, c]] = id_to_i64(h.id)?;
            dists[[r, c]] = h.dist;
        }
    }
    Ok((ids.into_pyarray(py), dists.into_pyarray(py)))
}

/// The smallest batch search run beside a signal watcher (see `search_any`).
const WATCHED_QUERIES: usize = 256;

/// What a batch search returns: ids (int64) and distances (float32), `(n, k)` each.
type Answers<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// An HNSW index (see `omendex.Index` for the documented Python API).
#[pyclass(frozen, module = "omendex._omendex")]
struct Index {
    inner: RwLock<omendex::Index>,
}

impl Index {
    /// `f` of the index, the lock taken with the GIL released (a long add holding the lock
    /// must not freeze every Python thread waiting for it).
    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&omendex::Index) -> T + Send) -> T {
        py.detach(|| f(&self.inner.read()))
    }

    /// The write guard, kept on this thread (it is not Send): the lock is waited for without
    /// the GIL, then taken with the GIL held, again if another thread took it in between.
    fn write_here(&self, py: Python<'_>) -> RwLockWriteGuard<'_, omendex::Index> {
        loop {
            if let Some(g) = self.inner.try_write() {
                return g;
            }
            py.detach(|| drop(self.inner.write()));
        }
    }
}

#[pymethods]
impl Index {
    #[new]
    #[pyo3(signature = (dim, metric, m, ef_construction, ef_search, seed, quantization))]
    fn new(
        dim: usize,
        metric: &str,
        m: usize,
        ef_construction: usize,
        ef_search: usize,
        seed: Option<u64>,
        quantization: &str,
    ) -> PyResult<Self> {
        let p = params(metric, m, ef_construction, ef_search, seed, quantization)?;
        let index = omendex::Index::new(dim, p).map_err(to_py)?;
        Ok(Index { inner: RwLock::new(index) })
    }

    /// Adds the rows of `vectors` (float32, C-contiguous, `(n, dim)`) under `ids` (int64, one
    /// per row) or under new ids; returns the ids (int64). `progress(done, n)` is called after
    /// each chunk, as signal handlers run (the index let go); if it raises, the add stops as on
    /// Ctrl-C.
    #[pyo3(signature = (vectors, ids, threads, progress=None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, i64>>,
        threads: usize,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rows = vectors.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let (n, width) = (vectors.shape()[0], vectors.shape()[1]);
        let given = given_ids(&ids)?;
        let mut workers = pool(py, threads)?;
        let mut guard = self.write_here(py);
        let index: &mut omendex::Index = &mut guard;
        py.detach(|| check_batch(index, rows, n, width, given.as_deref()))?;
        // Room for the whole batch at once, not chunk by chunk.
        py.detach(|| index.reserve(n));
        // Added in chunks, each sized to take about a quarter of a second, with signals checked
        // between them: Ctrl-C stops a long add within a second, and what it added is deleted
        // again (the index holds what it held; those ids are not handed out again). A signal
        // handler is Python code run on this thread that may use this index (`len`, a search, a
        // save of what was added so far): the lock is let go while it runs, so it, and any
        // other thread, sees the index between two chunks.
        let mut added: Vec<VectorId> = Vec::with_capacity(n);
        // The first chunk is small (two rows per thread) and each next one sized by the rate
        // measured so far: chunked by time, not rows, so an add of costly rows (high dimension,
        // a wide beam) stops as fast as a cheap one.
        let (mut at, mut chunk) = (0, 2 * workers.current_num_threads().max(1));
        while at < n {
            let end = (at + chunk).min(n);
            let part = &rows[at * width..end * width];
            let index: &mut omendex::Index = &mut guard;
            let started = std::time::Instant::now();
            let res: Result<Vec<VectorId>, omendex::Error> = py.detach(|| {
                workers.install(|| match &given {
                    Some(ids) => index.add_batch_with_ids(&ids[at..end], part).map(|()| ids[at..end].to_vec()),
                    None => index.add_batch(part).map(|r| (r.start.0..r.end.0).map(VectorId).collect()),
                })
            });
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            match res {
                Ok(ids) => added.extend(ids),
                Err(e) => return Err(undo(index, &added, to_py(e))),
            }
            drop(guard);
            let signal = py.check_signals().and_then(|()| match &progress {
                Some(report) => report.call1((end, n)).map(drop),
                None => Ok(()),
            });
            // A handler may have forked this process: its pool is looked up again.
            let again = pool(py, threads);
            guard = self.write_here(py);
            match (signal, again) {
                (Err(e), _) | (_, Err(e)) => return Err(undo(&mut guard, &added, e)),
                (Ok(()), Ok(p)) => workers = p,
            }
            chunk = (((end - at) as f64 / secs) * 0.25).clamp(1.0, 1_048_576.0) as usize;
            at = end;
        }
        drop(guard);
        let ids: Vec<i64> = added.iter().map(|id| id.0 as i64).collect();
        Ok(ids.into_pyarray(py))
    }

    /// The `k` nearest of each row of `queries` (float32, `(n, dim)`): ids (int64) and distances
    /// (float32), `(n, k)` each, short rows padded with -1 and +inf. `filter`: a boolean mask
    /// over ids (1-D bool), or the allowed ids (1-D int64), or None.
    #[pyo3(signature = (queries, k, ef, filter, threads))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, f32>,
        k: usize,
        ef: Option<usize>,
        filter: Option<Bound<'py, PyAny>>,
        threads: usize,
    ) -> PyResult<Answers<'py>> {
        search_any(py, &self.inner, queries, Ask { k, ef, threads }, filter)
    }

    /// Writes this index as segment `number` of save `generation` of `folder` (see
    /// `begin_segments`); returns what the manifest records of the file: (length, checksum).
    fn write_segment(&self, py: Python<'_>, folder: PathBuf, generation: u64, number: usize) -> PyResult<(u64, u64)> {
        let entry = folder_call(py, None, || self.inner.read().write_segment(&folder, generation, number))?;
        Ok((entry.len, entry.checksum))
    }

    /// Writes this index to `path` as a segment file outside any folder's save (a writer
    /// whose folder is remote storage); returns (length, checksum).
    fn write_segment_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<(u64, u64)> {
        let entry = py.detach(|| self.inner.read().write_segment_file(&path)).map_err(to_py)?;
        Ok((entry.len, entry.checksum))
    }

    /// The stored vector of `id` (normalised under cosine), or None.
    fn get<'py>(&self, py: Python<'py>, id: i64) -> Option<Bound<'py, PyArray1<f32>>> {
        let id = VectorId(u64::try_from(id).ok()?);
        let v = py.detach(|| self.inner.read().get(id).map(<[f32]>::to_vec))?;
        Some(v.into_pyarray(py))
    }

    /// The ids of the vectors in the index (not deleted), in node order.
    fn live_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let ids: PyResult<Vec<i64>> = py.detach(|| self.inner.read().live_ids().map(id_to_i64).collect());
        Ok(ids?.into_pyarray(py))
    }

    fn contains(&self, py: Python<'_>, id: i64) -> bool {
        u64::try_from(id).is_ok_and(|id| py.detach(|| self.inner.read().contains(VectorId(id))))
    }

    /// The stored vectors of `ids`, a row each; KeyError(id) for one not in the index.
    fn get_many<'py>(&self, py: Python<'py>, ids: PyReadonlyArray1<'py, i64>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        many::get_many(py, &self.inner, &ids)
    }

    /// Deletes `ids`, all or (on a KeyError) none; returns how many.
    fn delete_many(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, i64>) -> PyResult<usize> {
        many::delete_many(py, &self.inner, &ids)
    }

    fn delete(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        let id = u64::try_from(id).map_err(|_| PyKeyError::new_err(id))?;
        py.detach(|| self.inner.write().delete(VectorId(id))).map_err(to_py)
    }

    #[pyo3(signature = (threads))]
    fn compact(&self, py: Python<'_>, threads: usize) -> PyResult<usize> {
        let pool = pool(py, threads)?;
        write_stoppable(py, &self.inner, &pool, omendex::Index::compact)?.map_err(to_py)
    }

    #[pyo3(signature = (threads))]
    fn rebuild(&self, py: Python<'_>, threads: usize) -> PyResult<usize> {
        let pool = pool(py, threads)?;
        write_stoppable(py, &self.inner, &pool, omendex::Index::rebuild)?.map_err(to_py)
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.read().save(&path)).map_err(to_py)
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<Self> {
        // A load may train codes and measure their fit, in parallel.
        let pool = pool(py, 0)?;
        let index = py
            .detach(|| {
                pool.install(|| if mmap { omendex::Index::open_mmap(&path) } else { omendex::Index::load(&path) })
            })
            .map_err(to_py)?;
        Ok(Index { inner: RwLock::new(index) })
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::len)
    }

    #[getter]
    fn dim(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::dim)
    }

    #[getter]
    fn metric(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.metric().name())
    }

    #[getter]
    fn m(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().m)
    }

    #[getter]
    fn ef_construction(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().ef_construction)
    }

    #[getter]
    fn ef_search(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().ef_search)
    }

    #[setter]
    fn set_ef_search(&self, py: Python<'_>, ef: usize) -> PyResult<()> {
        py.detach(|| self.inner.write().set_ef_search(ef)).map_err(to_py)
    }

    #[getter]
    fn seed(&self, py: Python<'_>) -> u64 {
        self.read(py, |i| i.params().seed)
    }

    #[getter]
    fn quantization(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.params().quantization.name())
    }

    /// Whether searches walk on codes: {"status", "fit_recall", "fit_queries"}.
    #[getter]
    fn quantization_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_dict(py, self.read(py, omendex::Index::quantization))
    }

    #[getter]
    fn deleted(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::deleted)
    }

    #[getter]
    fn memory_usage(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::heap_bytes)
    }

    #[getter]
    fn is_mapped(&self, py: Python<'_>) -> bool {
        self.read(py, omendex::Index::is_mapped)
    }

    /// Raises `ValueError` naming the first structural rule the graph breaks.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        self.read(py, omendex::Index::check_invariants).map_err(|v| PyValueError::new_err(v.to_string()))
    }

    /// Per-layer measurements, top layer first: a list of dicts.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let stats = py.detach(|| self.inner.read().stats());
        stats
            .layers
            .iter()
            .map(|l| {
                let d = PyDict::new(py);
                d.set_item("layer", l.layer.0)?;
                d.set_item("nodes", l.n_nodes)?;
                d.set_item("links", l.n_links)?;
                d.set_item("unreachable", l.unreachable)?;
                d.set_item("without_links", l.without_links)?;
                d.set_item("reciprocal_share", l.reciprocal_share)?;
                d.set_item("out_degree", (l.out_degree.min, l.out_degree.mean, l.out_degree.max))?;
                d.set_item("in_degree", (l.in_degree.min, l.in_degree.mean, l.in_degree.max))?;
                Ok(d)
            })
            .collect()
    }
}

/// Parameters as the Python layer passes them: metric, m, ef_construction, ef_search, seed,
/// quantization.
type ParamArgs = (String, usize, usize, usize, Option<u64>, String);

/// A quantization status as Python sees it: {"status": "off" | "untrained" | "codes" |
/// "too_coarse", "fit_recall": float or None, "fit_queries": int or None}.
fn status_dict(py: Python<'_>, status: QuantizationStatus) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let (name, fit) = match status {
        QuantizationStatus::Off => ("off", None),
        QuantizationStatus::Untrained => ("untrained", None),
        QuantizationStatus::Codes(fit) => ("codes", Some(fit)),
        QuantizationStatus::TooCoarse(fit) => ("too_coarse", Some(fit)),
    };
    d.set_item("status", name)?;
    d.set_item("fit_recall", fit.map(|f| f.recall))?;
    d.set_item("fit_queries", fit.map(|f| f.queries))?;
    Ok(d)
}

/// Segments of HNSW graphs built in parallel and searched together (see
/// `omendex.SegmentedIndex`).
#[pyclass(frozen, module = "omendex._omendex")]
struct SegmentedIndex {
    inner: RwLock<omendex::SegmentedIndex>,
}

impl SegmentedIndex {
    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&omendex::SegmentedIndex) -> T + Send) -> T {
        py.detach(|| f(&self.inner.read()))
    }

    fn write<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut omendex::SegmentedIndex) -> T + Send) -> T {
        py.detach(|| f(&mut self.inner.write()))
    }
}

#[pymethods]
impl SegmentedIndex {
    /// Builds segments of `vectors` (float32, `(n, dim)`) named `ids` (int64, or 0..n): a
    /// fixed number of segments, or segments sealed at a size. `progress(done, n)` is called
    /// every 50 ms with the insertions begun, and once at the end.
    #[staticmethod]
    #[pyo3(signature = (vectors, ids, params, plan, threads, progress=None))]
    fn build<'py>(
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, i64>>,
        params: ParamArgs,
        plan: (Option<usize>, Option<usize>),
        threads: usize,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let p = params_of(params)?;
        let rows = vectors.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let (n, dim) = (vectors.shape()[0], vectors.shape()[1]);
        let ids = given_ids(&ids)?.unwrap_or_else(|| (0..n as u64).map(VectorId).collect());
        let plan = match plan {
            (Some(count), None) => omendex::SegmentPlan::Count(count),
            (None, Some(size)) => omendex::SegmentPlan::MaxSize(size),
            _ => return Err(PyValueError::new_err("give segments or max_segment_size, one of them")),
        };
        // Ctrl-C, or a progress callback that raises, stops the build within one insertion.
        let stop = omendex::Stop::new();
        let pool = pool(py, threads)?;
        let report = |done: usize| progress.as_ref().map_or(Ok(()), |p| p.call1((done, n)).map(drop));
        let built = until_signal(
            py,
            || stop.stop(),
            || report(stop.insertions().min(n)),
            || pool.install(|| omendex::SegmentedIndex::build_stoppable(dim, p, rows, &ids, plan, &stop)),
        )?;
        let built = built.map_err(to_py)?;
        report(n)?;
        Ok(SegmentedIndex { inner: RwLock::new(built) })
    }

    /// Adds `vectors` as a new segment under `ids` or new ids; returns the ids.
    #[pyo3(signature = (vectors, ids, threads))]
    fn add_segment<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, i64>>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rows = vectors.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let (n, width) = (vectors.shape()[0], vectors.shape()[1]);
        let given = given_ids(&ids)?;
        let pool = pool(py, threads)?;
        // Ctrl-C stops the build of the new segment; the index is then as it was.
        let added: PyResult<Vec<i64>> = write_stoppable(py, &self.inner, &pool, |index| {
            check_width(index.dim(), width)?;
            if given.is_none() {
                check_id_room(index.next_id(), n)?;
            }
            let res = match &given {
                Some(ids) => index.add_segment_with_ids(ids, rows).map(|_| ids.iter().map(|id| id.0 as i64).collect()),
                None => index.add_segment(rows).map(|r| (r.start.0..r.end.0).map(|id| id as i64).collect()),
            };
            res.map_err(to_py)
        })?;
        Ok(added?.into_pyarray(py))
    }

    /// As `Index.search`, over every segment, merged.
    #[pyo3(signature = (queries, k, ef, filter, threads))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, f32>,
        k: usize,
        ef: Option<usize>,
        filter: Option<Bound<'py, PyAny>>,
        threads: usize,
    ) -> PyResult<Answers<'py>> {
        search_any(py, &self.inner, queries, Ask { k, ef, threads }, filter)
    }

    fn get<'py>(&self, py: Python<'py>, id: i64) -> Option<Bound<'py, PyArray1<f32>>> {
        let id = VectorId(u64::try_from(id).ok()?);
        let v = self.read(py, |i| i.get(id).map(<[f32]>::to_vec))?;
        Some(v.into_pyarray(py))
    }

    fn contains(&self, py: Python<'_>, id: i64) -> bool {
        u64::try_from(id).is_ok_and(|id| self.read(py, |i| i.contains(VectorId(id))))
    }

    fn get_many<'py>(&self, py: Python<'py>, ids: PyReadonlyArray1<'py, i64>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        many::get_many(py, &self.inner, &ids)
    }

    fn delete_many(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, i64>) -> PyResult<usize> {
        many::delete_many(py, &self.inner, &ids)
    }

    /// The ids of the vectors in the index (not deleted), segment by segment.
    fn live_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let ids: PyResult<Vec<i64>> =
            self.read(py, |i| i.segments().iter().flat_map(omendex::Index::live_ids).map(id_to_i64).collect());
        Ok(ids?.into_pyarray(py))
    }

    fn delete(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        let id = u64::try_from(id).map_err(|_| PyKeyError::new_err(id))?;
        self.write(py, |i| i.delete(VectorId(id))).map_err(to_py)
    }

    #[pyo3(signature = (threads))]
    fn compact(&self, py: Python<'_>, threads: usize) -> PyResult<usize> {
        let pool = pool(py, threads)?;
        write_stoppable(py, &self.inner, &pool, omendex::SegmentedIndex::compact)?.map_err(to_py)
    }

    /// Every segment folded into one graph (a new index; this one is unchanged).
    #[pyo3(signature = (ef_construction, threads))]
    fn merged(&self, py: Python<'_>, ef_construction: usize, threads: usize) -> PyResult<Self> {
        let pool = pool(py, threads)?;
        // The read guard is kept (searches go on beside the merge); Ctrl-C stops the merge.
        let merged =
            until_stopped(py, |stop| pool.install(|| self.inner.read().merged_stoppable(ef_construction, stop)))?
                .map_err(to_py)?;
        Ok(SegmentedIndex { inner: RwLock::new(merged) })
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        folder_call(py, None, || self.inner.read().save(&path))
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<Self> {
        // A load may train codes and measure their fit, in parallel.
        let pool = pool(py, 0)?;
        let index = folder_call(py, Some(pool), || {
            if mmap { omendex::SegmentedIndex::open_mmap(&path) } else { omendex::SegmentedIndex::load(&path) }
        })?;
        Ok(SegmentedIndex { inner: RwLock::new(index) })
    }

    /// Opens segments `which` of the folder in place (a share of a larger index).
    #[staticmethod]
    fn open_mmap_part(py: Python<'_>, path: PathBuf, which: Vec<usize>) -> PyResult<Self> {
        let pool = pool(py, 0)?;
        let index = folder_call(py, Some(pool), || omendex::SegmentedIndex::open_mmap_part(&path, &which))?;
        Ok(SegmentedIndex { inner: RwLock::new(index) })
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::len)
    }

    #[getter]
    fn dim(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::dim)
    }

    #[getter]
    fn metric(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.params().metric.name())
    }

    #[getter]
    fn ef_search(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().ef_search)
    }

    #[setter]
    fn set_ef_search(&self, py: Python<'_>, ef: usize) -> PyResult<()> {
        self.write(py, |i| i.set_ef_search(ef)).map_err(to_py)
    }

    #[getter]
    fn deleted(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::deleted)
    }

    #[getter]
    fn segment_count(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.segments().len())
    }

    #[getter]
    fn quantization(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.params().quantization.name())
    }

    /// Each segment's `Index.quantization_status`, in segment order.
    #[getter]
    fn quantization_status<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let all: Vec<QuantizationStatus> =
            self.read(py, |i| i.segments().iter().map(omendex::Index::quantization).collect());
        all.into_iter().map(|s| status_dict(py, s)).collect()
    }

    #[getter]
    fn memory_usage(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::heap_bytes)
    }

    /// Raises `ValueError` naming the first segment and rule that break.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        self.read(py, omendex::SegmentedIndex::check_invariants)
            .map_err(|(s, v)| PyValueError::new_err(format!("{s}: {v}")))
    }
}

/// A save of a segmented folder whose segments several writers write (see
/// `omendex_store::SegmentsBuild`): its generation is reserved while this object lives; `commit`
/// or `abort` ends it (dropping it aborts).
#[pyclass(frozen, module = "omendex._omendex")]
struct FolderBuild {
    build: Mutex<Option<omendex::folder::SegmentsBuild>>,
    generation: u64,
}

#[pymethods]
impl FolderBuild {
    /// The generation the writers write under.
    #[getter]
    fn generation(&self) -> u64 {
        self.generation
    }

    /// Checks every segment file `entries` names ((length, checksum) of segments 0..) and
    /// writes the manifest (see `omendex_store::SegmentsBuild::commit`).
    #[pyo3(signature = (params, dim, entries, next_id))]
    fn commit(
        &self,
        py: Python<'_>,
        params: ParamArgs,
        dim: usize,
        entries: Vec<(u64, u64)>,
        next_id: Option<u64>,
    ) -> PyResult<()> {
        let (p, entries) = manifest_of(params, entries)?;
        folder_call(py, None, || match self.build.lock().as_mut() {
            Some(b) => b.commit(&p, dim, &entries, next_id.map(VectorId)),
            None => Err(StoreError::Conflict(format!("the save of generation {} has ended", self.generation))),
        })
    }

    /// Ends the save without a manifest, removing every file written under its generation.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        folder_call(py, None, || match self.build.lock().take() {
            Some(b) => b.abort(),
            None => Ok(()),
        })
    }
}

/// Begins a save of segments written by several writers into `folder` (see
/// `omendex_store::begin_segments`).
#[pyfunction]
fn begin_segments(py: Python<'_>, folder: PathBuf) -> PyResult<FolderBuild> {
    let build = folder_call(py, None, || omendex::folder::begin_segments(&folder))?;
    Ok(FolderBuild { generation: build.generation(), build: Mutex::new(Some(build)) })
}

/// The parameters from Python's tuple (metric, m, ef_construction, ef_search, seed,
/// quantization), checked.
fn params_of((metric, m, efc, efs, seed, quantization): ParamArgs) -> PyResult<Params> {
    params(&metric, m, efc, efs, seed, &quantization)
}

/// What a manifest is written from: the parameters and each segment's (length, checksum).
fn manifest_of(args: ParamArgs, entries: Vec<(u64, u64)>) -> PyResult<(Params, Vec<omendex::folder::SegmentEntry>)> {
    let entries = entries.into_iter().map(|(len, checksum)| omendex::folder::SegmentEntry { len, checksum }).collect();
    Ok((params_of(args)?, entries))
}

/// Checks segment file `path` as a commit checks each (every section and rule); returns its
/// (length, checksum). What a writer whose folder is remote storage checks before its upload.
#[pyfunction]
fn verify_segment_file(py: Python<'_>, path: PathBuf) -> PyResult<(u64, u64)> {
    let entry = py.detach(|| omendex::folder::verify_segment_file(&path)).map_err(|e| to_py(e.into()))?;
    Ok((entry.len, entry.checksum))
}

/// Writes into `folder` the manifest of save `generation` whose segment files, verified by
/// their writers, live in remote storage (see `omendex_store::write_manifest_for_remote`).
#[pyfunction]
#[pyo3(signature = (folder, generation, params, dim, entries, next_id))]
fn write_manifest_for_remote(
    py: Python<'_>,
    folder: PathBuf,
    generation: u64,
    params: ParamArgs,
    dim: usize,
    entries: Vec<(u64, u64)>,
    next_id: Option<u64>,
) -> PyResult<()> {
    let (p, entries) = manifest_of(params, entries)?;
    folder_call(py, None, || {
        omendex::folder::write_manifest_for_remote(&folder, &p, dim, generation, &entries, next_id.map(VectorId))
    })
}

/// The file name of segment `number` of save `generation` in a segmented index's folder.
#[pyfunction]
fn segment_file_name(generation: u64, number: usize) -> String {
    omendex::folder::segment_file_name(generation, number)
}

/// The file name of the marker of save `generation` while it is being written.
#[pyfunction]
fn build_marker_name(generation: u64) -> String {
    omendex::folder::build_marker_name(generation)
}

/// The generation a file of a segmented folder belongs to (a segment file, a build marker, or
/// a temporary file of either), or None.
#[pyfunction]
fn generation_named(name: &str) -> Option<u64> {
    omendex::folder::generation_named(name)
}

/// The (generation, number) a segment file's name stands for, or None for any other name.
#[pyfunction]
fn segment_of(name: &str) -> Option<(u64, usize)> {
    omendex::folder::segment_of(name)
}

/// The name of the file a temporary file `name` (`.<target>.<process>.<counter>.tmp`) was to
/// become, or None for any other name.
#[pyfunction]
fn temporary_target(name: &str) -> Option<String> {
    omendex::folder::temporary_target(name).map(str::to_owned)
}

/// Whether the file `name` in a segmented index's folder is garbage once the manifest of save
/// `generation` with `count` segments is in place (what a commit removes), keeping the files of
/// the generations in `keep` (saves still being written).
#[pyfunction]
fn is_garbage_after(name: &str, generation: u64, count: usize, keep: Vec<u64>) -> bool {
    omendex::folder::is_garbage_after(name, generation, count, &keep)
}

/// What the manifest of the segmented index in `folder` says: {"dim", "metric", "m",
/// "ef_construction", "ef_search", "seed", "quantization", "lens", "next_id", "generation"}.
#[pyfunction]
fn inspect_segments<'py>(py: Python<'py>, folder: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let info = folder_call(py, None, || omendex::inspect_segments(&folder))?;
    let d = PyDict::new(py);
    d.set_item("dim", info.dim)?;
    d.set_item("metric", info.params.metric.name())?;
    d.set_item("m", info.params.m)?;
    d.set_item("ef_construction", info.params.ef_construction)?;
    d.set_item("ef_search", info.params.ef_search)?;
    d.set_item("seed", info.params.seed)?;
    d.set_item("quantization", info.params.quantization.name())?;
    d.set_item("lens", info.lens)?;
    d.set_item("next_id", info.next_id.map(|id| id.0))?;
    d.set_item("generation", info.generation)?;
    Ok(d)
}

/// The `k` nearest of each row over several answers to the same queries (ids int64 and
/// distances float32, `(n, k_i)` each, -1 marking padding): by distance then id, each id once,
/// padded to `(n, k)` with -1 and +inf.
#[pyfunction]
fn merge_topk<'py>(
    py: Python<'py>,
    ids: Vec<PyReadonlyArray2<'py, i64>>,
    distances: Vec<PyReadonlyArray2<'py, f32>>,
    k: usize,
) -> PyResult<Answers<'py>> {
    if k == 0 {
        return Err(to_py(SearchError::ZeroK.into()));
    }
    if ids.len() != distances.len() {
        return Err(PyValueError::new_err(format!("{} id arrays and {} distance arrays", ids.len(), distances.len())));
    }
    let n = ids.first().map_or(0, |a| a.shape()[0]);
    if n.checked_mul(k).is_none_or(|answers| answers > MAX_ANSWERS) {
        return Err(PyValueError::new_err(format!("{n} rows x k = {k} is more than one call returns")));
    }
    let mut parts = Vec::with_capacity(ids.len());
    for (i, (a, d)) in ids.iter().zip(&distances).enumerate() {
        if a.shape() != d.shape() || a.shape()[0] != n {
            return Err(PyValueError::new_err(format!(
                "answer {i}: ids of shape {:?} and distances of shape {:?}, answer 0 has {n} rows",
                a.shape(),
                d.shape()
            )));
        }
        let (a, d) = (a.as_array(), d.as_array());
        parts.push((a, d));
    }
    let mut out_ids = Array2::<i64>::from_elem((n, k), -1);
    let mut out_dists = Array2::<f32>::from_elem((n, k), f32::INFINITY);
    for r in 0..n {
        let mut all = Vec::new();
        for (a, d) in &parts {
            for (&id, &dist) in a.row(r).iter().zip(d.row(r)) {
                if id == -1 {
                    continue;
                }
                let id = u64::try_from(id).map_err(|_| PyValueError::new_err(format!("id {id} is negative")))?;
                if dist.is_nan() {
                    return Err(PyValueError::new_err(format!("row {r}: a NaN distance")));
                }
                all.push(omendex::Neighbor { id: VectorId(id), dist });
            }
        }
        for (c, h) in omendex::merge_top_k(all, k).into_iter().enumerate() {
            out_ids[[r, c]] = h.id.0 as i64;
            out_dists[[r, c]] = h.dist;
        }
    }
    Ok((out_ids.into_pyarray(py), out_dists.into_pyarray(py)))
}

/// The kernels' SIMD path on this CPU (`avx512`, `avx2`, `portable`, `scalar`).
#[pyfunction]
fn simd_path() -> &'static str {
    omendex::simd_path().name()
}

#[pymodule]
fn _omendex(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Index>()?;
    m.add_class::<SegmentedIndex>()?;
    m.add_function(wrap_pyfunction!(simd_path, m)?)?;
    m.add_class::<FolderBuild>()?;
    m.add_function(wrap_pyfunction!(begin_segments, m)?)?;
    m.add_function(wrap_pyfunction!(verify_segment_file, m)?)?;
    m.add_function(wrap_pyfunction!(build_marker_name, m)?)?;
    m.add_function(wrap_pyfunction!(generation_named, m)?)?;
    m.add_function(wrap_pyfunction!(merge_topk, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_segments, m)?)?;
    m.add_function(wrap_pyfunction!(segment_file_name, m)?)?;
    m.add_function(wrap_pyfunction!(segment_of, m)?)?;
    m.add_function(wrap_pyfunction!(temporary_target, m)?)?;
    m.add_function(wrap_pyfunction!(is_garbage_after, m)?)?;
    m.add_function(wrap_pyfunction!(write_manifest_for_remote, m)?)?;
    m.add("CorruptIndexError", m.py().get_type::<CorruptIndexError>())?;
    m.add("SaveConflictError", m.py().get_type::<SaveConflictError>())?;
    m.add("FORMAT_VERSION", omendex::FORMAT_VERSION)?;
    // The package's version is the crate's (maturin takes the wheel's from Cargo.toml too).
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
