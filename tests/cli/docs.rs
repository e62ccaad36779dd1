//! The documentation against the code: every shell command shown in README.md and docs/*.md
//! is run here, run by a named test or by `.ci/run`, or needs what these machines lack (NixOS,
//! a real systemd host, the real Alpaca) and says which VM check covers it; README.md stays a
//! front page (at most 8 KB); every relative link points at a file that exists.

use std::path::{Path, PathBuf};
use std::process::Command;

const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");
const GATE: &str = env!("CARGO_BIN_EXE_avwap-gate");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How a documented command is proved.
#[derive(Debug, Clone, Copy)]
enum Proof {
    /// Run by this file (`the_readme_commands_run_as_shown`).
    Here,
    /// Run by the test function of this name (it must exist under tests/).
    Test(&'static str),
    /// Run by `.ci/run` (the text must occur there).
    Ci(&'static str),
    /// Needs NixOS, a real systemd host or the real Alpaca; the VM check (a `check NAME` of
    /// nix/tests/scenario.sh, or a file of tests/vm/) that covers it, if any.
    Needs(&'static str, Option<&'static str>),
}

/// Every documented command, by a prefix of its text (after `cargo run --release --bin X --`
/// is written as `X`).
const COMMANDS: &[(&str, Proof)] = &[
    (
        "avwap-scan --demo --as-of 2010-08-09 --state-dir",
        Proof::Here,
    ),
    ("avwap-scan --demo", Proof::Here),
    ("cargo test", Proof::Ci("cargo test --locked")),
    ("avwap-gate --state-dir /tmp/avwap-demo", Proof::Here),
    (
        "avwap-execution simulate --date 2010-08-09 --days 2",
        Proof::Test("simulated_days_show_entries_stops_a_trim_and_exits"),
    ),
    (
        "avwap-execution report --date 2010-08-10",
        Proof::Test("simulated_days_show_entries_stops_a_trim_and_exits"),
    ),
    (
        "cargo install --locked --path . --root /usr/local",
        Proof::Needs("a real systemd host", Some("tests/vm/guest.sh")),
    ),
    (
        "systemctl start execution-restart.service && avwap-check",
        Proof::Needs("a real systemd host", Some("restart-helper")),
    ),
    (
        "nix build .#nixosTests.vm-scenario",
        Proof::Needs("NixOS with KVM", None),
    ),
    (
        "cargo build --release --bins && bash tests/vm/run.sh",
        Proof::Ci("bash tests/vm/run.sh"),
    ),
    (
        "journalctl -u execution.service",
        Proof::Needs("a real systemd host", Some("avwap-check-healthy")),
    ),
    (
        "AVWAP_LOG_FORMAT=json avwap-execution --once",
        Proof::Test("log_format_json_gives_parseable_lines_with_fields"),
    ),
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The commands of the ```sh blocks of `text`: continuation lines joined, comments and output
/// lines (`# …`) dropped, `cargo run --release --bin X --` shortened to `X`.
fn shell_commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(language) = trimmed.strip_prefix("```") {
            in_block = !in_block && matches!(language, "sh" | "bash" | "shell" | "console");
            continue;
        }
        if !in_block || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        pending.push_str(trimmed.trim_end_matches('\\'));
        pending.push(' ');
        if !trimmed.ends_with('\\') {
            let command = pending
                .split("  #")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            commands.push(shorten(&command));
            pending.clear();
        }
    }
    commands
}

fn shorten(command: &str) -> String {
    let mut text = command.to_string();
    for bin in ["avwap-scan", "avwap-gate", "avwap-execution", "avwap-check"] {
        for build in ["", "--release "] {
            text = text.replace(&format!("cargo run {build}--bin {bin} --"), bin);
        }
    }
    text
}

fn all_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "sh") {
            out.push_str(&read(&path));
        }
    }
}

