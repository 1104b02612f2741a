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
    Failed(String),
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
            Err(Unanswered::Failed(e)) => PrioResult::undef(e),
        }
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
            Ok(Err(e)) => Err(Unanswered::Failed(format!("checker call failed: {e}"))),
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
        let n = items.len();
        let mut out: Vec<Option<CheckOutcome>> = (0..n).map(|_| None).collect();
        // (index into items, flight id) of the checks that may start.
        let mut started: Vec<(usize, u64)> = Vec::with_capacity(n);
        {
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
        }
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
        let permit = match tokio::time::timeout(longest, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                drop(guards);
                for &(i, _) in &started {
                    let it = &items[i];
                    out[i] = Some((
                        unanswered_check(it.checker, it.timeout, Unanswered::NoSlot),
                        None,
                    ));
                }
                return out.into_iter().flatten().collect();
            }
        };
        let progress = Arc::new(Mutex::new(ChunkProgress {
            done: (0..started.len()).map(|_| None).collect(),
            current: None,
            abandoned: false,
        }));
        let jobs: Vec<ChunkItem> = started.iter().map(|&(i, _)| items[i].clone()).collect();
        let probe = self.probe.clone();
        let prog = progress.clone();
        let spawned = Instant::now();
        let mut handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            for (k, (job, guard)) in jobs.iter().zip(guards).enumerate() {
                {
                    let mut p = lock_progress(&prog);
                    if p.abandoned {
                        break;
                    }
                    p.current = Some((k, Instant::now()));
                }
                // A panicking probe fails its own item, not the chunk.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_check_then_prio(&*probe, job)
                }))
                .unwrap_or_else(|_| {
                    let c = CheckResult::standard(job.checker, ChkState::Down)
                        .with_detail("checker call panicked");
                    (c, None)
                });
                // Record before the guard frees the path for its next check.
                lock_progress(&prog).done[k] = Some(r);
                drop(guard);
            }
        });
        // Wait item by item: each gets its deadline from its own start.
        let mut wait = deadlines[0];
        let hung: Option<usize> = loop {
            if tokio::time::timeout(wait, &mut handle).await.is_ok() {
                break None;
            }
            let mut p = lock_progress(&progress);
            match p.current {
                Some((k, t0)) if p.done[k].is_none() => {
                    let left = deadlines[k].saturating_sub(t0.elapsed());
                    if left.is_zero() {
                        p.abandoned = true;
                        break Some(k);
                    }
                    wait = left;
                }
                // Not started yet, or between two items.
                _ if p.current.is_none() && spawned.elapsed() >= longest => {
                    // The blocking pool never ran it: give up on the lot.
                    p.abandoned = true;
                    break None;
                }
                _ => wait = Duration::from_millis(10),
            }
        };
        let mut rerun: Vec<usize> = Vec::new();
        {
            let mut p = lock_progress(&progress);
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
                    // Never started: free the path and check it on its own.
                    lock(&self.shared).finish(&it.path.dev, id);
                    rerun.push(i);
                }
            }
        }
        let reruns = rerun.iter().map(|&i| {
            let it = &items[i];
            self.check_then_prio(it.path.clone(), it.checker, it.spec.clone(), it.timeout)
        });
        for (i, r) in rerun.iter().zip(futures::future::join_all(reruns).await) {
            out[*i] = Some(r);
        }
        out.into_iter().flatten().collect()
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

