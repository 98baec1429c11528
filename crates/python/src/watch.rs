//! Long calls run beside a watcher of Python's signals: Ctrl-C (or a raising handler)
//! stops them through a `Stop` flag, a forking handler leaves no child waiting.

use std::sync::Arc;

use omendex::VectorIndex;
use parking_lot::{Mutex, RwLock};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::to_py;

/// Runs `f` (which watches `stop`) on a thread of its own while this one, holding the GIL
/// only for a moment every 50 ms, checks for Ctrl-C and other signals; on one, raises `stop`,
/// waits for `f` to end (within one insertion) and returns the signal's exception.
///
/// A signal handler may fork. The child has this thread alone: `f` goes on in the parent only,
/// so the child's call raises `RuntimeError` at once instead of waiting for a thread it does
/// not have (which `std::thread::scope` would do, forever).
/// `tick` runs beside each check (the GIL held); an error from it ends the call as a
/// signal's exception does.
pub(crate) fn until_signal<T: Send>(
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
pub(crate) struct Worker<'a> {
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
pub(crate) fn until_stopped<T: Send>(py: Python<'_>, f: impl FnOnce(&omendex::Stop) -> T + Send) -> PyResult<T> {
    let stop = omendex::Stop::new();
    until_signal(py, || stop.stop(), || Ok(()), || f(&stop))
}

/// Runs `f` on the index behind `lock`, taken for writing, on `pool`, with the index watching a
/// stop flag that Ctrl-C raises ([`until_stopped`]): a call that builds aside (rebuild,
/// add_segment, compact) then ends with the index as it was, and the signal's exception is
/// raised.
pub(crate) fn write_stoppable<I: VectorIndex, T: Send>(
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
pub(crate) fn folder_call<T: Send, E: Into<omendex::Error> + Send>(
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
