//! A TOML error in words that never show a value from the file: the position (line and
//! column), the key or section when known, and what is wrong.
//!
//! Why: the `toml` crate's `Display` prints the offending line, and serde's messages quote the
//! offending value (`invalid type: string "…"`, `unknown variant `…``). A misplaced secret
//! (`[alpaca] secret_key = "…"`) would then reach the journal. So the message is rebuilt from
//! its known shapes keeping only what comes from our own schema (key names, expected types
//! and variants), and as a second line of defence every longer token written on the value
//! side of the file is cut from whatever text remains.

use std::collections::HashSet;

/// Longest key name, key path or section name shown (longer ones are cut).
const MAX_KEY_CHARS: usize = 64;

/// Longest description shown (our schema's "expected one of …" lists fit easily).
const MAX_MESSAGE_CHARS: usize = 400;

/// Tokens at least this long from the value side of the file are never shown. Shorter ones
/// (`true`, `sip`, `20`) carry no secret and often are the schema's own words.
const MIN_TOKEN_CHARS: usize = 6;

/// Replaces what is not shown.
const HIDDEN: &str = "…";

/// `line L, column C: <what is wrong> (key a.b | in [section])`; never a value of the file.
pub(super) fn describe(error: &toml::de::Error, input: &str) -> String {
    let span = error.span();
    let mut text = String::new();
    if let Some(span) = &span {
        let (line, column) = position(input, span.start);
        text.push_str(&format!("line {line}, column {column}: "));
    }
    let mut message = shape(
        error.message(),
        span.as_ref().map(|s| (s.start, s.end)),
        input,
    );
    message = redact_value_tokens(&message, input);
    text.push_str(&cut(&message, MAX_MESSAGE_CHARS));
    match key_path(error) {
        Some(keys) => text.push_str(&format!(" (key {keys})")),
        None => {
            if let Some(section) = span.and_then(|s| section_before(input, s.start)) {
                text.push_str(&format!(" (in [{section}])"));
            }
        }
    }
    text
}

/// 1-based line and column (in characters) of byte `offset`.
fn position(input: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(input.len());
    while !input.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &input[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// `text` cut to `max` characters.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push_str(HIDDEN);
        s
    }
}

/// A key name or path as shown: printable ASCII without backticks, at most
/// [`MAX_KEY_CHARS`]; anything else is not shown.
fn shown_key(key: &str) -> String {
    let printable = key
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '`' && c != '"' && c != '\'');
    if !printable || key.is_empty() {
        "(a key with unusual characters, not shown)".to_string()
    } else {
        cut(key, MAX_KEY_CHARS)
    }
}

/// The key path the deserializer was in (`alpaca.requests_per_minute`), if any. The `toml`
/// error only shows it in its `Display` when it has no input to quote.
fn key_path(error: &toml::de::Error) -> Option<String> {
    let mut bare = error.clone();
    bare.set_input(None);
    let display = bare.to_string();
    // `Display` is the message, a newline, then `in `<keys>`` when there are keys. Matching
    // on the message itself first means a value inside it can never pose as the key line.
    let rest = display.strip_prefix(error.message())?.strip_prefix('\n')?;
    let keys = rest.trim_end().strip_prefix("in `")?.strip_suffix('`')?;
    Some(shown_key(keys))
}

/// The `[section]` header in force at byte `offset` (the nearest one above it).
fn section_before(input: &str, offset: usize) -> Option<String> {
    let mut offset = offset.min(input.len());
    while !input.is_char_boundary(offset) {
        offset -= 1;
    }
    input[..offset].lines().rev().find_map(|line| {
        let header = line.trim_start().strip_prefix('[')?;
        let header = header.strip_prefix('[').unwrap_or(header);
        let name = header.split(']').next()?.trim();
        let plain = !name.is_empty()
            && name.len() <= MAX_KEY_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        plain.then(|| name.to_string())
    })
}

