//! The multipathd command language: tokenizer, keywords (unique-prefix
//! matching, aliases), the typed [`Command`] and the help text.
//!
//! Behaviour follows multipath-tools' cli.c / parser.c: a command is a
//! sequence of up to four keywords, some of which take a parameter; the
//! keyword sequence (by position) selects the handler. Errors produce the
//! same replies multipathd sends (help dump, "fail").

use std::fmt;

/// Keyword codes. Several spellings share a code (aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kw {
    List,
    Add,
    Del,
    Reset,
    Switch,
    Reconfigure,
    Suspend,
    Resume,
    Resize,
    Reload,
    Fail,
    Reinstate,
    DisableQ,
    RestoreQ,
    ForceQ,
    GetPrStatus,
    SetPrStatus,
    UnsetPrStatus,
    GetPrKey,
    SetPrKey,
    UnsetPrKey,
    SetMarginal,
    UnsetMarginal,
    Shutdown,
    Quit,
    GetPrHold,
    SetPrHold,
    UnsetPrHold,
    Path,
    Paths,
    Map,
    Maps,
    Topology,
    Config,
    Blacklist,
    Devices,
    Wildcards,
    All,
    Daemon,
    Format,
    Raw,
    Status,
    Stats,
    Json,
    Local,
    /// mpathd extension: why each path is or is not multipathed.
    Reasons,
    Metrics,
    Redundancy,
    Group,
    Key,
    PathList,
}

/// One spelling of a keyword.
#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    pub word: &'static str,
    pub code: Kw,
    pub has_param: bool,
}

const fn kw(word: &'static str, code: Kw, has_param: bool) -> Keyword {
    Keyword {
        word,
        code,
        has_param,
    }
}

/// The keyword table in multipathd's order (the order matters for the
/// help text: the first spelling of a code is the main one).
pub const KEYWORDS: &[Keyword] = &[
    kw("list", Kw::List, false),
    kw("show", Kw::List, false),
    kw("add", Kw::Add, false),
    kw("remove", Kw::Del, false),
    kw("del", Kw::Del, false),
    kw("switch", Kw::Switch, false),
    kw("switchgroup", Kw::Switch, false),
    kw("suspend", Kw::Suspend, false),
    kw("resume", Kw::Resume, false),
    kw("reinstate", Kw::Reinstate, false),
    kw("fail", Kw::Fail, false),
    kw("resize", Kw::Resize, false),
    kw("reset", Kw::Reset, false),
    kw("reload", Kw::Reload, false),
    kw("forcequeueing", Kw::ForceQ, false),
    kw("disablequeueing", Kw::DisableQ, false),
    kw("restorequeueing", Kw::RestoreQ, false),
    kw("paths", Kw::Paths, false),
    kw("maps", Kw::Maps, false),
    kw("multipaths", Kw::Maps, false),
    kw("path", Kw::Path, true),
    kw("map", Kw::Map, true),
    kw("multipath", Kw::Map, true),
    kw("group", Kw::Group, true),
    kw("reconfigure", Kw::Reconfigure, false),
    kw("daemon", Kw::Daemon, false),
    kw("status", Kw::Status, false),
    kw("stats", Kw::Stats, false),
    kw("topology", Kw::Topology, false),
    kw("config", Kw::Config, false),
    kw("blacklist", Kw::Blacklist, false),
    kw("devices", Kw::Devices, false),
    kw("raw", Kw::Raw, false),
    kw("wildcards", Kw::Wildcards, false),
    kw("quit", Kw::Quit, false),
    kw("exit", Kw::Quit, false),
    kw("shutdown", Kw::Shutdown, false),
    kw("getprstatus", Kw::GetPrStatus, false),
    kw("setprstatus", Kw::SetPrStatus, false),
    kw("unsetprstatus", Kw::UnsetPrStatus, false),
    kw("format", Kw::Format, true),
    kw("json", Kw::Json, false),
    kw("getprkey", Kw::GetPrKey, false),
    kw("setprkey", Kw::SetPrKey, false),
    kw("unsetprkey", Kw::UnsetPrKey, false),
    kw("key", Kw::Key, true),
    kw("local", Kw::Local, false),
    kw("reasons", Kw::Reasons, false),
    kw("metrics", Kw::Metrics, false),
    kw("redundancy", Kw::Redundancy, false),
    kw("setmarginal", Kw::SetMarginal, false),
    kw("unsetmarginal", Kw::UnsetMarginal, false),
    kw("all", Kw::All, false),
    kw("getprhold", Kw::GetPrHold, false),
    kw("setprhold", Kw::SetPrHold, false),
    kw("unsetprhold", Kw::UnsetPrHold, false),
    kw("pathlist", Kw::PathList, true),
];

