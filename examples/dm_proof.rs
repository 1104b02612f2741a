//! Guest proof that device-mapper multipath works from Rust through the
//! `devicemapper` crate: build a multipath map over two paths of one LUN,
//! read through it, fail and reinstate paths by target message, remove it.
//!
//! Run in the test guest (tests/vm/cases/rig/10-dm-proof.sh):
//!   dm_proof [--name NAME] [--wwid WWID] [--keep] PATH1 PATH2
//! PATH is a block device such as /dev/sdb or sdb. Exits 0 only if every
//! check passed; prints one line per check.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use clap::Parser;
use devicemapper::{DevId, DmFlags, DmName, DmOptions, DmUuid, DM};

#[derive(Parser)]
#[command(about = "Prove dm-multipath from Rust on two paths of one LUN")]
struct Args {
    /// Name of the map to create (under /dev/mapper).
    #[arg(long, default_value = "dmproof")]
    name: String,
    /// WWID of the LUN; the map's DM uuid becomes mpath-<WWID>.
    #[arg(long, default_value = "dmproof")]
    wwid: String,
    /// Leave the map in place at the end (for a demo to inspect).
    #[arg(long)]
    keep: bool,
    /// The two paths (block devices) of one LUN.
    #[arg(num_args = 2, required = true)]
    paths: Vec<String>,
}

type Res<T> = Result<T, String>;

/// One path as the kernel knows it.
struct PathDev {
    name: String,
    majmin: String,
}

fn path_dev(arg: &str) -> Res<PathDev> {
    let name = arg.trim_start_matches("/dev/").to_string();
    let sys = format!("/sys/block/{name}/dev");
    let majmin = std::fs::read_to_string(&sys)
        .map_err(|e| format!("{sys}: {e}"))?
        .trim()
        .to_string();
    Ok(PathDev { name, majmin })
}

fn sectors_of(dev: &PathDev) -> Res<u64> {
    let sys = format!("/sys/block/{}/size", dev.name);
    let text = std::fs::read_to_string(&sys).map_err(|e| format!("{sys}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{sys}: bad size {:?}: {e}", text.trim()))
}

/// Words of a status line, with errors that name what was expected.
struct Words<'a> {
    line: &'a str,
    words: std::str::SplitWhitespace<'a>,
}

impl<'a> Words<'a> {
    fn word(&mut self, what: &str) -> Res<&'a str> {
        let line = self.line;
        self.words
            .next()
            .ok_or_else(|| format!("status ends before {what}: {line:?}"))
    }

    fn num(&mut self, what: &str) -> Res<usize> {
        let w = self.word(what)?;
        w.parse()
            .map_err(|e| format!("bad {what} {w:?} in {:?}: {e}", self.line))
    }

    /// Skips a count followed by that many words.
    fn skip_counted(&mut self, what: &str) -> Res<()> {
        for _ in 0..self.num(what)? {
            self.word(what)?;
        }
        Ok(())
    }
}

/// Path states (maj:min, 'A' or 'F') from a multipath status line, following
/// the grammar of the kernel's dm-mpath: features, hwhandler, groups, paths.
fn path_states(status: &str) -> Res<Vec<(String, char)>> {
    let mut w = Words {
        line: status,
        words: status.split_whitespace(),
    };
    w.skip_counted("features")?;
    w.skip_counted("hwhandler")?;
    let nr_pg = w.num("nr_pg")?;
    w.word("next_pg")?;
    let mut out = Vec::new();
    for _ in 0..nr_pg {
        w.word("group state")?;
        w.skip_counted("selector args")?;
        let nr_paths = w.num("nr_paths")?;
        let per_path_args = w.num("per-path arg count")?;
        for _ in 0..nr_paths {
            let majmin = w.word("path")?.to_string();
            let state = match w.word("path state")? {
                "A" => 'A',
                "F" => 'F',
                other => return Err(format!("bad path state {other:?} in {status:?}")),
            };
            w.word("fail count")?;
            for _ in 0..per_path_args {
                w.word("selector path arg")?;
            }
            out.push((majmin, state));
        }
    }
    Ok(out)
}

