//! One closure run on several threads at once (scoped threads, no pool): the parallel loops of the pack
//! writer and the v2 migration's reading pass share this shape.
//!
//! Invariants: the calling thread works too (`threads - 1` helpers are spawned, at least none); results come
//! back in thread order, the calling thread's first, so callers that need a deterministic order sort by the
//! work item's index (as both callers do). A panic in a helper is re-raised in the caller, never swallowed.

/// Run `work` on `threads` threads (the calling one included; 0 counts as 1) and collect every thread's result.
pub fn on_threads<T: Send>(threads: usize, work: impl Fn() -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.max(1)).map(|_| scope.spawn(&work)).collect();
        let mut parts = vec![work()];
        parts.extend(
            helpers
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        parts
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_thread_runs_once_and_shares_the_work() {
        for threads in [0, 1, 2, 5] {
            let (next, runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let parts = super::on_threads(threads, || {
                runs.fetch_add(1, Ordering::Relaxed);
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= 100 {
                        return mine;
                    }
                    mine.push(i);
                }
            });
            assert_eq!(parts.len(), threads.max(1));
            assert_eq!(runs.load(Ordering::Relaxed), threads.max(1));
            let mut all: Vec<usize> = parts.into_iter().flatten().collect();
            all.sort_unstable();
            assert_eq!(all, (0..100).collect::<Vec<_>>());
        }
    }
}
