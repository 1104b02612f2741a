//! POSIX extended regular expressions (regcomp REG_EXTENDED, as
//! multipath-tools uses them) on top of the `regex` crate: translation of
//! the constructs whose meaning differs, rejection of what the crate cannot
//! express, and a lint for the usual traps in pasted vendor stanzas.
//!
//! Matching stays unanchored and case-sensitive, like regexec.

use regex::Regex;
use thiserror::Error;

/// Why a pattern is refused; `at` is the character index of the offending
/// construct in `pattern`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PatternError {
    /// A bracket expression without its closing `]` (REG_EBRACK).
    #[error("unterminated '[' in regular expression \"{pattern}\"")]
    UnmatchedBracket { pattern: String, at: usize },
    /// `*`, `+` or `?` with nothing before it to repeat (REG_BADRPT).
    #[error(
        "'{op}' at the start of \"{pattern}\" repeats nothing (a shell glob is not a \
         regular expression: use \".*\" for \"anything\")"
    )]
    NothingToRepeat {
        pattern: String,
        op: char,
        at: usize,
    },
    /// `(?`: Perl syntax the `regex` crate would accept with another meaning.
    #[error("\"(?\" is not POSIX syntax in \"{pattern}\"")]
    PerlGroup { pattern: String, at: usize },
    /// A `\` as the last character (REG_EESCAPE).
    #[error("regular expression \"{pattern}\" ends with a lone backslash")]
    TrailingBackslash { pattern: String, at: usize },
    /// `\1` .. `\9`: the `regex` crate has no back-references.
    #[error("back-references (\\{digit}) are not supported in \"{pattern}\"")]
    BackReference {
        pattern: String,
        digit: char,
        at: usize,
    },
    /// The translation did not compile (or exceeds the size limit).
    #[error("invalid regular expression \"{pattern}\": {}", gist(source))]
    Invalid {
        pattern: String,
        source: regex::Error,
    },
}

impl PatternError {
    /// The character index of the refused construct, when there is one.
    pub fn position(&self) -> Option<usize> {
        match self {
            PatternError::UnmatchedBracket { at, .. }
            | PatternError::NothingToRepeat { at, .. }
            | PatternError::PerlGroup { at, .. }
            | PatternError::TrailingBackslash { at, .. }
            | PatternError::BackReference { at, .. } => Some(*at),
            PatternError::Invalid { .. } => None,
        }
    }
}

/// The crate's message is multi-line with a caret; keep the gist.
fn gist(e: &regex::Error) -> String {
    let msg = e.to_string();
    msg.lines().last().unwrap_or("invalid").trim().to_string()
}

/// How deep groups and repetitions may nest in a pattern.
const NEST_LIMIT: u32 = 32;

/// Translate a POSIX ERE into `regex` crate syntax and compile it.
pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let translated = translate(pattern)?;
    regex::RegexBuilder::new(&translated)
        .size_limit(1 << 20)
        // Stacked repetitions (`a****...`) nest, and compiling a deep nest
        // recurses: a bound far above any real pattern keeps a pasted
        // config from exhausting a thread's stack.
        .nest_limit(NEST_LIMIT)
        .build()
        .map_err(|source| PatternError::Invalid {
            pattern: pattern.to_string(),
            source,
        })
}

/// The translation itself (public for tests and `config explain`).
pub fn translate(p: &str) -> Result<String, PatternError> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    // Whether the previous item can be repeated (for `*` at the start).
    let mut have_atom = false;
    // Inside an interval `{m,n}` we emitted.
    let mut in_interval = false;
    let pattern = || p.to_string();
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' => {
                let (class, next) =
                    bracket(&chars, i).ok_or_else(|| PatternError::UnmatchedBracket {
                        pattern: pattern(),
                        at: i,
                    })?;
                out.push_str(&class);
                i = next;
                have_atom = true;
                continue;
            }
            '\\' => {
                escape(p, i, chars.get(i + 1).copied(), &mut out)?;
                i += 2;
                have_atom = true;
                continue;
            }
            '*' | '+' | '?' if !have_atom => {
                return Err(PatternError::NothingToRepeat {
                    pattern: pattern(),
                    op: c,
                    at: i,
                });
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    return Err(PatternError::PerlGroup {
                        pattern: pattern(),
                        at: i,
                    });
                }
                out.push('(');
                have_atom = false;
            }
            '|' => {
                out.push('|');
                have_atom = false;
            }
            '^' => {
                out.push('^');
                have_atom = false;
            }
            '{' => {
                // An interval only when it looks like one; else a literal.
                if have_atom && starts_interval(&chars[i..]) {
                    out.push('{');
                    in_interval = true;
                } else {
                    out.push_str(r"\{");
                    have_atom = true;
                }
            }
            '}' => {
                // Literal unless it closes an interval we emitted.
                if in_interval {
                    out.push('}');
                    in_interval = false;
                } else {
                    out.push_str(r"\}");
                }
            }
            _ => {
                out.push(c);
                have_atom = !matches!(c, '$');
            }
        }
        i += 1;
    }
    Ok(out)
}

