//! libFuzzer entry: MPATHD_FUZZ_TARGET names the target of ../targets.rs.
//! With MPATHD_FUZZ_SEEDS=DIR it writes that target's valid samples into
//! DIR (a new corpus) and exits.

#![no_main]

#[path = "../targets.rs"]
mod targets;

use std::sync::OnceLock;

static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();

fn chosen() -> fn(&[u8]) {
    let name = std::env::var("MPATHD_FUZZ_TARGET").unwrap_or_default();
    let Some(target) = targets::by_name(&name) else {
        let names: Vec<_> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("MPATHD_FUZZ_TARGET must be one of: {}", names.join(" "));
        std::process::exit(2);
    };
    if let Ok(dir) = std::env::var("MPATHD_FUZZ_SEEDS") {
        for (i, seed) in targets::seeds(&name).iter().enumerate() {
            let path = std::path::Path::new(&dir).join(format!("seed-{i}"));
            if let Err(e) = std::fs::write(&path, seed) {
                eprintln!("{}: {e}", path.display());
                std::process::exit(2);
            }
        }
        std::process::exit(0);
    }
    target
}

libfuzzer_sys::fuzz_target!(init: { TARGET.get_or_init(chosen); }, |data: &[u8]| {
    (TARGET.get_or_init(chosen))(data)
});
