//! Runs a [`PathProbe`]'s blocking calls for the async daemon.
//!
//! - Calls run on tokio's blocking pool, at most `slots` at a time (a
//!   semaphore): the runtime's own threads never block.
//! - A call that outlives its timeout is answered with
//!   [`ChkState::Timeout`] (checks) or [`PRIO_UNDEF`] (prios). The blocking
//!   call itself cannot be cancelled (an SG_IO in the kernel's error
//!   handler); it keeps its slot until it returns, and is counted as stuck.
//! - One call per path at a time: while a path's call is in flight, new
//!   requests for it are answered at once (pending, or timeout once the
//!   call is overdue) instead of being queued behind a hung device. So stuck
//!   calls are bounded by the number of paths and by `slots`.
//!
//! On shutdown, stop the runtime with `shutdown_timeout` /
//! `shutdown_background`: dropping it waits for blocking calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{CheckResult, CheckerKind, PathProbe};
use crate::model::{ChkState, PathInfo};
use crate::prio::{PrioResult, PrioSpec};

/// Counters for `show status`-like reports and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunnerStats {
    /// Size of the pool.
    pub slots: usize,
    /// Paths with a call in flight (waiting for a slot or running).
    pub in_flight: usize,
    /// Calls still running after their caller got a timeout.
    pub stuck: usize,
}

#[derive(Debug)]
struct Flight {
    id: u64,
    started: Instant,
    timeout: Duration,
    /// The caller was told "timeout"; the call still holds its slot.
    abandoned: bool,
}

#[derive(Debug, Default)]
struct Flights {
    by_dev: HashMap<String, Flight>,
    next_id: u64,
    stuck: usize,
}

/// Why a request was not started.
enum Busy {
    /// The path's previous call is running and not yet overdue.
    Running,
    /// The path's previous call has outlived its timeout.
    Overdue,
}

impl Flights {
    fn begin(&mut self, dev: &str, timeout: Duration) -> Result<u64, Busy> {
        if let Some(f) = self.by_dev.get(dev) {
            return Err(if f.abandoned || f.started.elapsed() >= f.timeout {
                Busy::Overdue
            } else {
                Busy::Running
            });
        }
        self.next_id += 1;
        let id = self.next_id;
        self.by_dev.insert(
            dev.to_string(),
            Flight {
                id,
                started: Instant::now(),
                timeout,
                abandoned: false,
            },
        );
        Ok(id)
    }

    fn finish(&mut self, dev: &str, id: u64) {
        if self.by_dev.get(dev).is_some_and(|f| f.id == id) {
            if let Some(f) = self.by_dev.remove(dev) {
                if f.abandoned {
                    self.stuck = self.stuck.saturating_sub(1);
                }
            }
        }
    }

    fn abandon(&mut self, dev: &str, id: u64) {
        if let Some(f) = self.by_dev.get_mut(dev) {
            if f.id == id && !f.abandoned {
                f.abandoned = true;
                self.stuck += 1;
            }
        }
    }
}

type Shared = Arc<Mutex<Flights>>;

fn lock(s: &Shared) -> MutexGuard<'_, Flights> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Clears the path's in-flight mark and frees the slot when the blocking
/// call ends, however it ends (return or panic).
struct FlightGuard {
    shared: Shared,
    dev: String,
    id: u64,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        lock(&self.shared).finish(&self.dev, self.id);
    }
}

/// How a request ended when the probe did not answer it.
enum Unanswered {
    Busy(Busy),
    NoSlot,
    TimedOut,
    Failed(CallFailed),
}

