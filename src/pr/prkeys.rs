//! The prkeys file (`/etc/multipath/prkeys`), shared with multipath-tools:
//! one `0x<16 hex digits> <wwid>` line per map whose key is set with
//! `setprkey` (`0X` when the key was registered with APTPL). A key that is
//! unset has its line commented out, as multipath-tools does, so either
//! program reads what the other wrote.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::PrKey;

pub const HEADER: &str = "# Multipath persistent reservation keys, Version : 1.0\n\
# NOTE: this file is automatically maintained by the multipathd program.\n\
# You should not need to edit this file in normal circumstances.\n\
#\n\
# Format:\n\
# prkey wwid\n\
#\n";

pub const DEFAULT_PATH: &str = "/etc/multipath/prkeys";

/// The key as the file holds it: fixed width, the `X`'s case is APTPL.
fn file_form(k: PrKey) -> String {
    if k.aptpl {
        format!("0X{:016x}", k.key)
    } else {
        format!("0x{:016x}", k.key)
    }
}

/// A line's (key, wwid), or None for comments, blanks and lines that do
/// not hold a key multipath-tools would read.
fn entry(line: &str) -> Option<(PrKey, &str)> {
    if line.starts_with('#') {
        return None;
    }
    let (key, wwid) = line.split_once(' ')?;
    let wwid = wwid.trim_end();
    if key.len() != 18 || wwid.is_empty() || wwid.contains(char::is_whitespace) {
        return None;
    }
    let mut k: PrKey = key.parse().ok()?;
    k.aptpl = key.starts_with("0X");
    Some((k, wwid))
}

/// Every key in the file's text, by WWID (a later line wins).
pub fn parse(text: &str) -> BTreeMap<String, PrKey> {
    text.lines()
        .filter_map(entry)
        .map(|(k, w)| (w.to_string(), k))
        .collect()
}

/// The file's text with `wwid`'s key set (Some) or unset (None): a live
/// line is rewritten in place or commented out; a new key is appended.
pub fn update(text: &str, wwid: &str, key: Option<PrKey>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    if text.is_empty() {
        out.push_str(HEADER);
    }
    let mut done = false;
    for line in text.lines() {
        match entry(line) {
            Some((_, w)) if w == wwid => {
                match key {
                    Some(k) if !done => out.push_str(&format!("{} {wwid}", file_form(k))),
                    _ => {
                        out.push('#');
                        out.push_str(&line[1..]);
                    }
                }
                done = true;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    if let (Some(k), false) = (key, done) {
        out.push_str(&format!("{} {wwid}\n", file_form(k)));
    }
    out
}

/// The prkeys file on disk.
#[derive(Debug, Clone)]
pub struct PrKeysFile {
    path: PathBuf,
}

impl PrKeysFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PrKeysFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All keys; a missing file holds none.
    pub fn load(&self) -> std::io::Result<BTreeMap<String, PrKey>> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(parse(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// Set or unset one map's key. The new text replaces the old in one
    /// rename, so a reader never sees half a file.
    pub fn set(&self, wwid: &str, key: Option<PrKey>) -> std::io::Result<()> {
        let old = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let new = update(&old, wwid, key);
        if new == old {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("mpathd-tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(new.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const W1: &str = "36001405c0ffee0000000000000000000";
    const W2: &str = "3600a0b80000000000000000000000001";

    fn key(k: u64, aptpl: bool) -> PrKey {
        PrKey { key: k, aptpl }
    }

    #[test]
    fn written_as_multipath_tools_writes() {
        let t = update("", W1, Some(key(0xabc, false)));
        assert!(t.starts_with(HEADER));
        assert!(t.ends_with(&format!("0x0000000000000abc {W1}\n")));
        let t = update(&t, W2, Some(key(0x1, true)));
        assert!(t.ends_with(&format!("0X0000000000000001 {W2}\n")));
        let keys = parse(&t);
        assert_eq!(keys[W1], key(0xabc, false));
        assert_eq!(keys[W2], key(1, true));
    }

    #[test]
    fn set_rewrites_in_place_and_unset_comments_out() {
        let t = update(
            &update("", W1, Some(key(1, false))),
            W2,
            Some(key(2, false)),
        );
        let t = update(&t, W1, Some(key(3, false)));
        assert_eq!(t.matches(W1).count(), 1);
        assert_eq!(parse(&t)[W1], key(3, false));
        let t = update(&t, W1, None);
        assert!(t.contains(&format!("#x0000000000000003 {W1}\n")));
        assert!(!parse(&t).contains_key(W1));
        assert_eq!(parse(&t)[W2], key(2, false));
        // Unsetting what is not there changes nothing.
        assert_eq!(update(&t, W1, None), t);
    }

    #[test]
    fn odd_lines_are_skipped_not_fatal() {
        let t = format!(
            "{HEADER}garbage\n0x1 {W1}\n0x00000000000000zz {W2}\n\n0x0000000000000007 {W2}\n"
        );
        let keys = parse(&t);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[W2], key(7, false));
    }

    #[test]
    fn file_round_trip() {
        let dir = std::env::temp_dir().join(format!("mpathd-prkeys-{}", std::process::id()));
        let f = PrKeysFile::new(dir.join("prkeys"));
        assert!(f.load().unwrap().is_empty());
        f.set(W1, Some(key(0x42, true))).unwrap();
        assert_eq!(f.load().unwrap()[W1], key(0x42, true));
        f.set(W1, None).unwrap();
        assert!(f.load().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