/// Every command multipathd knows, as keyword sequences, in the order of
/// multipathd's handler table (the help text lists them in this order).
pub const COMMAND_TABLE: &[&[Kw]] = {
    use Kw::*;
    &[
        &[List, Paths],
        &[List, Paths, Format],
        &[List, Paths, Raw, Format],
        &[List, Path],
        &[List, Maps],
        &[List, Status],
        &[List, Daemon],
        &[List, Maps, Status],
        &[List, Maps, Stats],
        &[List, Maps, Format],
        &[List, Maps, Raw, Format],
        &[List, Maps, Topology],
        &[List, Topology],
        &[List, Maps, Json],
        &[List, Map, Topology],
        &[List, Map, Format],
        &[List, Map, Raw, Format],
        &[List, Map, Json],
        &[List, Config, Local],
        &[List, Config],
        &[List, Blacklist],
        &[List, Devices],
        &[List, Wildcards],
        &[Reset, Maps, Stats],
        &[Reset, Map, Stats],
        &[Add, Path],
        &[Del, Path],
        &[Add, Map],
        &[Del, Map],
        &[Del, Maps],
        &[Switch, Map, Group],
        &[Reconfigure],
        &[Reconfigure, All],
        &[Suspend, Map],
        &[Resume, Map],
        &[Resize, Map],
        &[Reload, Map],
        &[Reset, Map],
        &[Reinstate, Path],
        &[Fail, Path],
        &[DisableQ, Map],
        &[RestoreQ, Map],
        &[DisableQ, Maps],
        &[RestoreQ, Maps],
        &[Quit],
        &[Shutdown],
        &[GetPrStatus, Map],
        &[SetPrStatus, Map],
        &[SetPrStatus, Map, PathList],
        &[UnsetPrStatus, Map],
        &[ForceQ, Daemon],
        &[RestoreQ, Daemon],
        &[GetPrKey, Map],
        &[SetPrKey, Map, Key],
        &[UnsetPrKey, Map],
        &[SetMarginal, Path],
        &[UnsetMarginal, Path],
        &[UnsetMarginal, Map],
        &[GetPrHold, Map],
        &[SetPrHold, Map],
        &[UnsetPrHold, Map],
    ]
};

/// Maximum number of keywords in a command.
pub const MAX_KEYWORDS: usize = 4;

/// The first line of the help text, in multipath-tools' `PROG vX.Y.Z (date)`
/// layout.
pub const VERSION_LINE: &str = concat!(
    "mpathd v",
    env!("CARGO_PKG_VERSION"),
    " (multipath-tools 0.14 compatible)\n"
);