/// Reads 1 MiB with O_DIRECT so the I/O really goes down a path.
fn direct_read(dev: &Path) -> Res<()> {
    #[repr(align(4096))]
    struct Block([u8; 65536]);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev)
        .map_err(|e| format!("open {}: {e}", dev.display()))?;
    let mut buf = Box::new(Block([0; 65536]));
    for _ in 0..16 {
        f.read_exact(&mut buf.0)
            .map_err(|e| format!("read {}: {e}", dev.display()))?;
    }
    Ok(())
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Res<()> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        sleep(Duration::from_millis(200));
    }
    Ok(())
}

struct Proof<'a> {
    dm: DM,
    start: Instant,
    name: &'a DmName,
    failures: usize,
}

impl Proof<'_> {
    fn id(&self) -> DevId<'_> {
        DevId::Name(self.name)
    }

    fn check(&mut self, what: &str, result: Res<String>) {
        let t = self.start.elapsed().as_secs_f32();
        match result {
            Ok(detail) if detail.is_empty() => println!("[{t:5.1}s] ok: {what}"),
            Ok(detail) => println!("[{t:5.1}s] ok: {what}: {detail}"),
            Err(e) => {
                println!("[{t:5.1}s] FAILED: {what}: {e}");
                self.failures += 1;
            }
        }
    }

    fn status(&self, table: bool) -> Res<String> {
        let opts = if table {
            DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE)
        } else {
            DmOptions::default()
        };
        let (_, lines) = self
            .dm
            .table_status(&self.id(), opts)
            .map_err(|e| format!("table_status: {e}"))?;
        match lines.as_slice() {
            [(_, _, target, params)] if target == "multipath" => Ok(params.clone()),
            other => Err(format!("expected one multipath target, got {other:?}")),
        }
    }

    fn states(&self) -> Res<Vec<(String, char)>> {
        path_states(&self.status(false)?)
    }

    fn expect_states(&self, want: &[(&str, char)]) -> Res<String> {
        let got = self.states()?;
        for (majmin, state) in want {
            match got.iter().find(|(m, _)| m == majmin) {
                Some((_, s)) if s == state => {}
                Some((_, s)) => return Err(format!("path {majmin} is {s}, expected {state}")),
                None => return Err(format!("path {majmin} not in status {got:?}")),
            }
        }
        Ok(format!("{got:?}"))
    }

    fn message(&self, msg: &str) -> Res<String> {
        self.dm
            .target_msg(&self.id(), None, msg)
            .map(|_| String::new())
            .map_err(|e| format!("target_msg {msg:?}: {e}"))
    }
}