/// The blocking call panicked, or the runtime cancelled it.
#[derive(Debug, thiserror::Error)]
#[error("checker call failed: {0}")]
pub struct CallFailed(#[source] tokio::task::JoinError);

/// Why a job run by [`CheckRunner::run_on_path`] has no result.
#[derive(Debug, thiserror::Error)]
pub enum PathJobError {
    /// A call on the path is in flight, or no slot came free in time.
    #[error("the path is busy")]
    Busy,
    /// No answer within this timeout; the job still runs to its end.
    #[error("no answer in {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error(transparent)]
    Failed(#[from] CallFailed),
}

/// The async face of a [`PathProbe`]. Cheap to clone; clones share the
/// pool and the in-flight accounting.
pub struct CheckRunner<P: PathProbe> {
    probe: Arc<P>,
    slots: Arc<Semaphore>,
    nslots: usize,
    shared: Shared,
}

impl<P: PathProbe> Clone for CheckRunner<P> {
    fn clone(&self) -> Self {
        CheckRunner {
            probe: self.probe.clone(),
            slots: self.slots.clone(),
            nslots: self.nslots,
            shared: self.shared.clone(),
        }
    }
}

impl<P: PathProbe> CheckRunner<P> {
    /// Default pool size: calls mostly sleep in the kernel, so more than
    /// the core count, but bounded.
    pub const DEFAULT_SLOTS: usize = 16;

    pub fn new(probe: Arc<P>, slots: usize) -> Self {
        let nslots = slots.max(1);
        CheckRunner {
            probe,
            slots: Arc::new(Semaphore::new(nslots)),
            nslots,
            shared: Arc::default(),
        }
    }

    pub fn probe(&self) -> &Arc<P> {
        &self.probe
    }

    /// Check `dev` with `checker`. Answers within about `timeout` once a
    /// slot is free (a request waits at most `timeout` for a slot, then is
    /// answered pending).
    pub async fn check(&self, dev: &str, checker: CheckerKind, timeout: Duration) -> CheckResult {
        let d = dev.to_string();
        let r = self
            .run(dev, timeout, move |p: &P| p.check(&d, checker, timeout))
            .await;
        r.unwrap_or_else(|u| unanswered_check(checker, timeout, u))
    }

    /// A check and, when the path is usable and `spec` is given, its prio,
    /// in one blocking call: one thread hand-off per check instead of two
    /// (context switches dominate a healthy SAN's checking cost).
    pub async fn check_then_prio(
        &self,
        path: std::sync::Arc<PathInfo>,
        checker: CheckerKind,
        spec: Option<PrioSpec>,
        timeout: Duration,
    ) -> (CheckResult, Option<PrioResult>) {
        let p = path.clone();
        let deadline = ChunkItem::deadline_of(spec.is_some(), timeout);
        let job = ChunkItem {
            path: p,
            checker,
            spec,
            timeout,
        };
        let r = self
            .run(&path.dev, deadline, move |pr: &P| {
                run_check_then_prio(pr, &job)
            })
            .await;
        r.unwrap_or_else(|u| (unanswered_check(checker, timeout, u), None))
    }
    /// Priority of `path`; [`crate::prio::PRIO_UNDEF`] when the path is busy
    /// or the prioritizer did not answer in time.
    pub async fn prio(&self, path: &PathInfo, spec: &PrioSpec, timeout: Duration) -> PrioResult {
        let p = path.clone();
        let s = spec.clone();
        let r = self
            .run(&path.dev, timeout, move |pr: &P| pr.prio(&p, &s, timeout))
            .await;
        match r {
            Ok(r) => r,
            Err(Unanswered::Busy(_)) => PrioResult::undef("a call on this path is still in flight"),
            Err(Unanswered::NoSlot) => PrioResult::undef("no free checker slot"),
            Err(Unanswered::TimedOut) => PrioResult::undef(format!(
                "prioritizer {} timed out after {} ms",
                spec.name,
                timeout.as_millis()
            )),
            Err(Unanswered::Failed(e)) => PrioResult::undef(e.to_string()),
        }
    }

    /// Run another blocking job on a path (the persistent-reservation
    /// step), under the same one-at-a-time rule and pool as its checks.
    pub async fn run_on_path<T, F>(
        &self,
        dev: &str,
        timeout: Duration,
        job: F,
    ) -> Result<T, PathJobError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.run(dev, timeout, move |_: &P| job())
            .await
            .map_err(|u| match u {
                Unanswered::Failed(e) => PathJobError::Failed(e),
                Unanswered::TimedOut => PathJobError::Timeout(timeout),
                Unanswered::Busy(_) | Unanswered::NoSlot => PathJobError::Busy,
            })
    }

    async fn run<T, F>(&self, dev: &str, timeout: Duration, job: F) -> Result<T, Unanswered>
    where
        T: Send + 'static,
        F: FnOnce(&P) -> T + Send + 'static,
    {
        let id = lock(&self.shared)
            .begin(dev, timeout)
            .map_err(Unanswered::Busy)?;
        // From here on the guard owns the in-flight mark.
        let mut guard = FlightGuard {
            shared: self.shared.clone(),
            dev: dev.to_string(),
            id,
            _permit: None,
        };
        let permit = match tokio::time::timeout(timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => return Err(Unanswered::NoSlot),
        };
        guard._permit = Some(permit);
        let probe = self.probe.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            job(&probe)
        });
        match tokio::time::timeout(timeout, handle).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unanswered::Failed(CallFailed(e))),
            Err(_) => {
                lock(&self.shared).abandon(dev, id);
                Err(Unanswered::TimedOut)
            }
        }
    }

    /// Check several paths in one blocking call, one after another: one
    /// thread hand-off for the lot instead of one per path (hand-offs
    /// dominate a healthy SAN's checking cost). Meant for paths whose last
    /// check was good: a check that hangs holds up the ones after it, so a
    /// path in doubt belongs in a chunk of its own.
    ///
    /// Each item has its own deadline, counted from when it starts, so a
    /// slow item never turns a healthy later one into a timeout. When an
    /// item outlives its deadline it is a timeout (and counted stuck, as
    /// with [`Self::check`]); the items after it are released from the
    /// chunk and each checked on its own call at once, so one hung device
    /// delays the others by one deadline at most and never fails them.
    pub async fn check_chunk(&self, items: Vec<ChunkItem>) -> Vec<CheckOutcome> {
        let mut out: Vec<Option<CheckOutcome>> = (0..items.len()).map(|_| None).collect();
        let started = self.begin_chunk(&items, &mut out);
        if started.is_empty() {
            return out.into_iter().flatten().collect();
        }
        let deadlines: Vec<Duration> = started.iter().map(|&(i, _)| items[i].deadline()).collect();
        let longest = deadlines.iter().copied().max().unwrap_or_default();
        let guards: Vec<FlightGuard> = started
            .iter()
            .map(|&(i, id)| FlightGuard {
                shared: self.shared.clone(),
                dev: items[i].path.dev.clone(),
                id,
                _permit: None,
            })
            .collect();
        let Ok(Ok(permit)) =
            tokio::time::timeout(longest, self.slots.clone().acquire_owned()).await
        else {
            drop(guards);
            for &(i, _) in &started {
                let it = &items[i];
                out[i] = Some((
                    unanswered_check(it.checker, it.timeout, Unanswered::NoSlot),
                    None,
                ));
            }
            return out.into_iter().flatten().collect();
        };
        let progress = Arc::new(Mutex::new(ChunkProgress {
            done: (0..started.len()).map(|_| None).collect(),
            current: None,
            abandoned: false,
        }));
        let jobs: Vec<ChunkItem> = started.iter().map(|&(i, _)| items[i].clone()).collect();
        let (probe, prog) = (self.probe.clone(), progress.clone());
        let spawned = Instant::now();
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run_chunk(&*probe, &jobs, guards, &prog);
        });
        let hung = wait_chunk(handle, &progress, &deadlines, longest, spawned).await;
        let rerun = self.settle_chunk(&items, &started, hung, &progress, &mut out);
        let reruns = rerun.iter().map(|&i| {
            let it = &items[i];
            self.check_then_prio(it.path.clone(), it.checker, it.spec.clone(), it.timeout)
        });
        for (i, r) in rerun.iter().zip(futures::future::join_all(reruns).await) {
            out[*i] = Some(r);
        }
        out.into_iter().flatten().collect()
    }

    /// Marks the chunk's paths in flight: (index into items, flight id) of
    /// those that may start; a busy path's outcome goes straight to `out`.
    fn begin_chunk(
        &self,
        items: &[ChunkItem],
        out: &mut [Option<CheckOutcome>],
    ) -> Vec<(usize, u64)> {
        let mut started = Vec::with_capacity(items.len());
        let mut f = lock(&self.shared);
        for (i, it) in items.iter().enumerate() {
            match f.begin(&it.path.dev, it.deadline()) {
                Ok(id) => started.push((i, id)),
                Err(b) => {
                    out[i] = Some((
                        unanswered_check(it.checker, it.timeout, Unanswered::Busy(b)),
                        None,
                    ))
                }
            }
        }
        started
    }

    /// Takes the chunk's results: answered items into `out`, the hung one
    /// as a timeout (abandoned, counted stuck); returns the items that
    /// never started, freed to be checked on their own.
    fn settle_chunk(
        &self,
        items: &[ChunkItem],
        started: &[(usize, u64)],
        hung: Option<usize>,
        progress: &Mutex<ChunkProgress>,
        out: &mut [Option<CheckOutcome>],
    ) -> Vec<usize> {
        let mut rerun = Vec::new();
        let mut p = lock_progress(progress);
        for (k, &(i, id)) in started.iter().enumerate() {
            let it = &items[i];
            if let Some(r) = p.done[k].take() {
                out[i] = Some(r);
            } else if hung == Some(k) {
                lock(&self.shared).abandon(&it.path.dev, id);
                out[i] = Some((
                    unanswered_check(it.checker, it.timeout, Unanswered::TimedOut),
                    None,
                ));
            } else {
                lock(&self.shared).finish(&it.path.dev, id);
                rerun.push(i);
            }
        }
        rerun
    }

    /// Whether `dev` has a call in flight (a new one would not be started).
    pub fn is_in_flight(&self, dev: &str) -> bool {
        lock(&self.shared).by_dev.contains_key(dev)
    }

    pub fn stats(&self) -> RunnerStats {
        let f = lock(&self.shared);
        RunnerStats {
            slots: self.nslots,
            in_flight: f.by_dev.len(),
            stuck: f.stuck,
        }
    }
}