/// A parsed control-socket command. Map and path parameters are passed as
/// the client wrote them, minus a leading `/dev/` (multipathd's
/// `convert_dev`). A map may be named by alias, WWID or `dm-N`; a path by
/// kernel name (`sdc`) or `major:minor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    // ---- queries (list/show): answered from the snapshot, allowed for all
    ShowPaths,
    /// `show paths reasons` (mpathd extension): why each path is or is
    /// not multipathed.
    ShowPathsReasons,
    /// `show metrics` (mpathd extension): Prometheus text format.
    ShowMetrics,
    /// `show redundancy [json]` (mpathd extension): what all the usable
    /// paths of each map share.
    ShowRedundancy {
        json: bool,
    },
    /// `show paths [raw] format F`
    ShowPathsFormat {
        format: String,
        raw: bool,
    },
    /// `show path P`: the path's dev_st.
    ShowPath {
        path: String,
    },
    ShowMaps,
    /// `show maps [raw] format F`
    ShowMapsFormat {
        format: String,
        raw: bool,
    },
    ShowMapsStatus,
    ShowMapsStats,
    /// `show topology` and `show maps topology`
    ShowTopology,
    ShowMapsJson,
    ShowMapTopology {
        map: String,
    },
    /// `show map M [raw] format F`
    ShowMapFormat {
        map: String,
        format: String,
        raw: bool,
    },
    ShowMapJson {
        map: String,
    },
    ShowConfig,
    ShowConfigLocal,
    ShowBlacklist,
    ShowDevices,
    ShowWildcards,
    ShowStatus,
    ShowDaemon,

    // ---- everything else is root only
    ResetMapsStats,
    ResetMapStats {
        map: String,
    },
    AddPath {
        path: String,
    },
    DelPath {
        path: String,
    },
    AddMap {
        map: String,
    },
    DelMap {
        map: String,
    },
    DelMaps,
    /// `switchgroup map M group N`; N is read like C's atoi (0 if bad).
    SwitchGroup {
        map: String,
        group: i32,
    },
    Reconfigure,
    ReconfigureAll,
    SuspendMap {
        map: String,
    },
    ResumeMap {
        map: String,
    },
    ResizeMap {
        map: String,
    },
    ReloadMap {
        map: String,
    },
    /// `reset map M`: reassign the map's table (multipathd's cli_reassign).
    ResetMap {
        map: String,
    },
    ReinstatePath {
        path: String,
    },
    FailPath {
        path: String,
    },
    DisableQueueingMap {
        map: String,
    },
    RestoreQueueingMap {
        map: String,
    },
    DisableQueueingMaps,
    RestoreQueueingMaps,
    /// `quit` / `exit`: answered `ok` by the server itself.
    Quit,
    Shutdown,
    GetPrStatus {
        map: String,
    },
    SetPrStatus {
        map: String,
    },
    SetPrStatusPathList {
        map: String,
        pathlist: String,
    },
    UnsetPrStatus {
        map: String,
    },
    ForceQueueingDaemon,
    RestoreQueueingDaemon,
    GetPrKey {
        map: String,
    },
    SetPrKey {
        map: String,
        key: String,
    },
    UnsetPrKey {
        map: String,
    },
    SetMarginalPath {
        path: String,
    },
    UnsetMarginalPath {
        path: String,
    },
    UnsetMarginalMap {
        map: String,
    },
    GetPrHold {
        map: String,
    },
    SetPrHold {
        map: String,
    },
    UnsetPrHold {
        map: String,
    },
}

impl Command {
    /// list/show commands: answered from the snapshot, allowed for non-root.
    pub fn is_query(&self) -> bool {
        use Command::*;
        matches!(
            self,
            ShowPaths
                | ShowPathsReasons
                | ShowMetrics
                | ShowRedundancy { .. }
                | ShowPathsFormat { .. }
                | ShowPath { .. }
                | ShowMaps
                | ShowMapsFormat { .. }
                | ShowMapsStatus
                | ShowMapsStats
                | ShowTopology
                | ShowMapsJson
                | ShowMapTopology { .. }
                | ShowMapFormat { .. }
                | ShowMapJson { .. }
                | ShowConfig
                | ShowConfigLocal
                | ShowBlacklist
                | ShowDevices
                | ShowWildcards
                | ShowStatus
                | ShowDaemon
                | GetPrStatus { .. }
                | GetPrKey { .. }
        )
    }

    /// Root-only commands the daemon must carry out (everything but
    /// queries and `quit`).
    pub fn needs_daemon(&self) -> bool {
        !self.is_query() && *self != Command::Quit
    }
}

/// Whether a client with these credentials may run `cmd` (multipathd:
/// non-root peers may only use the list/show verb).
pub fn permitted(cmd: &Command, is_root: bool) -> bool {
    is_root
        || (cmd.is_query()
            && !matches!(cmd, Command::GetPrStatus { .. } | Command::GetPrKey { .. }))
}