fn lock_progress(p: &Mutex<ChunkProgress>) -> MutexGuard<'_, ChunkProgress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_check_then_prio<P: PathProbe>(pr: &P, job: &ChunkItem) -> CheckOutcome {
    let c = pr.check(&job.path.dev, job.checker, job.timeout);
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
        Unanswered::Failed(e) => CheckResult::standard(checker, ChkState::Down).with_detail(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::checker::SimProbe;

    const T: Duration = Duration::from_millis(100);

    fn runner(slots: usize) -> (Arc<SimProbe>, CheckRunner<SimProbe>) {
        let sim = Arc::new(SimProbe::new());
        (sim.clone(), CheckRunner::new(sim, slots))
    }

    /// Wait (bounded) until the blocking call of a hung path is parked in
    /// the probe, so the test does not depend on thread scheduling.
    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition never became true");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_then_prio_asks_prio_only_of_usable_paths() {
        let (sim, r) = runner(4);
        sim.set_state("sda", ChkState::Up);
        sim.set_prio("sda", 50);
        sim.set_state("sdb", ChkState::Down);
        sim.set_prio("sdb", 50);
        let spec = PrioSpec::new("alua", "");
        let path = |d: &str| {
            Arc::new(PathInfo {
                dev: d.into(),
                ..PathInfo::default()
            })
        };
        let (c, p) = r
            .check_then_prio(path("sda"), CheckerKind::Tur, Some(spec.clone()), T)
            .await;
        assert_eq!(c.state, ChkState::Up);
        assert_eq!(p.map(|p| p.prio), Some(50));
        let (c, p) = r
            .check_then_prio(path("sdb"), CheckerKind::Tur, Some(spec), T)
            .await;
        assert_eq!(c.state, ChkState::Down);
        assert!(p.is_none());
        let (_, p) = r
            .check_then_prio(path("sda"), CheckerKind::Tur, None, T)
            .await;
        assert!(p.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scripted_results_pass_through() {
        let (sim, r) = runner(4);
        sim.set_state("sdb", ChkState::Ghost);
        assert_eq!(
            r.check("sda", CheckerKind::Tur, T).await.state,
            ChkState::Up
        );
        let g = r.check("sdb", CheckerKind::Tur, T).await;
        assert_eq!(g.state, ChkState::Ghost);
        assert_eq!(g.msg, "tur checker reports path is ghost");
        sim.set_prio("sda", 50);
        let p = PathInfo {
            dev: "sda".into(),
            ..Default::default()
        };
        assert_eq!(r.prio(&p, &PrioSpec::new("alua", ""), T).await.prio, 50);
        assert_eq!(
            r.stats(),
            RunnerStats {
                slots: 4,
                in_flight: 0,
                stuck: 0
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_path_times_out_and_is_never_requeued() {
        let (sim, r) = runner(4);
        sim.hang("sdc");
        let res = r.check("sdc", CheckerKind::Tur, T).await;
        assert_eq!(res.state, ChkState::Timeout);
        assert_eq!(res.msg, "tur checker timed out");
        assert_eq!(
            r.stats(),
            RunnerStats {
                slots: 4,
                in_flight: 1,
                stuck: 1
            }
        );
        assert!(r.is_in_flight("sdc"));
        // Other paths are checked meanwhile.
        assert_eq!(
            r.check("sdd", CheckerKind::Tur, T).await.state,
            ChkState::Up
        );
        // A second check of the hung path is answered at once, not queued.
        let again = r.check("sdc", CheckerKind::Tur, T).await;
        assert_eq!(again.state, ChkState::Timeout);
        assert_eq!(sim.checks("sdc"), 1);
        let p = PathInfo {
            dev: "sdc".into(),
            ..Default::default()
        };
        assert_eq!(r.prio(&p, &PrioSpec::new("alua", ""), T).await.prio, -1);
        // The call returns: slot and mark are released, stuck count drops.
        sim.release("sdc");
        until(|| !r.is_in_flight("sdc")).await;
        assert_eq!(r.stats().stuck, 0);
        assert_eq!(
            r.check("sdc", CheckerKind::Tur, T).await.state,
            ChkState::Up
        );
        assert_eq!(sim.checks("sdc"), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stuck_calls_hold_their_slots() {
        let (sim, r) = runner(2);
        sim.hang("sda");
        sim.hang("sdb");
        assert_eq!(
            r.check("sda", CheckerKind::Tur, T).await.state,
            ChkState::Timeout
        );
        assert_eq!(
            r.check("sdb", CheckerKind::Tur, T).await.state,
            ChkState::Timeout
        );
        until(|| sim.hanging() == 2).await;
        // Pool exhausted: a healthy path waits for a slot, then is pending
        // (not timed out: nothing is known about it).
        let c = r.check("sdc", CheckerKind::Tur, T).await;
        assert_eq!(c.state, ChkState::Pending);
        assert_eq!(sim.checks("sdc"), 0);
        assert!(!r.is_in_flight("sdc"));
        assert_eq!(
            r.stats(),
            RunnerStats {
                slots: 2,
                in_flight: 2,
                stuck: 2
            }
        );
        sim.release("sda");
        until(|| r.stats().stuck == 1).await;
        assert_eq!(
            r.check("sdc", CheckerKind::Tur, T).await.state,
            ChkState::Up
        );
        sim.release("sdb");
        until(|| {
            r.stats()
                == RunnerStats {
                    slots: 2,
                    in_flight: 0,
                    stuck: 0,
                }
        })
        .await;
    }

    fn item(dev: &str, spec: Option<PrioSpec>) -> ChunkItem {
        ChunkItem {
            path: Arc::new(PathInfo {
                dev: dev.into(),
                ..PathInfo::default()
            }),
            checker: CheckerKind::Tur,
            spec,
            timeout: T,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunk_answers_every_item_in_order() {
        let (sim, r) = runner(1);
        sim.set_state("sdb", ChkState::Down);
        sim.set_prio("sda", 50);
        let spec = Some(PrioSpec::new("alua", ""));
        let out = r
            .check_chunk(vec![
                item("sda", spec.clone()),
                item("sdb", spec.clone()),
                item("sdc", None),
            ])
            .await;
        let got: Vec<(ChkState, Option<i32>)> = out
            .iter()
            .map(|(c, p)| (c.state, p.as_ref().map(|p| p.prio)))
            .collect();
        assert_eq!(
            got,
            vec![
                (ChkState::Up, Some(50)),
                (ChkState::Down, None),
                (ChkState::Up, None)
            ]
        );
        assert_eq!(r.stats().in_flight, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_item_times_out_and_the_rest_of_its_chunk_run_on_their_own() {
        let (sim, r) = runner(4);
        sim.hang("sdb");
        sim.set_state("sdd", ChkState::Down);
        let out = r
            .check_chunk(vec![
                item("sda", None),
                item("sdb", None),
                item("sdc", None),
                item("sdd", None),
            ])
            .await;
        let states: Vec<ChkState> = out.iter().map(|(c, _)| c.state).collect();
        assert_eq!(
            states,
            vec![
                ChkState::Up,
                ChkState::Timeout,
                ChkState::Up,
                ChkState::Down
            ],
            "the items after the hung one get real answers, not pending"
        );
        assert_eq!(sim.checks("sdc"), 1);
        assert!(!r.is_in_flight("sdc"));
        assert_eq!(r.stats().stuck, 1);
        // A path already in flight is answered without being run again.
        let again = r
            .check_chunk(vec![item("sdb", None), item("sda", None)])
            .await;
        assert_eq!(again[0].0.state, ChkState::Timeout);
        assert_eq!(again[1].0.state, ChkState::Up);
        assert_eq!(sim.checks("sdb"), 1);
        sim.release("sdb");
        until(|| r.stats().in_flight == 0).await;
        // The hung call's chunk does not go on to sdc once abandoned.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(sim.checks("sdc"), 1);
        assert_eq!(r.stats().stuck, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_item_gets_its_deadline_from_its_own_start() {
        // Each takes 60% of its deadline: together they outlast any one
        // deadline, yet every one answered in time.
        let (sim, r) = runner(1);
        for d in ["sda", "sdb", "sdc", "sdd"] {
            sim.set_delay(d, T * 6 / 10);
        }
        let out = r
            .check_chunk(vec![
                item("sda", None),
                item("sdb", None),
                item("sdc", None),
                item("sdd", None),
            ])
            .await;
        let states: Vec<ChkState> = out.iter().map(|(c, _)| c.state).collect();
        assert_eq!(states, vec![ChkState::Up; 4]);
        assert_eq!(r.stats().stuck, 0);
        assert_eq!(r.stats().in_flight, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_probe_fails_only_its_own_item() {
        let (sim, r) = runner(1);
        sim.panic_on("sdb");
        // Printing the panic's backtrace can take longer than T.
        let slow = |d: &str| ChunkItem {
            timeout: Duration::from_secs(10),
            ..item(d, None)
        };
        let out = r
            .check_chunk(vec![slow("sda"), slow("sdb"), slow("sdc")])
            .await;
        let states: Vec<ChkState> = out.iter().map(|(c, _)| c.state).collect();
        assert_eq!(states, vec![ChkState::Up, ChkState::Down, ChkState::Up]);
        assert_eq!(r.stats().in_flight, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_of_many_paths() {
        let (sim, r) = runner(3);
        for i in 0..20 {
            sim.set_state(
                &format!("sd{i}"),
                if i % 2 == 0 {
                    ChkState::Up
                } else {
                    ChkState::Down
                },
            );
        }
        let futs = (0..20).map(|i| {
            let r = r.clone();
            async move {
                (
                    i,
                    r.check(&format!("sd{i}"), CheckerKind::Tur, Duration::from_secs(5))
                        .await,
                )
            }
        });
        for (i, res) in futures::future::join_all(futs).await {
            let want = if i % 2 == 0 {
                ChkState::Up
            } else {
                ChkState::Down
            };
            assert_eq!(res.state, want, "sd{i}");
        }
        assert_eq!(r.stats().in_flight, 0);
    }
}
