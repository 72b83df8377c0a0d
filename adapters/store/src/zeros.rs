//! Zeros written ahead of the log's end, by a thread of their own. Why zeros,
//! why a thread and why 64 KiB pieces: docs/design.md, "Zeros written ahead".
//!
//! The rule this module keeps: frames and zeros never overlap. The writer asks
//! for a range that starts after everything it has written, and before each
//! write it waits if that write would reach past the zeros written so far
//! (`before_write`). Zeros land only after the last frame, where recovery treats
//! them like any zero tail.

use crate::disk::DiskFile;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

/// Zeros wanted after the end of the last write; fewer, and the writer asks for
/// more. At 60 MB/s of log (about 90,000 access events a second) 4 MiB lasts
/// 70 ms, several times what zeroing the next range takes here.
const AHEAD_BYTES_MIN: u64 = 4 << 20;
/// How far past the end of the last write a request reaches.
const AHEAD_BYTES_TARGET: u64 = 8 << 20;
/// Zeros written and pushed to the disk at a time.
const PIECE_BYTES: usize = 64 << 10;

struct State {
    /// Everything before this offset is frames, or zeros written to the disk (or
    /// the file's end at open). The zeros thread moves it on a piece at a time.
    zeroed_end: u64,
    /// While a range is being zeroed, its end: `[zeroed_end, job_end)` is what
    /// remains to zero, and the writer must not write there.
    job_end: Option<u64>,
    stop: bool,
    /// After a failure the store goes on without zeros ahead (only slower).
    disabled: bool,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

pub(crate) struct ZerosAhead {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl ZerosAhead {
    /// Starts the thread for `file` (a handle of its own), whose length is `len`.
    pub(crate) fn start(file: std::sync::Arc<dyn DiskFile>, len: u64) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                zeroed_end: len,
                job_end: None,
                stop: false,
                disabled: false,
            }),
            changed: Condvar::new(),
        });
        let thread = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("mebyo-ledger-zeros".into())
                .spawn(move || run(&inner, &*file))
        };
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "starting the zeros-ahead thread; appends go on without");
                inner.state.lock().disabled = true;
                None
            }
        };
        Self { inner, thread }
    }

    /// Called by the writer before it writes `[from, to)`: waits while that would
    /// reach past the zeros written so far of a range being zeroed (at most a
    /// piece's time), then asks for more zeros if fewer than `AHEAD_BYTES_MIN` lie
    /// after `to`.
    pub(crate) fn before_write(&self, from: u64, to: u64) {
        let mut st = self.inner.state.lock();
        debug_assert!(
            st.job_end.is_none() || from <= st.zeroed_end,
            "frames are written only before the range being zeroed"
        );
        while st.job_end.is_some() && to > st.zeroed_end {
            self.inner.changed.wait(&mut st);
        }
        if st.disabled || st.job_end.is_some() || st.zeroed_end >= to + AHEAD_BYTES_MIN {
            return;
        }
        // What lies between the old end of the zeros and `to` is frames (written
        // by growing the file): the range to zero starts after them.
        st.zeroed_end = st.zeroed_end.max(to);
        st.job_end = Some(to + AHEAD_BYTES_TARGET);
        self.inner.changed.notify_all();
    }
}

/// Dropping stops the thread (after the piece it is writing) and waits for it.
impl Drop for ZerosAhead {
    fn drop(&mut self) {
        self.inner.state.lock().stop = true;
        self.inner.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inner: &Inner, file: &dyn DiskFile) {
    let zeros = vec![0u8; PIECE_BYTES];
    loop {
        {
            let mut st = inner.state.lock();
            while !st.stop && st.job_end.is_none() {
                inner.changed.wait(&mut st);
            }
            if st.stop {
                return;
            }
        }
        let result = zero_range(inner, file, &zeros);
        let mut st = inner.state.lock();
        if let Err(e) = result {
            tracing::warn!(error = %e, "writing zeros ahead of the log; appends go on without");
            st.disabled = true;
        }
        st.job_end = None;
        inner.changed.notify_all();
    }
}

/// Writes zeros over what remains of the job, a piece at a time, each pushed to
/// the disk before `zeroed_end` moves past it (the writer may then write there),
/// then makes the new length durable. Returns early, leaving only zeros after
/// the last frame, if asked to stop.
fn zero_range(inner: &Inner, file: &dyn DiskFile, zeros: &[u8]) -> std::io::Result<()> {
    loop {
        let (at, n) = {
            let st = inner.state.lock();
            let end = st.job_end.expect("a job is running");
            if st.stop {
                return Ok(());
            }
            if st.zeroed_end >= end {
                break;
            }
            (
                st.zeroed_end,
                ((end - st.zeroed_end) as usize).min(zeros.len()),
            )
        };
        // The writer writes only before `zeroed_end` while the job runs, so this
        // piece, which starts there, holds no frame.
        file.write_all_at(&zeros[..n], at)?;
        file.write_out(at, n as u64)?;
        let mut st = inner.state.lock();
        st.zeroed_end = at + n as u64;
        inner.changed.notify_all();
    }
    // The size and the allocation, so that later commits need not persist them.
    file.sync_data()
}