/// Why a command line was not understood. Mirrors get_cmdvec()'s errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing to parse (blank line or comment): multipathd's ENOMEM path.
    Empty,
    /// The last word is not a keyword (ESRCH), e.g. `help`.
    NotFound,
    /// A keyword's parameter is missing, or the keywords form no command
    /// (EINVAL).
    MissingArgument,
    /// A word before the last is not a keyword (ENOENT): plain `fail`.
    Invalid,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "empty command",
            ParseError::NotFound => "not found",
            ParseError::MissingArgument => "missing argument",
            ParseError::Invalid => "invalid command",
        })
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The reply multipathd sends for this error; `raw` is the command
    /// exactly as received (it is echoed in the first line).
    pub fn reply(&self, raw: &str) -> String {
        let mut out = String::from("fail\n");
        match self {
            ParseError::Invalid => return out,
            ParseError::Empty => out.push_str(&format!("{raw}: Not enough memory\n")),
            ParseError::NotFound => out.push_str(&format!("{raw}: not found\n")),
            ParseError::MissingArgument => out.push_str(&format!("{raw}: Missing argument\n")),
        }
        out.push_str(&help_text());
        out
    }
}

/// The command reference multipathd prints for `help` and unknown
/// commands (without the leading `fail` / error lines).
pub fn help_text() -> String {
    let mut out = String::from(VERSION_LINE);
    out.push_str("CLI commands reference:\n");
    for cmd in COMMAND_TABLE {
        for code in cmd.iter() {
            let Some(main) = KEYWORDS.iter().find(|k| k.code == *code) else {
                continue;
            };
            out.push(' ');
            out.push_str(main.word);
            for alias in KEYWORDS
                .iter()
                .filter(|k| k.code == *code && k.word != main.word)
            {
                out.push('|');
                out.push_str(alias.word);
            }
            if main.has_param {
                out.push_str(" $");
                out.push_str(main.word);
            }
        }
        out.push('\n');
    }
    out
}

/// A token of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A `"` opening or closing a quoted string.
    Quote,
    Word(String),
}

fn is_space(c: char) -> bool {
    // C's isspace() in the "C" locale, plus every non-ASCII character
    // outside quotes, as multipathd's tokenizer skips them.
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r') || !c.is_ascii()
}

/// Split a command line like multipathd's alloc_strvec(): words separated
/// by blanks, `"..."` strings (with `""` for a literal quote) as one word,
/// `{` and `}` as words of their own, `#` or `!` starting a comment.
/// None when there is nothing but blanks or a comment.
fn tokenize(line: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() && is_space(chars[i]) {
        i += 1;
    }
    match chars.get(i) {
        None | Some('!') | Some('#') => return None,
        _ => {}
    }
    let mut tokens = Vec::new();
    let mut in_string = false;
    loop {
        let c = chars.get(i).copied();
        if c == Some('"') && !(in_string && chars.get(i + 1) == Some(&'"')) {
            i += 1;
            tokens.push(Token::Quote);
            in_string = !in_string;
        } else if !in_string && matches!(c, Some('{') | Some('}')) {
            tokens.push(Token::Word(c.map(String::from).unwrap_or_default()));
            i += 1;
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.get(i) {
                if in_string {
                    if c == '"' {
                        if chars.get(i + 1) == Some(&'"') {
                            word.push('"');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                } else if is_space(c) || matches!(c, '!' | '#' | '{' | '}' | '"') {
                    break;
                }
                word.push(c);
                i += 1;
            }
            tokens.push(Token::Word(word));
        }
        if !in_string {
            while i < chars.len() && is_space(chars[i]) {
                i += 1;
            }
        }
        match chars.get(i) {
            None => return Some(tokens),
            Some('!') | Some('#') if !in_string => return Some(tokens),
            _ => {}
        }
    }
}

/// Look a word up: an exact spelling wins; otherwise it must be the
/// prefix of exactly one spelling (aliases count separately).
pub fn find_keyword(word: &str) -> Option<&'static Keyword> {
    let mut found = None;
    for k in KEYWORDS {
        if !k.word.starts_with(word) {
            continue;
        }
        if k.word.len() == word.len() {
            return Some(k);
        }
        if found.is_some() {
            return None;
        }
        found = Some(k);
    }
    found
}

/// Strip a leading `/dev/` like multipathd's convert_dev(); for path
/// devices also turn `cciss/` into `cciss!` (the kernel's name).
fn convert_dev(name: &str, is_path: bool) -> String {
    let name = if is_path {
        name.replacen("cciss/", "cciss!", 1)
    } else {
        name.to_string()
    };
    match name.strip_prefix("/dev/") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => name,
    }
}

