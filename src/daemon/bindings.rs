//! The user_friendly_names bindings file, in multipath-tools' format so
//! both can share it: a header, then `alias wwid` lines.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

const HEADER: &str = "# Multipath bindings, Version : 1.0\n\
# NOTE: this file is automatically maintained by the multipath program.\n\
# You should not need to edit this file in normal circumstances.\n\
#\n\
# Format:\n\
# alias wwid\n\
#\n";

/// Parse bindings text into (alias, WWID) pairs; malformed lines are
/// returned separately with their line numbers so they can be reported.
pub fn parse_bindings(text: &str) -> (Vec<(String, String)>, Vec<usize>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(a), Some(w), None) => out.push((a.to_string(), w.to_string())),
            _ => bad.push(i + 1),
        }
    }
    (out, bad)
}

pub struct BindingsFile {
    path: PathBuf,
}

impl BindingsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        BindingsFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bindings now in the file (a missing file is empty).
    pub fn read(&self) -> Result<Vec<(String, String)>> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => {
                let (b, bad) = parse_bindings(&t);
                for line in bad {
                    tracing::warn!(file = %self.path.display(), line, "malformed binding ignored");
                }
                Ok(b)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(self.path.display().to_string(), e)),
        }
    }

    /// Add a binding, keeping what the file has (written to a temporary
    /// file and renamed, so a crash never leaves half a file).
    pub fn add(&self, alias: &str, wwid: &str) -> Result<()> {
        let io = |e| Error::io(self.path.display().to_string(), e);
        let mut text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
            Err(e) => return Err(io(e)),
        };
        let (existing, _) = parse_bindings(&text);
        if existing.iter().any(|(a, w)| a == alias && w == wwid) {
            return Ok(());
        }
        if let Some((a, w)) = existing.iter().find(|(a, w)| a == alias || w == wwid) {
            return Err(Error::Config(format!(
                "{}: binding {alias} {wwid} conflicts with {a} {w}",
                self.path.display()
            )));
        }
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{alias} {wwid}\n"));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("mpathd-tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_add_round_trip() {
        let dir = std::env::temp_dir().join(format!("mpathd-bindings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let f = BindingsFile::new(dir.join("bindings"));
        assert!(f.read().map(|b| b.is_empty()).unwrap_or(false));
        assert!(f.add("mpatha", "3600a").is_ok());
        assert!(f.add("mpathb", "3600b").is_ok());
        assert!(f.add("mpatha", "3600a").is_ok(), "idempotent");
        assert!(f.add("mpatha", "3600c").is_err(), "alias taken");
        let b = f.read().unwrap_or_default();
        assert_eq!(
            b,
            vec![
                ("mpatha".into(), "3600a".into()),
                ("mpathb".into(), "3600b".into())
            ]
        );
        let text = std::fs::read_to_string(dir.join("bindings")).unwrap_or_default();
        assert!(text.starts_with("# Multipath bindings, Version : 1.0"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_lines_are_reported() {
        let (b, bad) = parse_bindings("# c\nmpatha 3600a\nbogus\nx y z\n");
        assert_eq!(b.len(), 1);
        assert_eq!(bad, vec![3, 4]);
    }
}
