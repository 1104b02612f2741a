use super::*;

#[test]
fn aliases_and_prefixes() {
    assert_eq!(parse("list maps"), Ok(Command::ShowMaps));
    assert_eq!(parse("show multipaths"), Ok(Command::ShowMaps));
    // "sh": show or shutdown; "ma": maps, map, ... both ambiguous.
    assert_eq!(parse("sh maps"), Err(ParseError::Invalid));
    assert_eq!(parse("sho ma"), Err(ParseError::NotFound));
    assert_eq!(parse("sho ma x"), Err(ParseError::Invalid));
    assert_eq!(parse("sho maps"), Ok(Command::ShowMaps));
    assert_eq!(parse("li pat"), Err(ParseError::NotFound)); // ambiguous last word
    assert_eq!(parse("li paths"), Ok(Command::ShowPaths));
    assert_eq!(parse("show top"), Ok(Command::ShowTopology));
    assert_eq!(parse("show maps topology"), Ok(Command::ShowTopology));
    assert_eq!(
        parse("remove path sdc"),
        Ok(Command::DelPath { path: "sdc".into() })
    );
    assert_eq!(
        parse("del map /dev/dm-3"),
        Ok(Command::DelMap { map: "dm-3".into() })
    );
    assert_eq!(
        parse("switch map mpatha group 2"),
        Ok(Command::SwitchGroup {
            map: "mpatha".into(),
            group: 2
        })
    );
    assert_eq!(
        parse("switchgroup multipath mpatha group x"),
        Ok(Command::SwitchGroup {
            map: "mpatha".into(),
            group: 0
        })
    );
    // "sw" is a prefix of both switch and switchgroup: ambiguous.
    assert_eq!(parse("sw map a group 1"), Err(ParseError::Invalid));
    assert_eq!(parse("quit"), Ok(Command::Quit));
    assert_eq!(parse("exit"), Ok(Command::Quit));
    assert_eq!(parse("reconf"), Ok(Command::Reconfigure));
    assert_eq!(parse("reconfigure all"), Ok(Command::ReconfigureAll));
}

#[test]
fn errors_like_multipathd() {
    assert_eq!(parse("help"), Err(ParseError::NotFound));
    assert_eq!(parse("show"), Err(ParseError::MissingArgument));
    assert_eq!(parse("show map"), Err(ParseError::MissingArgument));
    assert_eq!(parse("show maps format"), Err(ParseError::MissingArgument));
    assert_eq!(parse("foo maps"), Err(ParseError::Invalid));
    assert_eq!(parse(""), Err(ParseError::Empty));
    assert_eq!(parse("   # comment"), Err(ParseError::Empty));
    assert_eq!(parse("fail paths"), Err(ParseError::MissingArgument));
    assert_eq!(
        parse("show maps raw format %n status"),
        Err(ParseError::MissingArgument)
    );
}

#[test]
fn quoted_formats() {
    assert_eq!(
        parse("show maps format \"%n %w\""),
        Ok(Command::ShowMapsFormat {
            format: "%n %w".into(),
            raw: false
        })
    );
    assert_eq!(
        parse("show paths raw format \"%d \"\"x\"\"\"\n"),
        Ok(Command::ShowPathsFormat {
            format: "%d \"x\"".into(),
            raw: true
        })
    );
    assert_eq!(
        parse("show map mpatha raw format %n"),
        Ok(Command::ShowMapFormat {
            map: "mpatha".into(),
            format: "%n".into(),
            raw: true
        })
    );
    // Trailing newline and comments are ignored.
    assert_eq!(parse("show maps\n"), Ok(Command::ShowMaps));
    assert_eq!(parse("show maps # all of them"), Ok(Command::ShowMaps));
}

#[test]
fn every_table_entry_parses() {
    for cmd in COMMAND_TABLE {
        let words: Vec<String> = cmd
            .iter()
            .map(|code| {
                let k = KEYWORDS.iter().find(|k| k.code == *code).expect("keyword");
                if k.has_param {
                    format!("{} x", k.word)
                } else {
                    k.word.to_string()
                }
            })
            .collect();
        let line = words.join(" ");
        assert!(parse(&line).is_ok(), "{line}");
    }
}

#[test]
fn help_layout() {
    let help = help_text();
    assert!(help.starts_with(VERSION_LINE));
    assert!(help.contains("CLI commands reference:\n list|show paths\n"));
    assert!(help.contains(" list|show paths raw format $format\n"));
    assert!(help.contains(" list|show map|multipath $map topology\n"));
    assert!(help.contains(" list|show maps|multipaths\n"));
    assert!(help.contains(" switch|switchgroup map|multipath $map group $group\n"));
    assert!(help.contains(" remove|del path $path\n"));
    assert!(help.contains(" quit|exit\n"));
    assert!(help.ends_with(" unsetprhold map|multipath $map\n"));
    assert_eq!(help.lines().count(), 2 + COMMAND_TABLE.len());
    let reply = ParseError::NotFound.reply("help");
    assert!(reply.starts_with("fail\nhelp: not found\n"));
    assert!(reply.contains("switchgroup"));
    assert_eq!(ParseError::Invalid.reply("foo bar"), "fail\n");
}

#[test]
fn permissions() {
    assert!(permitted(&Command::ShowMaps, false));
    assert!(!permitted(&Command::Reconfigure, false));
    assert!(!permitted(&Command::Quit, false));
    assert!(permitted(&Command::Reconfigure, true));
    assert!(Command::Reconfigure.needs_daemon());
    assert!(!Command::Quit.needs_daemon());
    assert!(!Command::ShowDaemon.needs_daemon());
}