/// C's atoi(): optional blanks and sign, then digits; 0 when none.
fn atoi(s: &str) -> i32 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        v = (v * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX) + 1);
    }
    let v = if neg { -v } else { v };
    i32::try_from(v).unwrap_or(if neg { i32::MIN } else { i32::MAX })
}

/// Parse one command line into a [`Command`].
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let tokens = tokenize(line).ok_or(ParseError::Empty)?;
    let mut kws: Vec<(Kw, Option<String>)> = Vec::new();
    let mut want_param = false;
    let last = tokens.len().saturating_sub(1);
    for (i, tok) in tokens.iter().enumerate() {
        let Token::Word(word) = tok else { continue };
        if want_param {
            want_param = false;
            if let Some(entry) = kws.last_mut() {
                entry.1 = Some(word.clone());
            }
            continue;
        }
        let Some(k) = find_keyword(word) else {
            return Err(if i == last {
                ParseError::NotFound
            } else {
                ParseError::Invalid
            });
        };
        kws.push((k.code, None));
        want_param = k.has_param;
    }
    if want_param {
        return Err(ParseError::MissingArgument);
    }
    if kws.len() > MAX_KEYWORDS {
        return Err(ParseError::MissingArgument);
    }
    build(&kws).ok_or(ParseError::MissingArgument)
}

/// The keywords of one request and their parameters.
struct Params<'a>(&'a [(Kw, Option<String>)]);

impl Params<'_> {
    fn param(&self, code: Kw) -> String {
        self.0
            .iter()
            .find(|(k, _)| *k == code)
            .and_then(|(_, p)| p.clone())
            .unwrap_or_default()
    }
    fn map(&self) -> String {
        convert_dev(&self.param(Kw::Map), false)
    }
    fn path(&self) -> String {
        convert_dev(&self.param(Kw::Path), true)
    }
}

fn build(kws: &[(Kw, Option<String>)]) -> Option<Command> {
    let codes: Vec<Kw> = kws.iter().map(|(k, _)| *k).collect();
    let p = Params(kws);
    match codes.as_slice() {
        [Kw::List, rest @ ..] => build_query(rest, &p),
        _ => build_action(&codes, &p),
    }
}

/// `show`/`list` commands, by the keywords after `list`.
fn build_query(codes: &[Kw], p: &Params<'_>) -> Option<Command> {
    use Command as C;
    use Kw::*;
    Some(match codes {
        [Paths] => C::ShowPaths,
        [Paths, Reasons] => C::ShowPathsReasons,
        [Paths, Format] => C::ShowPathsFormat {
            format: p.param(Format),
            raw: false,
        },
        [Paths, Raw, Format] => C::ShowPathsFormat {
            format: p.param(Format),
            raw: true,
        },
        [Path] => C::ShowPath { path: p.path() },
        [Maps] => C::ShowMaps,
        [Status] => C::ShowStatus,
        [Daemon] => C::ShowDaemon,
        [Maps, Status] => C::ShowMapsStatus,
        [Maps, Stats] => C::ShowMapsStats,
        [Maps, Format] => C::ShowMapsFormat {
            format: p.param(Format),
            raw: false,
        },
        [Maps, Raw, Format] => C::ShowMapsFormat {
            format: p.param(Format),
            raw: true,
        },
        [Maps, Topology] | [Topology] => C::ShowTopology,
        [Maps, Json] => C::ShowMapsJson,
        [Map, Topology] => C::ShowMapTopology { map: p.map() },
        [Map, Format] => C::ShowMapFormat {
            map: p.map(),
            format: p.param(Format),
            raw: false,
        },
        [Map, Raw, Format] => C::ShowMapFormat {
            map: p.map(),
            format: p.param(Format),
            raw: true,
        },
        [Map, Json] => C::ShowMapJson { map: p.map() },
        [Config, Local] => C::ShowConfigLocal,
        [Config] => C::ShowConfig,
        [Blacklist] => C::ShowBlacklist,
        [Devices] => C::ShowDevices,
        [Metrics] => C::ShowMetrics,
        [Redundancy] => C::ShowRedundancy { json: false },
        [Redundancy, Json] => C::ShowRedundancy { json: true },
        [Wildcards] => C::ShowWildcards,
        _ => return None,
    })
}

