//! What a host's I/O feels during a failover: reads a block device with
//! O_DIRECT, 4 KiB at a time, for a given time, and reports the longest
//! gap between two completed reads (the stall) and the failed reads.
//!
//! `stall_reader DEV SECONDS [--mark FILE]`: prints one line
//! `reads=N errors=E max_stall_ms=M stall_start_s=S` when done. A read in
//! flight when the time is up is waited for, so a stall longer than the
//! run is measured whole. The wait for the first read is the reader's own
//! start (open, first I/O on a fresh map), not a stall; if no read ever
//! completes, the whole run is one. With `--mark FILE`, the time of each
//! failed read's error is appended to FILE (seconds since start).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::{Duration, Instant};

const BLOCK: usize = 4096;
/// Spread reads over the first MiBs so they are not all one cached sector
/// on the target side (O_DIRECT bypasses only the initiator's cache).
const SPAN_BLOCKS: u64 = 256;

fn main() {
    if let Err(e) = run() {
        eprintln!("stall_reader: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dev, secs) = match (args.first(), args.get(1).map(|s| s.parse::<u64>())) {
        (Some(d), Some(Ok(s))) => (d.clone(), s),
        _ => return Err("usage: stall_reader DEV SECONDS [--mark FILE]".into()),
    };
    let mark = match args.get(2).map(String::as_str) {
        Some("--mark") => Some(args.get(3).ok_or("--mark needs a file")?.clone()),
        Some(o) => return Err(format!("unknown argument {o}")),
        None => None,
    };
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&dev)
        .map_err(|e| format!("{dev}: {e}"))?;
    // O_DIRECT wants a block-aligned buffer.
    let layout = std::alloc::Layout::from_size_align(BLOCK, BLOCK).map_err(|e| e.to_string())?;
    // SAFETY: layout has a non-zero size; the buffer is freed at the end.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err("out of memory".into());
    }
    // SAFETY: ptr is valid for BLOCK bytes and only used through buf.
    let buf = unsafe { std::slice::from_raw_parts_mut(ptr, BLOCK) };
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let (mut reads, mut errors) = (0u64, 0u64);
    // When the last read completed; None until the first one has.
    let mut last: Option<Instant> = None;
    let (mut max_stall, mut stall_start) = (Duration::ZERO, Duration::ZERO);
    let mut n = 0u64;
    while Instant::now() < until {
        let r = f.read_at(buf, (n % SPAN_BLOCKS) * BLOCK as u64);
        n += 1;
        let now = Instant::now();
        match r {
            Ok(_) => {
                reads += 1;
                if let Some(l) = last.filter(|&l| now - l > max_stall) {
                    max_stall = now - l;
                    stall_start = l - start;
                }
                last = Some(now);
            }
            Err(e) => {
                errors += 1;
                if let Some(m) = &mark {
                    let mut o = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(m)
                        .map_err(|e| format!("{m}: {e}"))?;
                    let _ = writeln!(o, "{:.3} {e}", (now - start).as_secs_f64());
                }
                // A failing device answers at once: don't spin.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // A stall still open at the end counts too.
    let from = last.unwrap_or(start);
    let tail = Instant::now() - from;
    if tail > max_stall {
        max_stall = tail;
        stall_start = from - start;
    }
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(ptr, layout) };
    println!(
        "reads={reads} errors={errors} max_stall_ms={} stall_start_s={:.1}",
        max_stall.as_millis(),
        stall_start.as_secs_f64()
    );
    Ok(())
}
