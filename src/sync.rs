//! The locks and atomics the core's shared state is built on.
//!
//! Normal builds use parking_lot's locks and std's atomics, as before: nothing here costs a
//! thing. With the `shuttle` feature they become shuttle's, so a model check
//! (tests/shuttle_namespace.rs) controls every lock acquisition and atomic access of the core
//! and can try many interleavings of the same operations. Both sides have parking_lot's
//! shape: `read`, `write` and `lock` hand back the guard itself.
//!
//! Under shuttle every thread runs on one OS thread, so a lock that is not from here (a
//! DashMap shard, the blob store's maps) must never be held across an operation on one that
//! is: a switch at that point would leave the other threads spinning on it. The inode and
//! handle tables keep their DashMap guards to a lookup, insert or remove plus an `Arc` clone.
//! A shuttle build is for the model check only: its locks and atomics panic outside a
//! shuttle execution.

#[cfg(not(feature = "shuttle"))]
pub use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(feature = "shuttle")]
pub use model::{Mutex, RwLock};
#[cfg(feature = "shuttle")]
pub use shuttle::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

pub mod atomic {
    #[cfg(feature = "shuttle")]
    pub use shuttle::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
    pub use std::sync::atomic::Ordering;
    #[cfg(not(feature = "shuttle"))]
    pub use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
}

#[cfg(feature = "shuttle")]
mod model {
    use std::fmt;
    use std::sync::PoisonError;

    use shuttle::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

    /// shuttle's reader-writer lock with parking_lot's interface. Like parking_lot's, it
    /// does not poison: a guard dropped in a panic leaves the lock usable.
    pub struct RwLock<T: ?Sized>(shuttle::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub fn new(value: T) -> RwLock<T> {
            RwLock(shuttle::sync::RwLock::new(value))
        }
    }

    impl<T: ?Sized> RwLock<T> {
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }

        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt(f)
        }
    }

    /// shuttle's mutex with parking_lot's interface (no poisoning).
    pub struct Mutex<T: ?Sized>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Mutex<T> {
            Mutex(shuttle::sync::Mutex::new(value))
        }
    }

    impl<T: ?Sized> Mutex<T> {
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt(f)
        }
    }
}
