//! glibc's allocator, tuned from inside the binary (no environment variable anyone must
//! remember) for a process that decodes large images on a few threads.
//!
//! By default glibc gives each thread that allocates its own arena (up to 8 per core)
//! and serves large blocks from the arenas once one has been freed (its mmap threshold
//! rises to 32 MiB). An image's pixels, freed on a blocking thread, then stay in that
//! thread's arena: on the scraping job's real image path the same 19 photographs twice
//! peaked at 494 MiB. Two arenas, and every block of 1 MiB or more mapped on its own and
//! returned to the system when freed, peaked at 158 MiB at the same speed
//! (BENCHMARKS.md, "images").

/// Sets the parameters; call first thing in `main`, before any other thread exists.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc's parameters; no thread is allocating yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
