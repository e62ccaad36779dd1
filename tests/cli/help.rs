//! `--help` of the four binaries says only what applies: the log-format variable without a
//! (possibly empty) value, `--mode`/`--at` only on the commands they mean something for, the
//! scan's options not on `import`; and the old ways of passing them still work.

use std::process::{Command, Output};

const BINARIES: [&str; 4] = [
    env!("CARGO_BIN_EXE_avwap-scan"),
    env!("CARGO_BIN_EXE_avwap-execution"),
    env!("CARGO_BIN_EXE_avwap-gate"),
    env!("CARGO_BIN_EXE_avwap-check"),
];
const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");
const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_MODE")
        .env_remove("AVWAP_LOG_FORMAT")
        .env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the binary")
}

fn help(binary: &str, args: &[&str]) -> String {
    let out = run(binary, args);
    assert_eq!(out.status.code(), Some(0), "{binary} {args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The long options a help text lists (`--name`), in order.
fn options(help: &str) -> Vec<String> {
    help.lines()
        .map(str::trim_start)
        .filter_map(|l| {
            let l = l.strip_prefix("-h, ").unwrap_or(l);
            let l = l.strip_prefix("-V, ").unwrap_or(l);
            l.starts_with("--")
                .then(|| l.split([' ', '=']).next().unwrap_or(l).to_string())
        })
        .collect()
}

#[test]
fn the_log_format_variable_is_named_without_a_value() {
    for binary in BINARIES {
        // Unset, and set: clap would print `[env: AVWAP_LOG_FORMAT=]` or the value.
        for value in [None, Some("json")] {
            let mut cmd = Command::new(binary);
            cmd.arg("--help").env_remove("AVWAP_LOG_FORMAT");
            if let Some(v) = value {
                cmd.env("AVWAP_LOG_FORMAT", v);
            }
            let out = cmd.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("[env: AVWAP_LOG_FORMAT]"),
                "{binary} {value:?}: {text}"
            );
            assert!(
                !text.contains("AVWAP_LOG_FORMAT="),
                "{binary} {value:?}: {text}"
            );
        }
    }
}

#[test]
fn execution_options_show_only_where_they_apply() {
    let has = |args: &[&str], want: &[&str], not: &[&str]| {
        let text = help(EXEC, args);
        let opts = options(&text);
        for o in want {
            assert!(opts.iter().any(|x| x == o), "{args:?} lacks {o}: {opts:?}");
        }
        for o in not {
            assert!(!opts.iter().any(|x| x == o), "{args:?} shows {o}: {opts:?}");
        }
    };
    has(&["--help"], &["--mode", "--once", "--at", "--config"], &[]);
    has(
        &["flatten", "--help"],
        &["--mode", "--at", "--state-dir"],
        &["--once"],
    );
    has(
        &["suspend-trading", "--help"],
        &["--mode", "--resume"],
        &["--at", "--once"],
    );
    has(
        &["simulate", "--help"],
        &["--mode", "--date"],
        &["--at", "--once"],
    );
    has(
        &["alert", "summary", "--help"],
        &["--date", "--state-dir"],
        &["--mode", "--at", "--once"],
    );
    has(
        &["report", "--help"],
        &["--date", "--json", "--state-dir"],
        &["--mode", "--at", "--once"],
    );
}

#[test]
fn mode_and_at_given_before_a_command_still_apply() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    // The mode before the command: alpaca-paper needs keys, so it is refused for them.
    for args in [
        &[
            "--mode",
            "alpaca-paper",
            "suspend-trading",
            "--state-dir",
            state,
        ][..],
        &[
            "suspend-trading",
            "--mode",
            "alpaca-paper",
            "--state-dir",
            state,
        ][..],
    ] {
        let out = run(EXEC, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(10), "{args:?}: {err}");
        assert!(
            err.contains("needed by alpaca-paper mode"),
            "{args:?}: {err}"
        );
    }
    // --at before flatten and after it: a sim flatten with nothing to close.
    for args in [
        &[
            "--mode",
            "sim",
            "--at",
            "2026-11-30T10:00",
            "flatten",
            "--state-dir",
            state,
        ][..],
        &[
            "flatten",
            "--mode",
            "sim",
            "--at",
            "2026-11-30T10:00",
            "--state-dir",
            state,
        ][..],
    ] {
        let out = run(EXEC, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Where it means nothing it is not accepted after the command.
    let out = run(
        EXEC,
        &["report", "--at", "2026-11-30T10:00", "--state-dir", state],
    );
    assert_eq!(out.status.code(), Some(10));
}

#[test]
fn scan_options_are_not_options_of_import() {
    let text = help(SCAN, &["import", "--help"]);
    let opts = options(&text);
    for o in ["--demo", "--as-of", "--provider", "--csv"] {
        assert!(!opts.iter().any(|x| x == o), "import shows {o}: {opts:?}");
    }
    assert!(!text.contains("--demo"), "{text}");
    let text = help(SCAN, &["--help"]);
    assert!(
        text.contains("without --state-dir in a new temporary directory"),
        "{text}"
    );
    // Given together they are refused (exit 10), not silently ignored.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        SCAN,
        &[
            "--demo",
            "import",
            "x.csv",
            "--state-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--demo"), "{err}");
}
