//! `avwap-execution backtest` as an operator runs it, offline on the bundled demo data: the
//! acceptance range produces trades and backtest.json; rerunning into the same directory is
//! refused (exit 13) unless `--resume` with the same configuration, which recomputes the same
//! bytes; `--resume` with another configuration is refused too. And `simulate` refuses a state
//! directory simulated with another configuration instead of silently reusing its sessions.

// The binary run as simulate.rs runs it: clean environment, warnings only in the log.
use super::simulate::{describe, exec};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// `backtest --from FROM --to TO --out OUT --state-dir state` plus `extra`, in `cwd`.
fn run_backtest(cwd: &Path, (from, to): (&str, &str), out: &str, extra: &[&str]) -> Output {
    exec(cwd)
        .args(["backtest", "--from", from, "--to", to, "--out", out])
        .args(["--state-dir", "state"])
        .args(extra)
        .output()
        .expect("run avwap-execution backtest")
}

/// The acceptance range on the bundled demo data.
fn backtest(cwd: &Path, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--demo"];
    args.extend_from_slice(extra);
    run_backtest(cwd, ("2010-03-01", "2010-08-20"), out, &args)
}

#[test]
fn backtest_demo_writes_its_files_and_refuses_a_used_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let first = backtest(cwd, "run", &[]);
    assert!(first.status.success(), "{}", describe(&first));
    let json_path = cwd.join("run/backtest.json");
    let bytes = std::fs::read(&json_path).unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["range"]["from"], "2010-03-01");
    assert_eq!(json["range"]["sessions"], 122);
    let trips = json["counts"]["round_trips"].as_u64().unwrap();
    assert!(trips > 0, "{json}");
    assert!(json["config_fingerprint"].as_str().unwrap().len() == 64);
    assert!(json["benchmark"].as_str().unwrap().contains("equal-weight"));
    // The closing note quotes these.
    eprintln!(
        "demo 2010-03-01..2010-08-20: {trips} round trips, final equity {}",
        json["final_equity"]
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("round trip(s)"), "{stdout}");

    // The metrics, the two CSV files and the report, consistent with each other.
    let metrics = &json["metrics"];
    assert_eq!(
        metrics["trades"]["count"].as_u64(),
        Some(trips),
        "{metrics}"
    );
    assert_eq!(metrics["sessions"], 122);
    assert!(metrics["sharpe"].is_number(), "{metrics}");
    let equity = std::fs::read_to_string(cwd.join("run/equity.csv")).unwrap();
    assert_eq!(equity.lines().count(), 1 + 122, "one row per session");
    let trades = std::fs::read_to_string(cwd.join("run/trades.csv")).unwrap();
    assert_eq!(
        trades.lines().count() as u64,
        1 + trips,
        "one row per round trip"
    );
    let html = std::fs::read_to_string(cwd.join("run/report.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count() as u64,
        4 + trips,
        "four charts of the run and one per round trip"
    );
    let fetches = html.matches("src=").count() + html.matches("href=\"http").count();
    assert!(
        !html.contains("NaN") && fetches == 0,
        "self-contained, no NaN"
    );
    let files = ["backtest.json", "equity.csv", "trades.csv", "report.html"];
    let all_bytes = |cwd: &Path| -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|f| std::fs::read(cwd.join("run").join(f)).unwrap())
            .collect()
    };
    let written = all_bytes(cwd);

    // A used directory is refused, and nothing in it changes.
    let again = backtest(cwd, "run", &[]);
    assert_eq!(again.status.code(), Some(13), "{}", describe(&again));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already holds a backtest") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&json_path).unwrap(), bytes);

    // --resume with the same configuration recomputes the same bytes.
    let resumed = backtest(cwd, "run", &["--resume"]);
    assert!(resumed.status.success(), "{}", describe(&resumed));
    assert_eq!(std::fs::read(&json_path).unwrap(), bytes);
    assert!(
        all_bytes(cwd) == written,
        "every output is the same bytes again"
    );

    // --resume with another configuration is refused.
    std::fs::write(
        cwd.join("other.toml"),
        "[backtest]\nslippage_bps = \"20\"\n",
    )
    .unwrap();
    let other = backtest(cwd, "run", &["--resume", "--config", "other.toml"]);
    assert_eq!(other.status.code(), Some(13), "{}", describe(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("another configuration"),
        "{}",
        describe(&other)
    );
    assert_eq!(std::fs::read(&json_path).unwrap(), bytes);
}

#[test]
fn simulate_refuses_a_state_dir_simulated_with_another_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let simulate = |extra: &[&str]| {
        exec(cwd)
            .args([
                "simulate",
                "--date",
                "2010-08-09",
                "--days",
                "1",
                "--state-dir",
                "state",
            ])
            .args(extra)
            .output()
            .expect("run avwap-execution simulate")
    };
    let first = simulate(&[]);
    assert!(first.status.success(), "{}", describe(&first));
    let same = simulate(&[]);
    assert!(same.status.success(), "{}", describe(&same));
    std::fs::write(
        cwd.join("other.toml"),
        "[execution]\nrisk_per_trade = \"0.004\"\n",
    )
    .unwrap();
    let other = simulate(&["--config", "other.toml"]);
    assert_eq!(other.status.code(), Some(13), "{}", describe(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("another [scan]/[execution] configuration"),
        "{}",
        describe(&other)
    );
}

#[test]
fn backtest_reads_the_state_dirs_bar_store_and_says_when_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::create_dir(cwd.join("state")).unwrap();
    let store_backtest =
        |out: &str, extra: &[&str]| run_backtest(cwd, ("2010-08-02", "2010-08-20"), out, extra);

    // No store yet: refused with what to do, and nothing written.
    let none = store_backtest("empty", &[]);
    assert_eq!(none.status.code(), Some(13), "{}", describe(&none));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("no bar store") && stderr.contains("avwap-scan import"),
        "{stderr}"
    );
    assert!(!cwd.join("empty/backtest.json").exists());

    // The store an operator fills with `avwap-scan import` (the demo bars, which hold no SPY:
    // the operator tells the regime filter to do without it, deliberately).
    let demo_csv = concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo/bars.csv.gz");
    let import = Command::new(env!("CARGO_BIN_EXE_avwap-scan"))
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .args(["import", demo_csv, "--state-dir", "state"])
        .output()
        .expect("run avwap-scan import");
    assert!(import.status.success(), "{}", describe(&import));
    std::fs::write(
        cwd.join("skip-regime.toml"),
        "[scan.regime]\non_missing_benchmark = \"skip-regime\"\n",
    )
    .unwrap();
    let run = store_backtest("store-run", &["--config", "skip-regime.toml"]);
    assert!(run.status.success(), "{}", describe(&run));
    let json: Value =
        serde_json::from_slice(&std::fs::read(cwd.join("store-run/backtest.json")).unwrap())
            .unwrap();
    assert!(
        json["data"]["source"]
            .as_str()
            .unwrap()
            .starts_with("store:"),
        "{json}"
    );
    assert_eq!(json["range"]["sessions"], 15);
    assert!(
        json["counts"]["round_trips"].as_u64().unwrap() > 0,
        "{json}"
    );
    assert!(cwd.join("store-run/report.html").exists());
}
