//! Replays the coverage-guided fuzzer's kept corpora
//! (`tests/fuzz/corpus/<target>/`) through the fuzz targets: each input
//! once, so a parser change that breaks on an input the fuzzer found
//! interesting shows here, in every `cargo test`, without libFuzzer.

#[path = "fuzz/targets.rs"]
mod targets;

#[test]
fn corpora_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in targets::TARGETS {
        for seed in targets::seeds(name) {
            target(&seed);
        }
        let Ok(entries) = std::fs::read_dir(dir.join(name)) else {
            continue;
        };
        for e in entries.flatten() {
            let input = std::fs::read(e.path()).expect("corpus file");
            if std::env::var_os("MPATHD_CORPUS_TRACE").is_some() {
                eprintln!("{name}: {}", e.path().display());
            }
            let r = std::panic::catch_unwind(|| target(&input));
            assert!(r.is_ok(), "{name}: {} panics", e.path().display());
            replayed += 1;
        }
    }
    println!("replayed {replayed} corpus inputs");
}
