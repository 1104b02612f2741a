//! Checksummed direct I/O for the flap suite: what a storage host's data
//! must survive. Each 4 KiB block written carries its block number, a
//! generation and a checksum of the rest; the writer remembers the last
//! generation the kernel acknowledged for every block and the verifier
//! reads the device back against that journal.
//!
//! `integrity_io write DEV SECONDS BLOCKS JOURNAL [STOPFILE]`: O_DIRECT
//! writes of random blocks among the first BLOCKS, for SECONDS or until
//! STOPFILE exists (checked between writes); prints
//! `writes=N errors=E max_stall_ms=M` and writes JOURNAL (`block gen`
//! lines, acknowledged writes only). With `INTEGRITY_ERRLOG=FILE` in the
//! environment, the wall-clock time (Unix ms) each failed write returned
//! is written to FILE, a line each, so a test can tell when I/O failed.
//! `integrity_io verify DEV BLOCKS JOURNAL`: prints `blocks=N
//! mismatched=M unreadable=U`; exit 1 when any block is wrong.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::{Duration, Instant};

const BLOCK: usize = 4096;
const MAGIC: u64 = 0x6d70_6174_6864_2121; // "mpathd!!"

/// 4 KiB aligned buffer for O_DIRECT.
#[repr(C, align(4096))]
struct Aligned([u8; BLOCK]);

/// FNV-1a: enough to tell a torn or stale block from the one written.
fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

fn fill(buf: &mut [u8; BLOCK], block: u64, gen: u64) {
    let mut x = block.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ gen;
    for c in buf[32..].chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes());
    }
    buf[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    buf[8..16].copy_from_slice(&block.to_le_bytes());
    buf[16..24].copy_from_slice(&gen.to_le_bytes());
    let sum = checksum(&buf[32..]);
    buf[24..32].copy_from_slice(&sum.to_le_bytes());
}

/// The (block, gen) a block holds, or None when it is not one we wrote
/// whole.
fn parse(buf: &[u8; BLOCK]) -> Option<(u64, u64)> {
    let word = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().unwrap_or([0; 8]));
    (word(0) == MAGIC && word(24) == checksum(&buf[32..])).then(|| (word(8), word(16)))
}

fn open(dev: &str, write: bool) -> Result<std::fs::File, String> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT)
        .open(dev)
        .map_err(|e| format!("{dev}: {e}"))
}

fn write(
    dev: &str,
    secs: u64,
    blocks: u64,
    journal: &str,
    stop: Option<&str>,
) -> Result<(), String> {
    let f = open(dev, true)?;
    let mut acked = vec![0u64; blocks as usize];
    let mut buf = Box::new(Aligned([0; BLOCK]));
    let (mut writes, mut errors, mut gen) = (0u64, 0u64, 0u64);
    let mut max_stall = Duration::ZERO;
    let mut failed_at: Vec<u128> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs)
        && !stop.is_some_and(|s| std::path::Path::new(s).exists())
    {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let block = rng % blocks;
        gen += 1;
        fill(&mut buf.0, block, gen);
        let t = Instant::now();
        match f.write_at(&buf.0, block * BLOCK as u64) {
            Ok(n) if n == BLOCK => {
                writes += 1;
                acked[block as usize] = gen;
            }
            // A failed write may or may not have reached the medium: the
            // block's content is then either generation, and the journal
            // keeps both candidates apart by marking it unknown.
            _ => {
                errors += 1;
                acked[block as usize] = u64::MAX;
                failed_at.push(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0),
                );
            }
        }
        max_stall = max_stall.max(t.elapsed());
    }
    let mut j = std::fs::File::create(journal).map_err(|e| format!("{journal}: {e}"))?;
    for (b, g) in acked.iter().enumerate() {
        writeln!(j, "{b} {g}").map_err(|e| e.to_string())?;
    }
    if let Ok(path) = std::env::var("INTEGRITY_ERRLOG") {
        let text: String = failed_at.iter().map(|t| format!("{t}\n")).collect();
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    println!(
        "writes={writes} errors={errors} max_stall_ms={}",
        max_stall.as_millis()
    );
    Ok(())
}

fn verify(dev: &str, blocks: u64, journal: &str) -> Result<bool, String> {
    let f = open(dev, false)?;
    let text = std::fs::read_to_string(journal).map_err(|e| format!("{journal}: {e}"))?;
    let mut buf = Box::new(Aligned([0; BLOCK]));
    let (mut mismatched, mut unreadable, mut checked) = (0u64, 0u64, 0u64);
    for line in text.lines() {
        let mut w = line.split_whitespace().map(|x| x.parse::<u64>());
        let (Some(Ok(b)), Some(Ok(g))) = (w.next(), w.next()) else {
            return Err(format!("{journal}: bad line {line:?}"));
        };
        if b >= blocks || g == 0 || g == u64::MAX {
            continue; // never written, or its last write failed
        }
        checked += 1;
        match f.read_at(&mut buf.0, b * BLOCK as u64) {
            Ok(n) if n == BLOCK => {
                if parse(&buf.0) != Some((b, g)) {
                    mismatched += 1;
                    if mismatched <= 5 {
                        eprintln!(
                            "block {b}: expected generation {g}, found {:?}",
                            parse(&buf.0)
                        );
                    }
                }
            }
            _ => unreadable += 1,
        }
    }
    println!("blocks={checked} mismatched={mismatched} unreadable={unreadable}");
    Ok(mismatched == 0 && unreadable == 0)
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| a.get(i).and_then(|s| s.parse::<u64>().ok());
    let r = match (a.first().map(String::as_str), a.get(1)) {
        (Some("write"), Some(dev)) => match (num(2), num(3), a.get(4)) {
            (Some(s), Some(n), Some(j)) if n > 0 => {
                write(dev, s, n, j, a.get(5).map(String::as_str)).map(|()| true)
            }
            _ => Err("usage: integrity_io write DEV SECONDS BLOCKS JOURNAL [STOPFILE]".into()),
        },
        (Some("verify"), Some(dev)) => match (num(2), a.get(3)) {
            (Some(n), Some(j)) => verify(dev, n, j),
            _ => Err("usage: integrity_io verify DEV BLOCKS JOURNAL".into()),
        },
        _ => Err("usage: integrity_io write|verify ...".into()),
    };
    match r {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("integrity_io: {e}");
            std::process::exit(2);
        }
    }
}
