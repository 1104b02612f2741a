//! The wwids file (`/etc/multipath/wwids`): WWIDs that have been
//! multipathed before, one `/WWID/` a line, in multipath-tools' format so
//! both tools can share it. find_multipaths strict/yes/smart consult it.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

use super::identity::validate_wwid;

pub const DEFAULT_WWIDS_FILE: &str = "/etc/multipath/wwids";

/// The header multipath-tools writes.
pub const WWIDS_HEADER: &str = "\
# Multipath wwids, Version : 1.0
# NOTE: This file is automatically maintained by multipath and multipathd.
# You should not need to edit this file in normal circumstances.
#
# Valid WWIDs:
";

/// A parsed wwids file: WWIDs in file order (no duplicates) and the lines
/// that were skipped, each with its number and the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wwids {
    pub wwids: Vec<String>,
    pub problems: Vec<String>,
}

impl Wwids {
    pub fn contains(&self, wwid: &str) -> bool {
        self.wwids.iter().any(|w| w == wwid)
    }

    pub fn to_set(&self) -> BTreeSet<String> {
        self.wwids.iter().cloned().collect()
    }
}

/// Parses the file's text. `#` lines and blank lines are comments; every
/// other line must be `/WWID/` (trailing text after the closing slash is
/// ignored, as multipath-tools does).
pub fn parse_wwids(text: &str) -> Wwids {
    let mut out = Wwids::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some(rest) = l.strip_prefix('/') else {
            out.problems
                .push(format!("line {n}: does not start with '/'"));
            continue;
        };
        let Some((wwid, _)) = rest.split_once('/') else {
            out.problems.push(format!("line {n}: no closing '/'"));
            continue;
        };
        match validate_wwid(wwid) {
            Ok(w) if w == wwid => {
                if !out.contains(w) {
                    out.wwids.push(w.to_string());
                }
            }
            Ok(_) => out
                .problems
                .push(format!("line {n}: WWID has surrounding blanks")),
            Err(e) => out.problems.push(format!("line {n}: WWID {e}")),
        }
    }
    out
}

/// The file's text for these WWIDs.
pub fn render_wwids<'a>(wwids: impl IntoIterator<Item = &'a String>) -> String {
    let mut s = String::from(WWIDS_HEADER);
    for w in wwids {
        s.push('/');
        s.push_str(w);
        s.push_str("/\n");
    }
    s
}

/// The wwids file at a configurable place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WwidsFile {
    path: PathBuf,
}

impl Default for WwidsFile {
    fn default() -> Self {
        WwidsFile::new(DEFAULT_WWIDS_FILE)
    }
}

impl WwidsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        WwidsFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::io(self.path.display().to_string(), e)
    }

    /// Reads the file; a missing file is an empty list.
    pub fn read(&self) -> Result<Wwids> {
        match fs::read(&self.path) {
            Ok(b) => Ok(parse_wwids(&String::from_utf8_lossy(&b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Wwids::default()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Adds `wwid` (no-op if present). Returns whether the file changed.
    pub fn add(&self, wwid: &str) -> Result<bool> {
        let w = validate_wwid(wwid).map_err(|e| {
            Error::Other(format!(
                "cannot add WWID '{wwid}' to {}: {e}",
                self.path.display()
            ))
        })?;
        let mut cur = self.read()?;
        if cur.contains(w) {
            return Ok(false);
        }
        cur.wwids.push(w.to_string());
        self.write_all(&cur.wwids)?;
        Ok(true)
    }

    /// Removes `wwid`. Returns whether it was there.
    pub fn remove(&self, wwid: &str) -> Result<bool> {
        let mut cur = self.read()?;
        let before = cur.wwids.len();
        cur.wwids.retain(|w| w != wwid.trim());
        if cur.wwids.len() == before {
            return Ok(false);
        }
        self.write_all(&cur.wwids)?;
        Ok(true)
    }

    /// Replaces the whole list (what `multipath -W` does).
    pub fn replace_all(&self, wwids: &[String]) -> Result<()> {
        for w in wwids {
            validate_wwid(w).map_err(|e| Error::Other(format!("WWID '{w}': {e}")))?;
        }
        self.write_all(wwids)
    }

    /// Writes through a temporary file in the same directory and renames it
    /// over the old one, so a crash leaves either the old or the new list.
    /// Comment lines other than the header are not kept.
    fn write_all(&self, wwids: &[String]) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "wwids".into());
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let res = (|| -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(render_wwids(wwids).as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // Make the rename itself durable.
            fs::File::open(&dir)?.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(self.io(e));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mpathd-wwids-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn parses_multipath_tools_file_and_reports_garbage() {
        let text = format!(
            "{WWIDS_HEADER}/3600a098038303053453f463045727a41/\n\
             /36001405a1b2c3/ trailing\n\
             garbage line\n\
             /noclose\n\
             /3600a098038303053453f463045727a41/\n\
             //\n\
             \n   # indented comment\n"
        );
        let w = parse_wwids(&text);
        assert_eq!(
            w.wwids,
            ["3600a098038303053453f463045727a41", "36001405a1b2c3"]
        );
        assert_eq!(
            w.problems,
            [
                "line 8: does not start with '/'",
                "line 9: no closing '/'",
                "line 11: WWID empty"
            ]
        );
    }

    #[test]
    fn round_trip_add_remove_atomic() {
        let dir = tmpdir("rt");
        let f = WwidsFile::new(dir.join("multipath/wwids"));
        assert_eq!(f.read().unwrap(), Wwids::default(), "missing file is empty");
        assert!(f.add("3600a0b8000001").unwrap());
        assert!(!f.add("3600a0b8000001").unwrap());
        assert!(f.add("1Linux_scsi_debug_2000").unwrap());
        let text = fs::read_to_string(f.path()).unwrap();
        assert_eq!(
            text,
            format!("{WWIDS_HEADER}/3600a0b8000001/\n/1Linux_scsi_debug_2000/\n")
        );
        assert!(f.read().unwrap().contains("1Linux_scsi_debug_2000"));
        assert!(f.remove("3600a0b8000001").unwrap());
        assert!(!f.remove("3600a0b8000001").unwrap());
        assert_eq!(f.read().unwrap().wwids, ["1Linux_scsi_debug_2000"]);
        assert!(f.add("bad/wwid").is_err());
        assert!(f.add("").is_err());
        f.replace_all(&["3a".into(), "3b".into()]).unwrap();
        assert_eq!(f.read().unwrap().wwids, ["3a", "3b"]);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(dir.join("multipath"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["wwids"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let dir = tmpdir("dir");
        fs::create_dir_all(dir.join("wwids")).unwrap();
        let e = WwidsFile::new(dir.join("wwids"))
            .read()
            .unwrap_err()
            .to_string();
        assert!(e.contains("wwids"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
