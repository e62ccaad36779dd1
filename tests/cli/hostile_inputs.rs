//! Issue 14's reproductions, one named test each, against the real binaries: input files that
//! used to panic, hang or exhaust memory (a watchlist of only line ends, a FIFO at the
//! watchlist path, an oversized watchlist, a 10 MB header, a gzip bomb) and an import that
//! overwrote good bars with defective ones. Each now gets a prompt, clear, bounded outcome.
//! (The scan whose symbols all fail is covered by `scan::run`'s unit tests, with an injected
//! failing evaluation.)

use avwap::calendar::ny_date;
use avwap::market_data::{read_long_csv, BarStore};
use avwap::watchlist::COLUMNS;
use chrono::{Duration as Days, NaiveDate, Utc};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GATE: &str = env!("CARGO_BIN_EXE_avwap-gate");
const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");
const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");
const DEMO_BARS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo/bars.csv.gz");

/// The session `--at` runs the execution cycle in.
const AT: &str = "2026-11-30T10:00";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `cmd` and fails the test if it is still running after `limit` (it blocked), killing
/// it first. Output is drained while waiting, so a chatty child cannot stall on a full pipe.
fn run_within(cmd: &mut Command, limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}: it blocked; stderr: {}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        took: started.elapsed(),
    }
}

fn gate(path: &Path) -> Run {
    run_within(
        Command::new(GATE)
            .arg("--watchlist")
            .arg(path)
            .env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR"),
        Duration::from_secs(10),
    )
}

/// One simulated execution cycle at [`AT`] on `state_dir`, logging at info (the cycle line
/// says what the watchlist was).
fn execution_once(state_dir: &Path) -> Run {
    run_within(
        Command::new(EXEC)
            .args(["--mode", "sim", "--once", "--at", AT, "--state-dir"])
            .arg(state_dir)
            .env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR")
            .env_remove("AVWAP_MODE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("AVWAP_TEST_CRASH_AT")
            .env("RUST_LOG", "info"),
        Duration::from_secs(60),
    )
}

fn scan(args: &[&str], state_dir: &Path) -> Run {
    run_within(
        Command::new(SCAN)
            .args(args)
            .arg("--state-dir")
            .arg(state_dir)
            .env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR")
            .env("RUST_LOG", "warn"),
        Duration::from_secs(60),
    )
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn watchlist_path(dir: &Path) -> PathBuf {
    dir.join("daily_candidates.csv")
}

/// A watchlist of `rows` distinct symbols for `scan_date`.
fn watchlist_text(scan_date: NaiveDate, rows: usize) -> String {
    let as_of = scan_date - Days::days(3);
    let mut text = format!("{}\n", COLUMNS.join(","));
    for i in 0..rows {
        text.push_str(&format!(
            "1,{scan_date},S{i},Long,A,33.02,32.43,1.82,32.10,33.34,33.67,21.734512,Materials,SwingLow20,0.0125,bullish,none,bullish,1.05,bullish,none,bullish,1.82,moderate,none,bullish,{as_of},{as_of}\n"
        ));
    }
    text
}

fn at_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
}

/// The execution's cycle line for the watchlist, e.g. `watchlist unavailable: …`.
fn cycle_watchlist_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.contains("cycle done; watchlist"))
        .unwrap_or_else(|| panic!("no cycle line in: {}", run.stderr))
}

// ---- a watchlist of only line ends ---------------------------------------------------------

#[test]
fn gate_on_a_watchlist_of_only_line_ends_is_invalid_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = watchlist_path(dir.path());
    for bytes in [&b"\n"[..], b"\r\n", b"\xef\xbb\xbf\n"] {
        std::fs::write(&path, bytes).unwrap();
        let out = gate(&path);
        assert_eq!(out.code, Some(3), "{bytes:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "line 1, column (header): the file is empty but for line ends or a byte-order mark ({} bytes)",
                bytes.len()
            )),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("header line"), "{}", out.stderr);
    }
}

