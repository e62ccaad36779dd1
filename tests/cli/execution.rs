//! The real `avwap-execution` binary: modes fail closed, the lock, one cycle, clean shutdown.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");

fn exec_cmd(args: &[&str], state_dir: &Path) -> Command {
    let mut cmd = Command::new(EXEC);
    cmd.args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_MODE")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("AVWAP_TEST_CRASH_AT")
        .env("RUST_LOG", "warn");
    cmd
}

fn run(args: &[&str], state_dir: &Path) -> Output {
    exec_cmd(args, state_dir)
        .output()
        .expect("run avwap-execution")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn broker_modes_without_credentials_fail_fast_and_touch_nothing() {
    for mode in ["dry-run", "alpaca-paper", "alpaca-live"] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let started = Instant::now();
        let out = exec_cmd(&["--mode", mode, "--once"], &state)
            .env_remove("APCA_API_KEY_ID")
            .env_remove("APCA_API_SECRET_KEY")
            .env_remove("AVWAP_LIVE_ACCOUNT")
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(10), "{mode}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mode} took {:?}",
            started.elapsed()
        );
        let named = if mode == "alpaca-live" {
            "alpaca-live-account"
        } else {
            "alpaca-key-id"
        };
        assert!(err.contains(named), "{mode}: {err}");
        // The message names the mode that is running, not every mode that needs the keys.
        if mode != "alpaca-live" {
            assert!(
                err.contains(&format!("needed by {mode} mode")),
                "{mode}: {err}"
            );
            assert!(
                !err.contains("alpaca-paper and alpaca-live"),
                "{mode}: {err}"
            );
        }
        assert!(err.contains("nothing"), "{mode}: {err}");
        assert!(!state.exists(), "{mode} created the state directory");
    }
}

#[test]
fn unknown_mode_is_a_config_error_never_live() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_cmd(&["--once"], dir.path())
        .env("AVWAP_MODE", "live")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("AVWAP_MODE"), "{}", stderr(&out));
    let out = run(&["--mode", "LIVE", "--once"], dir.path());
    assert_eq!(out.status.code(), Some(10));
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "mode = \"paper\"\n").unwrap();
    let out = run(&["--config", cfg.to_str().unwrap(), "--once"], dir.path());
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
}

#[test]
fn at_is_refused_against_a_real_alpaca_and_in_live() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "--mode",
            "alpaca-paper",
            "--at",
            "2026-11-30T10:00",
            "--once",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
}

#[test]
fn one_sim_cycle_on_a_fresh_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["--mode", "sim", "--once", "--at", "2026-11-30T10:00"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for file in ["execution.sqlite", "sim_broker.sqlite", "execution.lock"] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }
    let db = avwap::execution::db::StateDb::open(&dir.path().join("execution.sqlite")).unwrap();
    assert_eq!(db.integrity_check().unwrap(), "ok");
    assert!(db.last_heartbeat().unwrap().is_some());
}

#[test]
fn a_second_instance_is_refused_and_sigterm_stops_the_first_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = exec_cmd(&["--mode", "sim"], dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first instance holds the lock and has written its heartbeat.
    let started = Instant::now();
    let db_path = dir.path().join("execution.sqlite");
    loop {
        let ready = db_path.exists()
            && avwap::execution::db::StateDb::open(&db_path)
                .ok()
                .and_then(|db| db.last_heartbeat().ok().flatten())
                .is_some();
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "first instance never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = run(&["--mode", "sim", "--once"], dir.path());
    assert_eq!(second.status.code(), Some(11), "{}", stderr(&second));
    let msg = stderr(&second);
    assert!(
        msg.contains(&first.id().to_string()),
        "holder pid not named: {msg}"
    );

    let stop_sent = Instant::now();
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        assert!(
            stop_sent.elapsed() < Duration::from_secs(10),
            "no clean exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}