/// The message rebuilt from its known shapes (serde's and the `toml` crate's): input parts
/// dropped, schema parts kept. Unknown shapes pass unchanged (the `toml` parser's own messages
/// come from the grammar) and are then filtered by [`redact_value_tokens`].
fn shape(message: &str, span: Option<(usize, usize)>, input: &str) -> String {
    // The schema part ("expected …") follows the last ", expected " / ", there are no": the
    // input part before it may itself contain those words, our schema never does.
    let split = |rest: &str| -> (String, String) {
        for marker in [", expected ", ", there are no "] {
            if let Some(i) = rest.rfind(marker) {
                return (rest[..i].to_string(), rest[i..].to_string());
            }
        }
        (rest.to_string(), String::new())
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // A key the operator wrote: shown (that is what they must fix), if it looks like one.
        let (field, tail) = split(rest);
        let field = field.strip_suffix('`').unwrap_or(&field);
        return format!("unknown key `{}`{tail}", shown_key(field));
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (_, tail) = split(rest);
        return format!("unknown value (not shown){tail}");
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (unexpected, tail) = split(rest);
            // serde writes the kind, then the value quoted: `string "…"`, `integer `5``.
            let kind: String = unexpected
                .split(['`', '"', '\''])
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(24)
                .collect();
            // A number may be shown (it is no secret and says what to fix); nothing else.
            let quoted = unexpected.split('`').nth(1).unwrap_or("");
            let number = matches!(kind.as_str(), "integer" | "floating point")
                && quoted.len() <= 40
                && quoted.parse::<f64>().is_ok();
            let shown = if number {
                format!(" `{quoted}`")
            } else if kind.len() < unexpected.trim().len() {
                " (value not shown)".to_string()
            } else {
                String::new()
            };
            let what = prefix.trim_end_matches(": ");
            return format!("{what}: {kind}{shown}{tail}");
        }
    }
    if message == "duplicate key" {
        // The span covers the key; shown only when it is a plain key.
        if let Some(key) = span.and_then(|(start, end)| input.get(start..end)) {
            let plain = !key.is_empty()
                && key.len() <= MAX_KEY_CHARS
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
            if plain {
                return format!("duplicate key `{key}`");
            }
        }
    }
    message.to_string()
}