#[test]
fn execution_cycle_on_a_watchlist_of_only_line_ends_sees_no_watchlist() {
    let dir = tempfile::tempdir().unwrap();
    for bytes in [&b"\n"[..], b"\r\n", b"\xef\xbb\xbf\n"] {
        std::fs::write(watchlist_path(dir.path()), bytes).unwrap();
        let out = execution_once(dir.path());
        assert_eq!(out.code, Some(0), "{bytes:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        let line = cycle_watchlist_line(&out);
        assert!(line.contains("watchlist unavailable"), "{line}");
        assert!(line.contains("the file is empty"), "{line}");
        assert!(line.contains("no entries; exits continue"), "{line}");
    }
}

// ---- a FIFO at the watchlist path ----------------------------------------------------------

#[test]
fn gate_on_a_fifo_exits_5_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = watchlist_path(dir.path());
    mkfifo(&path);
    let out = gate(&path);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(5), "{:?}", out.took);
    assert_eq!(
        out.stderr,
        format!(
            "Watchlist cannot be read: it is a FIFO (named pipe), not a regular file. path={} \
             (remove it and re-run the scan: systemctl start scan.service)\n",
            path.display()
        )
    );
}

/// A FIFO at the configuration path is refused at once (exit 10), never waited on: every
/// binary loads the configuration first.
#[test]
fn a_fifo_as_the_configuration_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("avwap.toml");
    mkfifo(&config);
    let out = run_within(
        Command::new(GATE)
            .arg("--config")
            .arg(&config)
            .arg("--watchlist")
            .arg(watchlist_path(dir.path()))
            .env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR"),
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(10), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(5), "{:?}", out.took);
    assert!(
        out.stderr
            .contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        out.stderr
    );
}

#[test]
fn execution_once_on_a_fifo_sees_no_watchlist_and_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&watchlist_path(dir.path()));
    let out = execution_once(dir.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(30), "{:?}", out.took);
    let line = cycle_watchlist_line(&out);
    assert!(
        line.contains("watchlist unavailable: cannot read the watchlist:"),
        "{line}"
    );
    assert!(
        line.contains("is a FIFO (named pipe), not a regular file"),
        "{line}"
    );
}

// ---- oversized watchlists ------------------------------------------------------------------

#[test]
fn gate_refuses_an_oversized_watchlist() {
    let dir = tempfile::tempdir().unwrap();
    let path = watchlist_path(dir.path());
    let today = ny_date(Utc::now());

    // 100 MB (sparse: a valid start, then zeros the gate must not read).
    std::fs::write(&path, watchlist_text(today, 1)).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_len(100_000_000).unwrap();
    drop(file);
    let out = gate(&path);
    if ny_date(Utc::now()) != today {
        return; // New York midnight passed: the file would be judged stale instead.
    }
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is 100000000 bytes, more than the 1048576 bytes accepted for a watchlist"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.len() < 600, "{}", out.stderr);

    // 1,001 rows: under 1 MiB, over the row limit.
    std::fs::write(&path, watchlist_text(today, 1001)).unwrap();
    let out = gate(&path);
    if ny_date(Utc::now()) != today {
        return;
    }
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("line 1002, column (file): more than 1000 data rows"),
        "{}",
        out.stderr
    );

    // 1,000 rows pass.
    std::fs::write(&path, watchlist_text(today, 1000)).unwrap();
    let out = gate(&path);
    if ny_date(Utc::now()) != today {
        return;
    }
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn execution_refuses_an_oversized_watchlist_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let path = watchlist_path(dir.path());
    std::fs::write(&path, watchlist_text(at_date(), 1001)).unwrap();
    let out = execution_once(dir.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let line = cycle_watchlist_line(&out);
    assert!(line.contains("watchlist unavailable"), "{line}");
    assert!(line.contains("more than 1000 data rows"), "{line}");

    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_len(100_000_000).unwrap();
    drop(file);
    let out = execution_once(dir.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(30), "{:?}", out.took);
    let line = cycle_watchlist_line(&out);
    assert!(
        line.contains("is 100000000 bytes, more than the 1048576 bytes accepted for a watchlist"),
        "{line}"
    );
    // No event per row: the state database did not grow by the file's size.
    let db = std::fs::metadata(dir.path().join("execution.sqlite")).unwrap();
    assert!(db.len() < 5_000_000, "{} bytes", db.len());
}