/// One check (and maybe prio) of a [`CheckRunner::check_chunk`].
#[derive(Debug, Clone)]
pub struct ChunkItem {
    pub path: Arc<PathInfo>,
    pub checker: CheckerKind,
    /// Also read the prio, when the check finds the path usable.
    pub spec: Option<PrioSpec>,
    pub timeout: Duration,
}

impl ChunkItem {
    /// The prio gets its own timeout after the check's.
    fn deadline_of(with_prio: bool, timeout: Duration) -> Duration {
        if with_prio {
            timeout.saturating_mul(2)
        } else {
            timeout
        }
    }

    fn deadline(&self) -> Duration {
        Self::deadline_of(self.spec.is_some(), self.timeout)
    }
}

/// A check's result and, when asked for and the path is usable, its prio.
pub type CheckOutcome = (CheckResult, Option<PrioResult>);

/// How far a chunk's blocking call got, shared with the caller waiting on
/// it.
struct ChunkProgress {
    done: Vec<Option<CheckOutcome>>,
    /// The item last started, and when.
    current: Option<(usize, Instant)>,
    /// The caller stopped waiting: do not start what is left.
    abandoned: bool,
}

/// The blocking side of a chunk: its checks one after another, each
/// result recorded before its guard frees the path, until the waiting
/// side abandons the rest.
fn run_chunk<P: PathProbe>(
    probe: &P,
    jobs: &[ChunkItem],
    guards: Vec<FlightGuard>,
    prog: &Mutex<ChunkProgress>,
) {
    for (k, (job, guard)) in jobs.iter().zip(guards).enumerate() {
        {
            let mut p = lock_progress(prog);
            if p.abandoned {
                break;
            }
            p.current = Some((k, Instant::now()));
        }
        // A panicking probe fails its own item, not the chunk.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_check_then_prio(probe, job)
        }))
        .unwrap_or_else(|_| {
            let c = CheckResult::standard(job.checker, ChkState::Down)
                .with_detail("checker call panicked");
            (c, None)
        });
        lock_progress(prog).done[k] = Some(r);
        drop(guard);
    }
}

