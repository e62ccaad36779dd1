//! The one tokio runtime of the process: every [`super::AlpacaClient`] sends its requests on
//! it, and the synchronous facade ([`block_on`]) waits for them from ordinary threads.
//!
//! Why one: a runtime owns worker threads and an I/O driver. One per client (as
//! `reqwest::blocking` does internally) would multiply threads and connection pools for no
//! gain, and concurrent reads of one cycle must run on the same runtime to be joined.
//!
//! The runtime is created on first use ([`handle`]) and lives until the process exits (it sits
//! in a `static`; there is nothing to flush at exit). A service that wants to fail fast calls
//! [`handle`] at start: a process out of threads or descriptors then stops before trading.
//!
//! The facade must not be called from async code running on a runtime (a tokio worker or a
//! task): tokio's own `block_on` panics there. Nothing in avwap does that; should it happen
//! anyway, [`block_on`] runs the future on a short-lived helper thread instead of panicking
//! (the caller's worker is blocked for the duration, which is only a performance problem) and
//! logs a warning once so the misuse gets fixed.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use tokio::runtime::{Builder, Handle, Runtime};

/// Worker threads of the runtime. The work is waiting on sockets, not computing: two threads
/// drive the I/O and timers of a handful of concurrent requests with room to spare.
pub const WORKER_THREADS: usize = 2;

/// Thread name, visible in `top -H` and core dumps.
const THREAD_NAME: &str = "avwap-alpaca-net";

/// The runtime could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot start the network runtime for Alpaca requests: {message}; the process may have hit \
     its thread or file-descriptor limit (check LimitNPROC / LimitNOFILE and `ulimit -a`), then \
     restart it"
)]
pub struct RuntimeError {
    pub message: String,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises creation so two first callers do not both build a runtime (`OnceLock` has no
/// stable fallible initialiser, and a failed build must be retryable).
static CREATE: Mutex<()> = Mutex::new(());
static WARNED_NESTED: AtomicBool = AtomicBool::new(false);

/// The process-wide runtime's handle, creating the runtime on first call. Idempotent and cheap
/// after the first call; a failed creation is retried by the next call.
pub fn handle() -> Result<Handle, RuntimeError> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime.handle().clone());
    }
    let _creating = CREATE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime.handle().clone());
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
        .map_err(|e| RuntimeError {
            message: e.to_string(),
        })?;
    let handle = runtime.handle().clone();
    // Cannot fail: we hold CREATE and checked that it is empty.
    let _ = RUNTIME.set(runtime);
    Ok(handle)
}

/// Whether the calling thread is inside a tokio runtime context (a worker, a task, or under
/// `Handle::enter`), where tokio's `block_on` would panic.
pub fn in_runtime_context() -> bool {
    Handle::try_current().is_ok()
}

/// Run `future` to completion on `handle` from synchronous code and return its output.
///
/// Meant for ordinary threads (the execution loop, the scanner). Called from inside a runtime
/// it does not panic: the future runs on a helper thread outside any runtime context while
/// this thread waits (see the module docs).
pub fn block_on<F>(handle: &Handle, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if !in_runtime_context() {
        return handle.block_on(future);
    }
    if !WARNED_NESTED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a blocking Alpaca call was made from async code; it runs on a helper thread \
             (use the async API there instead)"
        );
    }
    std::thread::scope(|scope| {
        let helper = scope.spawn(|| handle.block_on(future));
        // A panic of the future itself is passed on unchanged: it is the caller's panic, not a
        // new one introduced here.
        helper
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_per_process() {
        let a = handle().expect("runtime");
        let b = handle().expect("runtime");
        assert_eq!(a.id(), b.id());
    }

    #[test]
    fn block_on_from_inside_the_runtime_does_not_panic() {
        let handle = handle().expect("runtime");
        let inner = handle.clone();
        // A task on the runtime calls the synchronous facade: tokio's block_on would panic.
        let got = block_on(&handle, async move {
            let nested = tokio::task::spawn_blocking(move || {
                let _context = inner.enter();
                block_on(&inner, async { 41 + 1 })
            });
            let direct = block_on(&Handle::current(), async { 7 });
            (nested.await.unwrap_or(0), direct)
        });
        assert_eq!(got, (42, 7));
    }
}
