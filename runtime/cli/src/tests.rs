//! The command line as a whole: well formed, every operation a command,
//! and every command the guides show one that parses.

use super::*;

#[test]
fn the_command_line_is_well_formed() {
    // Names and flags clash nowhere, the generated ones included.
    ops::Ops::load().augment(Cli::command()).debug_assert();
}

#[test]
fn every_hand_written_operation_names_a_command_that_exists() {
    let cli = Cli::command();
    for (method, path, command) in ops::HANDWRITTEN {
        let mut at = &cli;
        for word in command.split(' ') {
            at = at.find_subcommand(word).unwrap_or_else(|| panic!("{method} {path}: no `keyong {command}`"));
        }
    }
}

/// Every `keyong …` line of the guides' shell blocks, continuation lines
/// joined, comments and `| …` cut, `<placeholders>` filled.
fn documented_commands() -> Vec<(String, String)> {
    let docs = [
        ("README.md", include_str!("../../../README.md")),
        ("docs/operator-guide.md", include_str!("../../../docs/operator-guide.md")),
        ("docs/authority-guide.md", include_str!("../../../docs/authority-guide.md")),
        ("docs/provider-guide.md", include_str!("../../../docs/provider-guide.md")),
        ("docs/reviewer-guide.md", include_str!("../../../docs/reviewer-guide.md")),
        ("docs/tls.md", include_str!("../../../docs/tls.md")),
    ];
    let mut found = Vec::new();
    for (doc, text) in docs {
        let mut in_sh = false;
        let mut pending = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                in_sh = trimmed == "```sh";
                continue;
            }
            if !in_sh {
                continue;
            }
            pending.push_str(line.trim());
            if let Some(open) = pending.strip_suffix('\\') {
                pending = format!("{open} ");
                continue;
            }
            let command = std::mem::take(&mut pending);
            for part in command.split("&&") {
                let part = part.trim();
                let Some(rest) = part.strip_prefix("keyong ").or_else(|| part.strip_prefix("target/debug/keyong "))
                else {
                    continue;
                };
                found.push((doc.to_string(), format!("keyong {rest}")));
            }
        }
    }
    found
}

/// Shell words of one documented line: quotes kept together, `# …` and
/// `| …` and `> …` outside quotes cut.
fn words(line: &str) -> Vec<String> {
    let line = fill_placeholders(line);
    let (mut out, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (None, '#' | '|' | '>') if word.is_empty() => break,
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// `<hex from GET /v1/platform-key>` is one value.
fn fill_placeholders(line: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '<' if depth == 0 => {
                depth = 1;
                out.push('X');
            }
            '>' if depth == 1 => depth = 0,
            _ if depth == 1 => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn every_documented_command_parses() {
    let cli = ops::Ops::load().augment(Cli::command());
    let commands = documented_commands();
    assert!(commands.len() > 60, "{} documented commands", commands.len());
    for (doc, line) in commands {
        let args = words(&line);
        match cli.clone().try_get_matches_from(&args) {
            Ok(_) => {}
            Err(e)
                if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            }
            Err(e) => panic!("{doc}: `{line}` does not parse: {e}"),
        }
    }
}
