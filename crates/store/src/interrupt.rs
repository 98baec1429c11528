//! What a wait for a folder's lock does when a signal interrupts it.
//!
//! A process may install signal handlers that run and return (Python runs its handlers, and
//! turns Ctrl-C into `KeyboardInterrupt`, between steps of the interpreter): a signal that
//! arrives while a save or load waits for a folder's [`LOCK`](crate::LOCK) interrupts the wait.
//! The wait then asks the check set for the thread with [`with_interrupt_check`]: `true` ends it
//! with an error of kind [`Interrupted`](std::io::ErrorKind::Interrupted), `false` (or no
//! check) waits on.

use std::cell::RefCell;
use std::rc::Rc;

type Check = Rc<dyn Fn() -> bool>;

thread_local! {
    static CHECK: RefCell<Option<Check>> = const { RefCell::new(None) };
}

/// Runs `f` with `check` asked, on this thread, whether an interrupted wait for a folder's lock
/// should stop (`true`) or wait on (`false`); the check in place before is restored after.
///
/// ```
/// let waited = omen_store::with_interrupt_check(|| true, || 7);
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

/// Whether an interrupted wait should stop, by the check set for this thread.
pub(crate) fn interrupted() -> bool {
    let check = CHECK.with(|c| c.borrow().clone());
    check.is_some_and(|c| c())
}