fn run(args: &Args) -> Res<usize> {
    let [p1, p2] = match args.paths.as_slice() {
        [a, b] => [path_dev(a)?, path_dev(b)?],
        _ => return Err("give exactly two paths".into()),
    };
    let sectors = sectors_of(&p1)?;
    if sectors != sectors_of(&p2)? {
        return Err(format!("{} and {} differ in size", p1.name, p2.name));
    }
    let name = DmName::new(&args.name).map_err(|e| format!("map name: {e}"))?;
    let uuid_text = format!("mpath-{}", args.wwid);
    let uuid = DmUuid::new(&uuid_text).map_err(|e| format!("map uuid: {e}"))?;
    let dm = DM::new().map_err(|e| format!("open /dev/mapper/control: {e}"))?;
    let mut p = Proof {
        dm,
        start: Instant::now(),
        name,
        failures: 0,
    };
    let table = format!("0 0 1 1 service-time 0 2 1 {} 1 {} 1", p1.majmin, p2.majmin);
    println!("table: 0 {sectors} multipath {table}");

    p.dm.device_create(name, Some(uuid), DmOptions::default())
        .map_err(|e| format!("device_create {name}: {e}"))?;
    let loaded =
        p.dm.table_load(
            &p.id(),
            &[(0, sectors, "multipath".to_string(), table.clone())],
            DmOptions::default(),
        )
        .map(|_| String::new())
        .map_err(|e| format!("{e}"));
    p.check("table_load", loaded);
    // Resume with no udev flags: DmDevice::resume() would pass
    // DmOptions::private(), which tells udev to skip the disk and other rules
    // (no by-id links, no kpartx) that a multipath map needs.
    let resumed =
        p.dm.device_suspend(&p.id(), DmOptions::default())
            .map(|_| String::new())
            .map_err(|e| format!("{e}"));
    p.check("resume", resumed);

    let mapper = PathBuf::from(format!("/dev/mapper/{}", args.name));
    let by_uuid = PathBuf::from(format!("/dev/disk/by-id/dm-uuid-{uuid_text}"));
    let r = wait_until("udev links", Duration::from_secs(60), || {
        mapper.exists() && by_uuid.exists()
    })
    .map(|_| format!("{} and {}", mapper.display(), by_uuid.display()));
    p.check("udev created the map's links", r);

    let r = p.status(true).and_then(|t| {
        if t.contains(&p1.majmin) && t.contains(&p2.majmin) {
            Ok(t)
        } else {
            Err(format!("table {t:?} lacks a path"))
        }
    });
    p.check("table reads back", r);
    let r = p.expect_states(&[(&p1.majmin, 'A'), (&p2.majmin, 'A')]);
    p.check("both paths active", r);
    p.check(
        "read through the map",
        direct_read(&mapper).map(|_| String::new()),
    );

    let r = p.message(&format!("fail_path {}", p1.majmin));
    p.check("fail_path message", r);
    let r = p.expect_states(&[(&p1.majmin, 'F'), (&p2.majmin, 'A')]);
    p.check("first path failed in status", r);
    p.check(
        "read with one path failed",
        direct_read(&mapper).map(|_| String::new()),
    );

    let r = p.message(&format!("fail_path {}", p2.majmin));
    p.check("fail second path", r);
    // No queue_if_no_path: with every path failed the read must fail.
    let r = match direct_read(&mapper) {
        Ok(()) => Err("read succeeded with no usable path".to_string()),
        Err(e) => Ok(e),
    };
    p.check("read fails with all paths failed", r);

    for dev in [&p1, &p2] {
        let r = p.message(&format!("reinstate_path {}", dev.majmin));
        p.check("reinstate_path message", r);
    }
    let r = p.expect_states(&[(&p1.majmin, 'A'), (&p2.majmin, 'A')]);
    p.check("paths reinstated in status", r);
    p.check(
        "read after reinstate",
        direct_read(&mapper).map(|_| String::new()),
    );

    if args.keep {
        println!("keeping map {}", args.name);
    } else {
        // udev may still hold the map open (blkid after the resume event):
        // retry for a while as multipathd does.
        let mut removed = Err(String::new());
        for _ in 0..20 {
            removed =
                p.dm.device_remove(&p.id(), DmOptions::default())
                    .map(|_| ())
                    .map_err(|e| format!("{e}"));
            if removed.is_ok() {
                break;
            }
            sleep(Duration::from_millis(500));
        }
        let r = removed
            .and_then(|_| {
                wait_until("the map's udev link to go", Duration::from_secs(60), || {
                    !mapper.exists()
                })
            })
            .map(|_| String::new());
        p.check("map removed", r);
    }
    Ok(p.failures)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => {
            println!("dm_proof: all checks passed");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("dm_proof: {n} check(s) failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("dm_proof: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_states;

    #[test]
    fn parses_service_time_status() {
        let s = "0 0 1 1 A 0 2 2 8:0 A 0 0 1 8:16 F 1 0 1";
        let want = vec![("8:0".to_string(), 'A'), ("8:16".to_string(), 'F')];
        assert_eq!(path_states(s), Ok(want));
    }

    #[test]
    fn rejects_truncated_status() {
        assert!(path_states("0 0 1 1 A 0 2 2 8:0").is_err());
    }
}
