#![allow(clippy::unwrap_used)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_path_says_why_a_job_has_no_result() {
    let (_, r) = runner(2);
    assert_eq!(r.run_on_path("sda", T, || 7).await.unwrap(), 7);
    // A job that outlives its timeout keeps the path in flight.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let e = r
        .run_on_path("sda", T, move || rx.recv().is_ok())
        .await
        .unwrap_err();
    assert!(matches!(e, PathJobError::Timeout(t) if t == T), "{e:?}");
    assert_eq!(e.to_string(), "no answer in 100 ms");
    let e = r.run_on_path("sda", T, || ()).await.unwrap_err();
    assert!(matches!(e, PathJobError::Busy), "{e:?}");
    assert_eq!(e.to_string(), "the path is busy");
    drop(tx);
    until(|| r.stats().in_flight == 0).await;
    // Printing the panic's backtrace can take longer than T.
    let e = r
        .run_on_path::<(), _>("sdb", Duration::from_secs(10), || {
            panic!("scripted job panic")
        })
        .await
        .unwrap_err();
    assert!(matches!(e, PathJobError::Failed(_)), "{e:?}");
    assert!(e.to_string().starts_with("checker call failed: "), "{e}");
}