/// Words of our own schema (key and section names, enum values): never secret, and often what
/// an error must name.
fn schema_words() -> HashSet<String> {
    let mut words: HashSet<String> = [
        "sim",
        "dry-run",
        "alpaca-paper",
        "alpaca-live",
        "error",
        "empty-list",
        "skip-regime",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    fn walk(table: &toml::Table, words: &mut HashSet<String>) {
        for (key, value) in table {
            words.insert(key.clone());
            if let toml::Value::Table(t) = value {
                walk(t, words);
            }
        }
    }
    if let Ok(table) = toml::Table::try_from(super::Config::default()) {
        walk(&table, &mut words);
    }
    words
}

/// `message` with every token of [`MIN_TOKEN_CHARS`] or more that the file writes on a value
/// side (after `=`, or on a line that is neither a key nor a header: inside a multi-line
/// string, or garbage) replaced by [`HIDDEN`]. The second line of defence: whatever shape a
/// message has, no value text survives.
fn redact_value_tokens(message: &str, input: &str) -> String {
    let schema = schema_words();
    let mut tokens: Vec<&str> = Vec::new();
    for line in input.lines() {
        let trimmed = line.trim_start();
        let value_side = match line.find('=') {
            Some(i) => &line[i + 1..],
            None if trimmed.starts_with('[') => continue,
            None => line,
        };
        tokens.extend(
            value_side
                .split(|c: char| c.is_whitespace() || "\"'`,[]{}=#".contains(c))
                .filter(|t| {
                    t.chars().count() >= MIN_TOKEN_CHARS
                        && !schema.contains(*t)
                        // Numbers are shown on purpose (what to fix); they hold no secret.
                        && t.parse::<f64>().is_err()
                }),
        );
    }
    // Longest first, so a token containing another is cut whole.
    tokens.sort_by_key(|t| std::cmp::Reverse(t.len()));
    tokens.dedup();
    let mut text = message.to_string();
    for token in tokens {
        if text.contains(token) {
            text = text.replace(token, HIDDEN);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    const SECRET: &str = "PKSECRETzq8Xw3vL0123456789abcdefLEAK";

    fn error_of(text: &str) -> String {
        match Config::from_toml(text, Path::new("avwap.toml")) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => {
                assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn a_secret_in_any_malformed_position_is_never_shown() {
        let s = SECRET;
        let cases = [
            // The brief's example: an unknown key holding a secret.
            format!("[alpaca]\nsecret_key = \"{s}\"\n"),
            // Unterminated strings, basic and literal, single- and multi-line.
            format!("[alpaca]\nfeed = \"{s}\n"),
            format!("[alpaca]\nfeed = '{s}\n"),
            format!("[alpaca]\nfeed = \"\"\"{s}\n"),
            format!("[alpaca]\nfeed = '''{s}\n"),
            // Duplicate keys.
            format!("[alpaca]\nfeed = \"{s}\"\nfeed = \"{s}\"\n"),
            format!("state_dir = \"{s}\"\nstate_dir = 1\n"),
            // Wrong types.
            format!("[alpaca]\nrequests_per_minute = \"{s}\"\n"),
            format!("[alpaca]\nfeed = [\"{s}\"]\n"),
            format!("[alpaca]\nfeed = {{ k = \"{s}\" }}\n"),
            format!("[execution]\nrisk_per_trade = \"{s}\"\n"),
            format!("[execution]\nrisk_per_trade = [\"{s}\"]\n"),
            format!("[gate]\nwatchlist = [\"{s}\", 1]\n"),
            format!("[execution]\nkill_switch = \"{s}\"\n"),
            // Unknown enum values.
            format!("mode = \"{s}\"\n"),
            format!("[scan.regime]\non_missing_benchmark = \"{s}\"\n"),
            // Unquoted values, garbage after a value, a bare line.
            format!("[alpaca]\nfeed = {s}\n"),
            format!("[alpaca]\nfeed = \"sip\" {s}\n"),
            format!("[alpaca]\nrequests_per_minute = 1{s}\n"),
            format!("[alpaca]\nfeed = \"sip\"\n{s}\n"),
            // Quotes and backticks inside the value, to confuse the shape parsing.
            format!("mode = \"x`, expected {s}`\"\n"),
            format!("[alpaca]\nrequests_per_minute = \"a\\\", expected {s}\"\n"),
            format!("mode = \"{s}\\nin `mode`\"\n"),
            // Inside a multi-line string that then breaks.
            format!("[alpaca]\nfeed = \"\"\"\n{s}\n\"\"\" x\n"),
        ];
        for case in &cases {
            let msg = error_of(case);
            for fragment in [SECRET, &SECRET[..12], &SECRET[SECRET.len() - 12..]] {
                assert!(
                    !msg.contains(fragment),
                    "{fragment:?} shown for {case:?}: {msg}"
                );
            }
            assert!(msg.contains("line "), "{msg}");
            assert!(msg.len() < 700, "{msg}");
        }
    }

    #[test]
    fn messages_name_the_position_and_the_key() {
        let msg = error_of("[alpaca]\nrequests_per_minute = \"many\"\n");
        assert!(msg.contains("line 2, column 23"), "{msg}");
        assert!(msg.contains("key alpaca.requests_per_minute"), "{msg}");
        assert!(
            msg.contains("invalid type: string (value not shown), expected u32"),
            "{msg}"
        );
        assert!(!msg.contains("many"), "{msg}");

        let msg = error_of("[alpaca]\nfeed = \"iex\"\nfeed = \"sip\"\n");
        assert!(
            msg.contains("line 3, column 1: duplicate key `feed` (in [alpaca])"),
            "{msg}"
        );

        let msg = error_of("mode = \"paper\"\n");
        assert!(
            msg.contains("unknown value (not shown), expected one of `sim`"),
            "{msg}"
        );
        assert!(msg.contains("alpaca-live"), "{msg}");

        let msg = error_of("[alpaca]\nsecret_key = \"x\"\n");
        assert!(msg.contains("unknown key `secret_key`"), "{msg}");
        assert!(msg.contains("(key alpaca)"), "{msg}");

        let msg = error_of("[scan]\nmax_candidates = -1000000\n");
        assert!(
            msg.contains("invalid value: integer `-1000000`, expected usize"),
            "{msg}"
        );

        // Non-ASCII before the error: the column counts characters.
        let msg = error_of("# é\n[alpaca]\nfeed = é\n");
        assert!(msg.contains("line 3, column 8"), "{msg}");
    }

    #[test]
    fn long_or_odd_keys_are_cut_or_hidden() {
        let long = "k".repeat(500);
        let msg = error_of(&format!("{long} = 1\n"));
        assert!(msg.len() < 700, "{msg}");
        let msg = error_of("\"a`b\" = 1\n");
        assert!(msg.contains("not shown"), "{msg}");
    }

    #[test]
    fn positions_never_panic() {
        assert_eq!(position("", 10), (1, 1));
        assert_eq!(position("é", 1), (1, 1));
        assert_eq!(position("a\nbc", 3), (2, 2));
        assert_eq!(section_before("[a]\nx", 99), Some("a".to_string()));
        assert_eq!(section_before("[[b.c]]\nx", 9), Some("b.c".to_string()));
        assert_eq!(section_before("[\"q\"]\nx", 7), None);
    }
}
