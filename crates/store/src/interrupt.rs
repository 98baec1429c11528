//! How a wait for a folder's lock can be ended by its caller.
//!
//! A save or load waits for a folder's [`LOCK`](crate::LOCK) as long as another save holds it.
//! Without a check, the wait blocks, and a signal that interrupts it (a handler that runs and
//! returns) does not end it. With a check set for the thread by [`with_interrupt_check`], the
//! wait tries the lock every 10 ms and asks the check: `true` ends it with an error of kind
//! [`Interrupted`](std::io::ErrorKind::Interrupted). The Python package sets one that another
//! thread raises on Ctrl-C.

use std::cell::RefCell;
use std::rc::Rc;

pub(crate) type Check = Rc<dyn Fn() -> bool>;

thread_local! {
    static CHECK: RefCell<Option<Check>> = const { RefCell::new(None) };
}

/// Runs `f` with `check` asked, on this thread, whether a wait for a folder's lock should stop
/// (`true`) or wait on (`false`); the check in place before is restored after.
///
/// ```
/// let waited = omendex_store::with_interrupt_check(|| true, || 7);
/// assert_eq!(waited, 7);
/// ```
pub fn with_interrupt_check<T>(check: impl Fn() -> bool + 'static, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Check>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            CHECK.with(|c| *c.borrow_mut() = before);
        }
    }
    let before = CHECK.with(|c| c.replace(Some(Rc::new(check))));
    let _restore = Restore(before);
    f()
}

/// The check set for this thread, if any.
pub(crate) fn check() -> Option<Check> {
    CHECK.with(|c| c.borrow().clone())
}
