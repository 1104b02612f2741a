//! Diagnostics: every problem found in a configuration, with its place.

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// A place in a configuration file. `line`/`column` are 1-based; 0 means
/// unknown (e.g. a whole-file problem, or a TOML value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl Loc {
    pub fn new(file: &Arc<str>, line: u32, column: u32) -> Self {
        Loc {
            file: Arc::clone(file),
            line,
            column,
        }
    }

    /// `FILE:LINE` (or `FILE` when the line is unknown), as used in origins.
    pub fn file_line(&self) -> String {
        if self.line == 0 {
            self.file.to_string()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.file),
            (l, 0) => write!(f, "{}:{}", self.file, l),
            (l, c) => write!(f, "{}:{}:{}", self.file, l, c),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Explanation of how a setting behaves; nothing is wrong.
    Note,
    /// Accepted, but probably not what the admin meant, or ignored.
    Warning,
    /// The configuration cannot be used as written.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding. Displays as `FILE:LINE:COL: warning: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn at(severity: Severity, loc: &Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            file: loc.file.to_string(),
            line: loc.line,
            column: loc.column,
            message: message.into(),
        }
    }

    pub fn file(severity: Severity, file: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            file: file.to_string(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}: {}", self.file, self.severity, self.message),
            (l, 0) => write!(
                f,
                "{}:{}: {}: {}",
                self.file, l, self.severity, self.message
            ),
            (l, c) => write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, l, c, self.severity, self.message
            ),
        }
    }
}

/// Loading failed: at least one diagnostic is an error. All diagnostics
/// (warnings included) are kept so the caller can print them in order.
#[derive(Debug, Clone, Error)]
#[error("{}", render_errors(.diagnostics))]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// Only the error-severity diagnostics.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

fn render_errors(diags: &[Diagnostic]) -> String {
    let errs: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    if errs.is_empty() {
        "configuration error".to_string()
    } else {
        errs.join("\n")
    }
}

impl From<ConfigError> for crate::Error {
    fn from(e: ConfigError) -> Self {
        crate::Error::Config(e.to_string())
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a distance that scales with the length.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.len().div_ceil(3)).clamp(1, 4);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
