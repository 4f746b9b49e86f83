//! Process-wide settings for training on the CPU, made first thing in `main`.
//!
//! Shared, as this one file, by the `l2m` binary and the `l2m-bench` binary (which
//! includes it with `#[path]`), so the benchmark measures what users run.
//! docs/performance.md has the measurements behind each setting.

/// `mi_option_purge_delay`: its index in the `mi_option_t` enum of mimalloc v3, the
/// version libmimalloc-sys 0.1.49 builds (`c_src/mimalloc/v3/include/mimalloc.h`); the
/// crate names no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The spin limit this process gives Candle's element-wise worker threads unless the user
/// set `CANDLE_BARRIER_POOL_SPIN_LIMIT` (Candle's default is 25000).
const CANDLE_SPIN_LIMIT: &str = "1000";

/// Makes the settings below; call it as the first statement of `main`.
pub fn configure() {
    keep_freed_memory();
    default_environment();
}

/// Tells mimalloc never to return freed memory to the kernel (purge delay -1). Candle
/// allocates every intermediate tensor afresh, tens of megabytes per step; returned to the
/// kernel, each comes back as zeroed pages in the next step.
#[allow(
    unsafe_code,
    reason = "an FFI call that sets one integer option of the allocator"
)]
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` stores an integer; it runs before any other thread exists
    // (mimalloc documents its setters as not thread safe).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Environment defaults that Candle reads lazily, set unless the user set them:
///
/// - `RAYON_NUM_THREADS` to the available parallelism: Candle looks the thread count up on
///   every matrix product and, without the variable, asks the operating system each time
///   (reading cgroup files on Linux); with it, the lookup is a string parse.
/// - `CANDLE_BARRIER_POOL_SPIN_LIMIT` to [`CANDLE_SPIN_LIMIT`]: Candle's element-wise
///   workers spin 25000 times after each op before sleeping, which on a small machine takes
///   a core away from the next op (our kernels run on rayon's threads).
#[allow(
    unsafe_code,
    reason = "set_var is sound here: first statement of main, before any thread exists"
)]
fn default_environment() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (name, value) in [
        ("RAYON_NUM_THREADS", threads.to_string()),
        (
            "CANDLE_BARRIER_POOL_SPIN_LIMIT",
            CANDLE_SPIN_LIMIT.to_string(),
        ),
    ] {
        if std::env::var_os(name).is_none() {
            // SAFETY: no other thread exists yet, so nothing reads the environment
            // concurrently.
            unsafe { std::env::set_var(name, value) };
        }
    }
}