/// Waits for a chunk item by item, each with its deadline from its own
/// start. Returns the item that outlived its deadline, if one did (the
/// chunk is then abandoned).
async fn wait_chunk(
    mut handle: tokio::task::JoinHandle<()>,
    progress: &Mutex<ChunkProgress>,
    deadlines: &[Duration],
    longest: Duration,
    spawned: Instant,
) -> Option<usize> {
    let mut wait = deadlines[0];
    loop {
        if tokio::time::timeout(wait, &mut handle).await.is_ok() {
            return None;
        }
        let mut p = lock_progress(progress);
        match p.current {
            Some((k, t0)) if p.done[k].is_none() => {
                let left = deadlines[k].saturating_sub(t0.elapsed());
                if left.is_zero() {
                    p.abandoned = true;
                    return Some(k);
                }
                wait = left;
            }
            // Not started yet, or between two items.
            _ if p.current.is_none() && spawned.elapsed() >= longest => {
                // The blocking pool never ran it: give up on the lot.
                p.abandoned = true;
                return None;
            }
            _ => wait = Duration::from_millis(10),
        }
    }
}

fn lock_progress(p: &Mutex<ChunkProgress>) -> MutexGuard<'_, ChunkProgress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_check_then_prio<P: PathProbe>(pr: &P, job: &ChunkItem) -> CheckOutcome {
    let t = std::time::Instant::now();
    let mut c = pr.check(&job.path.dev, job.checker, job.timeout);
    c.duration = Some(t.elapsed());
    let prio = match &job.spec {
        Some(s) if c.state.is_usable() => Some(pr.prio(&job.path, s, job.timeout)),
        _ => None,
    };
    (c, prio)
}

/// What a check that got no answer reports.
fn unanswered_check(checker: CheckerKind, timeout: Duration, u: Unanswered) -> CheckResult {
    match u {
        Unanswered::Busy(Busy::Running) => CheckResult::new(
            ChkState::Pending,
            format!("{checker} checker still running"),
        ),
        Unanswered::Busy(Busy::Overdue) => CheckResult::standard(checker, ChkState::Timeout)
            .with_detail("previous check is still stuck"),
        Unanswered::NoSlot => CheckResult::new(
            ChkState::Pending,
            format!("{checker} checker still running"),
        )
        .with_detail("no free checker slot"),
        Unanswered::TimedOut => CheckResult::standard(checker, ChkState::Timeout)
            .with_detail(format!("no answer within {} ms", timeout.as_millis())),
        Unanswered::Failed(e) => {
            CheckResult::standard(checker, ChkState::Down).with_detail(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests;