/// Commands that act on maps and paths, and the daemon's own.
fn build_action(codes: &[Kw], p: &Params<'_>) -> Option<Command> {
    use Command as C;
    use Kw::*;
    Some(match codes {
        [Reset, Maps, Stats] => C::ResetMapsStats,
        [Reset, Map, Stats] => C::ResetMapStats { map: p.map() },
        [Add, Path] => C::AddPath { path: p.path() },
        [Del, Path] => C::DelPath { path: p.path() },
        [Add, Map] => C::AddMap { map: p.map() },
        [Del, Map] => C::DelMap { map: p.map() },
        [Del, Maps] => C::DelMaps,
        [Switch, Map, Group] => C::SwitchGroup {
            map: p.map(),
            group: atoi(&p.param(Group)),
        },
        [Reconfigure] => C::Reconfigure,
        [Reconfigure, All] => C::ReconfigureAll,
        [Suspend, Map] => C::SuspendMap { map: p.map() },
        [Resume, Map] => C::ResumeMap { map: p.map() },
        [Resize, Map] => C::ResizeMap { map: p.map() },
        [Reload, Map] => C::ReloadMap { map: p.map() },
        [Reset, Map] => C::ResetMap { map: p.map() },
        [Reinstate, Path] => C::ReinstatePath { path: p.path() },
        [Fail, Path] => C::FailPath { path: p.path() },
        [DisableQ, Map] => C::DisableQueueingMap { map: p.map() },
        [RestoreQ, Map] => C::RestoreQueueingMap { map: p.map() },
        [DisableQ, Maps] => C::DisableQueueingMaps,
        [RestoreQ, Maps] => C::RestoreQueueingMaps,
        [Quit] => C::Quit,
        [Shutdown] => C::Shutdown,
        [GetPrStatus, Map] => C::GetPrStatus { map: p.map() },
        [SetPrStatus, Map] => C::SetPrStatus { map: p.map() },
        [SetPrStatus, Map, PathList] => C::SetPrStatusPathList {
            map: p.map(),
            pathlist: p.param(PathList),
        },
        [UnsetPrStatus, Map] => C::UnsetPrStatus { map: p.map() },
        [ForceQ, Daemon] => C::ForceQueueingDaemon,
        [RestoreQ, Daemon] => C::RestoreQueueingDaemon,
        [GetPrKey, Map] => C::GetPrKey { map: p.map() },
        [SetPrKey, Map, Key] => C::SetPrKey {
            map: p.map(),
            key: p.param(Key),
        },
        [UnsetPrKey, Map] => C::UnsetPrKey { map: p.map() },
        [SetMarginal, Path] => C::SetMarginalPath { path: p.path() },
        [UnsetMarginal, Path] => C::UnsetMarginalPath { path: p.path() },
        [UnsetMarginal, Map] => C::UnsetMarginalMap { map: p.map() },
        [GetPrHold, Map] => C::GetPrHold { map: p.map() },
        [SetPrHold, Map] => C::SetPrHold { map: p.map() },
        [UnsetPrHold, Map] => C::UnsetPrHold { map: p.map() },
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