#[test]
fn every_documented_command_is_run_or_says_what_it_needs() {
    let mut tests = String::new();
    all_sources(&Path::new(ROOT).join("tests"), &mut tests);
    let ci = read(&Path::new(ROOT).join(".ci/run"));
    let scenario = read(&Path::new(ROOT).join("nix/tests/scenario.sh"));
    let mut problems = Vec::new();
    let mut needs = Vec::new();
    for doc in documents() {
        for command in shell_commands(&read(&doc)) {
            let name = doc.strip_prefix(ROOT).unwrap_or(&doc).display().to_string();
            let Some((_, proof)) = COMMANDS.iter().find(|(p, _)| command.starts_with(p)) else {
                problems.push(format!(
                    "{name}: `{command}` is neither run by a test nor listed in COMMANDS"
                ));
                continue;
            };
            match proof {
                Proof::Here => {}
                Proof::Test(test) if !tests.contains(&format!("fn {test}(")) => {
                    problems.push(format!("{name}: `{command}`: no test fn {test}"))
                }
                Proof::Ci(text) if !ci.contains(text) => {
                    problems.push(format!("{name}: `{command}`: .ci/run does not run {text}"))
                }
                Proof::Needs(what, Some(check)) => {
                    let covered = if check.contains('/') {
                        Path::new(ROOT).join(check).exists()
                    } else {
                        scenario.contains(&format!("check {check} "))
                    };
                    if !covered {
                        problems.push(format!("{name}: `{command}`: no VM check {check}"));
                    }
                    needs.push(format!("{command} — needs {what}; VM: {check}"));
                }
                Proof::Needs(what, None) => needs.push(format!("{command} — needs {what}")),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The list the closing notes quote.
    eprintln!(
        "commands that need more than this machine:\n{}",
        needs.join("\n")
    );
}

#[test]
fn the_readme_commands_run_as_shown() {
    let state = tempfile::tempdir().unwrap();
    let run = |cmd: &mut Command| {
        cmd.env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    // `avwap-scan --demo`: a temporary state directory it names, an empty list (bearish).
    let out = run(Command::new(SCAN).arg("--demo"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `--as-of 2010-08-09 --state-dir DIR`: 20 candidates written there.
    let out = run(Command::new(SCAN)
        .args(["--demo", "--as-of", "2010-08-09", "--state-dir"])
        .arg(state.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(state.path().join("daily_candidates.csv").exists());
    // The gate on that list: exit 4 with the message the README shows.
    let out = run(Command::new(GATE).arg("--state-dir").arg(state.path()));
    assert_eq!(out.status.code(), Some(4));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Watchlist is for another session (NY). scan_date=2010-08-09 today="),
        "{text}"
    );
    let readme = read(&Path::new(ROOT).join("README.md"));
    assert!(readme
        .contains("Watchlist is for another session (NY). scan_date=2010-08-09 today=… (exit 4)"));
}

#[test]
fn the_readme_is_a_front_page_and_every_relative_link_exists() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    assert!(
        readme.len() <= 8 * 1024,
        "README.md is {} bytes",
        readme.len()
    );
    let mut broken = Vec::new();
    for doc in documents() {
        let text = read(&doc);
        let dir = doc.parent().unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split('#').next().unwrap_or_default();
            if !target.is_empty()
                && !target.contains("://")
                && !target.contains(' ')
                && !dir.join(target).exists()
            {
                broken.push(format!("{}: {target}", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

/// `key` (dotted) → default, for every leaf of the default configuration.
fn defaults(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                defaults(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The reference table of docs/configuration.md, from the code: every key of the default
/// configuration with its default, and its range where it has one (`config::limits`).
fn reference_table() -> String {
    let config = avwap::config::Config::default();
    let value = toml::Value::try_from(&config).expect("the default configuration serializes");
    let mut keys = Vec::new();
    defaults("", &value, &mut keys);
    let mut table = String::from("| key | default | range |\n|---|---|---|\n");
    for (key, default) in keys {
        let (section, name) = key.rsplit_once('.').unwrap_or(("", key.as_str()));
        let range = avwap::config::limits::LIMITS
            .iter()
            .find(|l| l.section == section && l.key == name)
            .map(|l| l.allowed())
            .unwrap_or_default();
        let default = default.replace('|', "\\|");
        table.push_str(&format!("| `{key}` | `{default}` | {range} |\n"));
    }
    table
}

#[test]
fn the_configuration_reference_is_the_codes() {
    let path = Path::new(ROOT).join("docs/configuration.md");
    let doc = read(&path);
    let (begin, end) = (
        "<!-- config-reference:begin (generated from the code by tests/cli/docs.rs) -->\n",
        "<!-- config-reference:end -->",
    );
    let table = reference_table();
    let inside = doc
        .split_once(begin)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(inside, _)| inside);
    assert_eq!(
        inside,
        Some(table.as_str()),
        "docs/configuration.md's reference differs from the code; paste this between the markers:\n{table}"
    );
}