#[test]
fn gate_does_not_echo_a_huge_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = watchlist_path(dir.path());
    for size in [10_000_000usize, 1_000_000] {
        let mut header = vec![b'H'; size];
        header.push(b'\n');
        std::fs::write(&path, header).unwrap();
        let out = gate(&path);
        assert_eq!(
            out.code,
            Some(3),
            "{size}: {}",
            &out.stderr[..out.stderr.len().min(500)]
        );
        assert!(
            out.stderr.len() < 700,
            "{size}: {} bytes of stderr",
            out.stderr.len()
        );
    }
}

// ---- import ------------------------------------------------------------------------------

/// A gzip stream of about 1 MB that expands to 1 GiB of zeros: 1024 concatenated members of
/// 1 MiB each (a multi-member file is valid gzip).
fn gzip_bomb() -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = enc.finish().unwrap();
    member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 1024)
        .collect()
}

#[test]
fn import_of_a_gzip_bomb_fails_fast_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bars.csv.gz");
    std::fs::write(&bomb, gzip_bomb()).unwrap();
    // 1 GiB of address space: the old import needed 4.2 GB for this file.
    let out = run_within(
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1048576 && exec \"$0\" \"$@\"")
            .arg(SCAN)
            .arg("import")
            .arg(&bomb)
            .arg("--state-dir")
            .arg(dir.path())
            .env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR")
            .env("RUST_LOG", "warn"),
        Duration::from_secs(30),
    );
    assert_eq!(
        out.code,
        Some(13),
        "{}",
        &out.stderr[..out.stderr.len().min(2000)]
    );
    assert!(
        out.stderr
            .contains("line 1 is longer than 65536 bytes: this is not a bars CSV"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing from this file was imported"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.len() < 2000,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

#[test]
fn import_never_replaces_stored_bars_with_defective_ones() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let (demo, _) = read_long_csv(Path::new(DEMO_BARS)).unwrap();
    let aapl = &demo["AAPL"];
    let csv = |negate_volume: bool| {
        let mut text = String::from("Date,Symbol,Open,High,Low,Close,Volume\n");
        for b in aapl {
            let volume = if negate_volume { -b.volume } else { b.volume };
            text.push_str(&format!(
                "{},AAPL,{},{},{},{},{volume}\n",
                b.date, b.open, b.high, b.low, b.close
            ));
        }
        text
    };
    let good = state.join("good.csv");
    let bad = state.join("bad.csv");
    std::fs::write(&good, csv(false)).unwrap();
    std::fs::write(&bad, csv(true)).unwrap();
    let rows = aapl.len();

    let out = scan(&["import", good.to_str().unwrap()], state);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let store_path = state.join("bars.sqlite");
    let before = BarStore::open(&store_path)
        .unwrap()
        .bars("AAPL", None, None)
        .unwrap();
    assert_eq!(before.len(), rows);

    let out = scan(&["import", bad.to_str().unwrap()], state);
    // Partly (here wholly) bad input: listed and counted, exit 0 as before.
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "imported 0 of {rows} rows (0 symbols) into {}; {rows} rows rejected ({rows} of them defective bars the scanner would drop; stored bars for their dates were kept)",
            store_path.display()
        )),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains(":2: Volume -"), "{}", out.stderr);
    assert!(out.stderr.contains("is negative: the row is not imported"));
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("rejected: "))
            .count(),
        21,
        "20 listed, then the count of the rest: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("rejected: … and {} more rows", rows - 20)),
        "{}",
        out.stderr
    );
    let after = BarStore::open(&store_path)
        .unwrap()
        .bars("AAPL", None, None)
        .unwrap();
    assert_eq!(after, before, "a stored bar was replaced");
}

#[test]
fn import_of_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bars.csv");
    mkfifo(&fifo);
    let out = scan(&["import", fifo.to_str().unwrap()], dir.path());
    assert_eq!(out.code, Some(13), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(20), "{:?}", out.took);
    assert!(
        out.stderr
            .contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        out.stderr
    );
}