/// The translation of `\n` (n the escaped character at `at + 1`, None
/// at the end).
fn escape(p: &str, at: usize, n: Option<char>, out: &mut String) -> Result<(), PatternError> {
    let Some(n) = n else {
        return Err(PatternError::TrailingBackslash {
            pattern: p.to_string(),
            at,
        });
    };
    if n.is_ascii_digit() {
        return Err(PatternError::BackReference {
            pattern: p.to_string(),
            digit: n,
            at,
        });
    }
    if n.is_ascii_alphanumeric() && !matches!(n, 'w' | 'W' | 's' | 'S' | 'b' | 'B') {
        // glibc treats an unknown escaped letter as the letter.
        out.push(n);
    } else if n == '<' || n == '>' {
        out.push_str(r"\b");
    } else if n.is_ascii_alphanumeric() {
        // \w \W \s \S \b \B: GNU extensions regex knows too.
        out.push('\\');
        out.push(n);
    } else {
        // An escaped punctuation or other character is itself.
        out.push_str(&regex::escape(&n.to_string()));
    }
    Ok(())
}

/// Whether `rest` (from a `{`) is an interval `{m}`, `{m,}` or `{m,n}`.
fn starts_interval(rest: &[char]) -> bool {
    let Some(end) = rest.iter().position(|&c| c == '}') else {
        return false;
    };
    let inner = &rest[1..end];
    inner.first().is_some_and(|c| c.is_ascii_digit())
        && inner.iter().all(|c| c.is_ascii_digit() || *c == ',')
}

/// Translate a bracket expression starting at `chars[start] == '['`.
/// Returns the `regex`-crate class and the index after the closing `]`.
fn bracket(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut out = String::from("[");
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A ']' first is a literal.
    if chars.get(i) == Some(&']') {
        out.push_str(r"\]");
        i += 1;
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' => {
                out.push(']');
                return Some((out, i + 1));
            }
            '[' if matches!(chars.get(i + 1), Some(':') | Some('.') | Some('=')) => {
                let delim = chars[i + 1];
                // Find the matching `delim]`.
                let mut j = i + 2;
                while j + 1 < chars.len() && !(chars[j] == delim && chars[j + 1] == ']') {
                    j += 1;
                }
                if j + 1 >= chars.len() {
                    return None;
                }
                let name: String = chars[i + 2..j].iter().collect();
                if delim == ':' {
                    out.push_str(&format!("[:{name}:]"));
                } else {
                    // Collating symbol / equivalence class: single characters only.
                    for ch in name.chars() {
                        push_class_literal(&mut out, ch);
                    }
                }
                i = j + 2;
                continue;
            }
            '-' => out.push('-'),
            _ => push_class_literal(&mut out, c),
        }
        i += 1;
    }
    None
}

/// Inside a POSIX bracket everything but `]`, `-`, `^` is literal, the
/// backslash included; the `regex` crate gives `\ [ & ~` meanings there.
fn push_class_literal(out: &mut String, c: char) {
    if matches!(c, '\\' | '[' | '&' | '~' | '^') {
        out.push('\\');
    }
    out.push(c);
}

/// Usual traps in vendor/product regexes and blacklist patterns. Each
/// message explains what the pattern really matches.
pub fn lint(kw: &str, pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let p = pattern.strip_prefix('!').unwrap_or(pattern);
    let chars: Vec<char> = p.chars().collect();
    // "eSSM*": a letter followed by '*' at the end of an unanchored pattern.
    if chars.len() >= 2 && chars[chars.len() - 1] == '*' {
        let prev = chars[chars.len() - 2];
        let before_prev = if chars.len() >= 3 {
            Some(chars[chars.len() - 3])
        } else {
            None
        };
        if prev.is_ascii_alphanumeric() && before_prev != Some('\\') {
            let stem: String = chars[..chars.len() - 2].iter().collect();
            out.push(format!(
                "{kw} \"{p}\" is a regular expression, not a glob: it means \"{stem}\" \
                 followed by any number of '{prev}' (including none), anywhere in the \
                 string; write \"^{stem}{prev}\" to match what starts with \"{stem}{prev}\""
            ));
        }
    }
    // Unescaped '.' used as a literal dot between word characters.
    for (i, c) in chars.iter().enumerate() {
        if *c != '.' || (i > 0 && chars[i - 1] == '\\') {
            continue;
        }
        let next = chars.get(i + 1);
        if matches!(next, Some('*') | Some('+') | Some('?') | Some('{')) {
            continue;
        }
        let prev_word = i > 0 && chars[i - 1].is_ascii_alphanumeric();
        let next_word = next.is_some_and(|n| n.is_ascii_alphanumeric());
        if prev_word && next_word {
            out.push(format!(
                "{kw} \"{p}\": '.' matches any character; write \"\\.\" for a literal dot"
            ));
            break;
        }
    }
    if kw == "vendor" || kw == "product" || kw == "revision" {
        if p.ends_with(' ') {
            out.push(format!(
                "{kw} \"{p}\" ends with a space; INQUIRY strings are compared with \
                 trailing spaces removed, so this never matches at the end"
            ));
        }
        if p.contains('“') || p.contains('”') {
            out.push(format!("{kw} \"{p}\" contains typographic quotes"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        compile(p).map(|r| r.is_match(s)).unwrap_or(false)
    }

    #[test]
    fn deep_nests_are_refused_not_a_stack_overflow() {
        // Found by the fuzzer: ~300 stacked `*` overflowed a 2 MiB stack
        // while the regex crate compiled them.
        let deep = format!("^sd{}", "*".repeat(300));
        let e = compile(&deep).unwrap_err();
        assert!(matches!(e, PatternError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("nest"), "{e}");
        let groups = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(compile(&groups).is_err());
        // Stacked operators a real config may hold still work.
        assert!(m("^sda**", "sdaaa"));
        assert!(m("((a|b)(c|d))+", "acbd"));
    }

    #[test]
    fn posix_semantics() {
        assert!(m("eSSM*", "eSS"));
        assert!(m("eSSM*", "xxeSSyy"));
        assert!(m("^eSSM", "eSSM_BIO"));
        assert!(!m("bar", "Barbie"));
        assert!(m("bar", "rhabarber"));
        assert!(m("[[:digit:]]+", "a12"));
        assert!(m("[]a]", "]"));
        assert!(m(r"[\]", r"\"));
        assert!(m("[a[]", "["));
        assert!(m("a{2}", "aa"));
        assert!(m("a{", "a{"));
        assert!(m("^1[0-9][0-9][0-9]", "1814"));
        assert!(m("(NETAPP|LSI|ENGENIO)", "LSI"));
        assert!(m("", "anything"));
        assert!(m(".*", ""));
    }

    #[test]
    fn rejects_what_posix_rejects() {
        assert!(compile("*abc").is_err());
        assert!(compile("[abc").is_err());
        assert!(compile(r"(a)\1").is_err());
        assert!(compile("(?i)abc").is_err());
    }

    #[test]
    fn refusals_name_the_problem_and_where() {
        let e = |p: &str| compile(p).unwrap_err();
        assert!(matches!(
            e("ab[cd"),
            PatternError::UnmatchedBracket { at: 2, .. }
        ));
        assert!(matches!(
            e("a|*b"),
            PatternError::NothingToRepeat { op: '*', at: 2, .. }
        ));
        assert!(matches!(e("x(?i)"), PatternError::PerlGroup { at: 1, .. }));
        assert!(matches!(
            e("ab\\"),
            PatternError::TrailingBackslash { at: 2, .. }
        ));
        assert!(matches!(
            e(r"(a)\1"),
            PatternError::BackReference {
                digit: '1',
                at: 3,
                ..
            }
        ));
        assert_eq!(e("ab[cd").position(), Some(2));
        let invalid = e("a{2,1}");
        assert!(matches!(invalid, PatternError::Invalid { .. }), "{invalid}");
        assert_eq!(invalid.position(), None);
        assert!(invalid
            .to_string()
            .starts_with("invalid regular expression \"a{2,1}\": "));
        assert_eq!(
            e("*abc").to_string(),
            "'*' at the start of \"*abc\" repeats nothing (a shell glob is not a \
             regular expression: use \".*\" for \"anything\")"
        );
        assert_eq!(
            e(r"(a)\1").to_string(),
            r#"back-references (\1) are not supported in "(a)\1""#
        );
    }

    #[test]
    fn lints() {
        let l = lint("vendor", "eSSM*");
        assert_eq!(l.len(), 1);
        assert!(l[0].contains("\"eSS\" followed by any number of 'M'"));
        assert!(l[0].contains("^eSSM"));
        assert!(lint("vendor", "^eSSM").is_empty());
        assert!(lint("vendor", ".*").is_empty());
        assert_eq!(lint("product", "DELL.EMC").len(), 1);
        assert!(lint("product", "DELL\\.EMC").is_empty());
        assert!(lint("product", "OPEN-.*").is_empty());
    }
}
