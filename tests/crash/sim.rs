//! Crash-safety suite of the execution service (issue 4, item 7).
//!
//! The real `avwap-execution` binary trades the demo watchlist of 2010-08-09 against the
//! simulated broker, one `--once --at HH:MM` cycle every 10 minutes from 09:35 to 16:05, then
//! three settling cycles after the close. The reference run (no crash) produces 5 entries
//! (09:55), their fills and initial GTC stops (10:15), R1 trims that first shrink the stop by a
//! replace (10:25 CMI, later PX and PGN), break-even stop raises by replace (10:45 CMI, …) and
//! stop fills. Every case replays that sequence, kills the process (SIGKILL via
//! `AVWAP_TEST_CRASH_AT`) or injects a broker fault in the one cycle where that step of an
//! order's life first happens, restarts it for the remaining cycles, and checks the invariants
//! of `harness::Captured::violations` on the final state of both databases:
//! - at most one entry (and one trim, one exit) per (session, symbol) filled or open at the
//!   broker, unique client order ids, and the daily entry cap;
//! - every broker order of ours known to the database with the same cumulative fill; the
//!   fills of both sides add up; every intent resolved consistently with the broker;
//! - the database owns what the broker holds, and the open protective stops cover exactly the
//!   position (minus an open trim/exit of ours); no stop without a position;
//! - `PRAGMA integrity_check` is ok for execution.sqlite and sim_broker.sqlite;
//!
//! and, where the interruption cannot change what is traded, that positions, realized P&L and
//! the broker's cash equal the reference run's.
//!
//! No exit (`ex`) order happens in the reference scenario: every position leaves through its
//! stop. The `ex` crash points run in a derived scenario where the broker rejects the
//! break-even stop raise of CMI (an injected `RejectNext` on every replace until the exit), so
//! the price falls through the raised level with the old stop still working and the engine
//! cancels it and sells at the market. The `fl` points run in a scenario where the operator's
//! `avwap-execution flatten` replaces the 12:05 cycle.
//!
//! Process lifecycle: two instances started at once on one state directory (exactly one runs,
//! the other exits 11 naming the holder's PID, SIGTERM stops the survivor with 0), and the
//! survivor keeps polling between cycles.

//!
//! The crash and fault cases live in `tests/crash/cases.rs` and run a second time in
//! `alpaca-paper` mode through an Alpaca-shaped HTTP front by `tests/crash/alpaca.rs`.

use super::cases::crash_cases;
use super::harness::*;
use avwap::execution::db::StateDb;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The cases trade against the simulated broker directly (`--mode sim`).
const VENUE: Venue = Venue::Sim;

crash_cases!(VENUE);

// ---- two instances ----

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn kill_all(children: &mut [Child]) {
    for c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Two services started at once on a fresh state directory (real clock, sim mode): exactly
/// one runs, the other exits 11 naming the holder's PID; SIGTERM stops the survivor with 0.
#[test]
fn two_instances_started_at_once_exactly_one_runs() {
    const ROUNDS: usize = 5;
    let mut unnamed = Vec::new();
    for round in 0..ROUNDS {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let spawn = || {
            command(EXEC, tmp.path())
                .args(["--mode", "sim", "--state-dir"])
                .arg(&state)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut children = vec![spawn(), spawn()];
        // Wait for the first of the two to exit.
        let start = Instant::now();
        let (loser, status) = loop {
            if let Some((i, s)) = children
                .iter_mut()
                .enumerate()
                .find_map(|(i, c)| c.try_wait().unwrap().map(|s| (i, s)))
            {
                break (i, s);
            }
            if start.elapsed() > Duration::from_secs(20) {
                kill_all(&mut children);
                panic!("round {round}: neither instance exited: both run");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let winner = 1 - loser;
        let mut message = String::new();
        children[loser]
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut message)
            .unwrap();
        let winner_pid = children[winner].id();
        if status.code() != Some(11) || !message.contains("execution.lock is held") {
            kill_all(&mut children);
            panic!("round {round}: the second instance ended with {status:?}, expected exit 11 (lock held): {message}");
        }
        let names = |pid: u32| message.contains(&format!("pid {pid}"));
        if !names(winner_pid) {
            assert!(
                !names(children[loser].id()),
                "round {round}: the loser named itself: {message}"
            );
            unnamed.push(format!("round {round}: {}", message.trim()));
        }
        // The holder keeps running: it finishes its first cycle (heartbeat) and is still
        // there half a second later.
        let db_path = state.join("execution.sqlite");
        let ready = Instant::now();
        loop {
            let beat = StateDb::open(&db_path)
                .ok()
                .and_then(|db| db.last_heartbeat().ok().flatten());
            if beat.is_some() {
                break;
            }
            if let Some(s) = children[winner].try_wait().unwrap() {
                panic!("round {round}: the lock holder stopped: {s:?}");
            }
            if ready.elapsed() > Duration::from_secs(20) {
                kill_all(&mut children);
                panic!("round {round}: the lock holder never finished its first cycle");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        if let Some(s) = children[winner].try_wait().unwrap() {
            panic!("round {round}: the lock holder stopped by itself: {s:?}");
        }
        sigterm(&children[winner]);
        let Some(status) = wait_exit(&mut children[winner], Duration::from_secs(10)) else {
            kill_all(&mut children);
            panic!("round {round}: no exit within 10 s of SIGTERM");
        };
        assert_eq!(
            status.code(),
            Some(0),
            "round {round}: SIGTERM gave {status:?} (signal {:?})",
            status.signal()
        );
        let db = StateDb::open(&state.join("execution.sqlite")).unwrap();
        assert_eq!(db.integrity_check().unwrap(), "ok");
    }
    assert!(
        unnamed.is_empty(),
        "in {} of {ROUNDS} rounds the refused instance did not name the holder's PID:\n  {}",
        unnamed.len(),
        unnamed.join("\n  ")
    );
}

/// The survivor keeps polling: with a systemd watchdog (WATCHDOG_USEC = 2.5 s, so it sleeps in
/// 1.25 s slices and pings between them; the cycle deadline is 1 s, below that interval) the
/// service must still be running after several slices and stop only on SIGTERM.
#[test]
fn the_service_keeps_running_between_polls_under_a_watchdog() {
    let tmp = tempfile::tempdir().unwrap();
    let socket_path = tmp.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let config = tmp.path().join("avwap.toml");
    std::fs::write(&config, "[execution]\ncycle_deadline_seconds = 1\n").unwrap();
    let mut child = command(EXEC, tmp.path())
        .args(["--mode", "sim", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "2500000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    // Startup and the first cycle, up to READY=1.
    let start = Instant::now();
    while !messages.iter().any(|m| m == "READY=1") {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if start.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no READY=1 from the service: {messages:?}");
        }
    }
    // Four watchdog slices of 1.25 s: it must still be running, pinging.
    let ready = Instant::now();
    let before = messages.len();
    let mut stopped = None;
    while ready.elapsed() < Duration::from_secs(5) {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if let Some(s) = child.try_wait().unwrap() {
            stopped = Some((s, ready.elapsed()));
            break;
        }
    }
    if let Some((status, after)) = stopped {
        panic!(
            "the service stopped by itself {after:?} after READY=1 ({status:?}) without a signal; notifications: {messages:?}"
        );
    }
    let pings = messages[before..]
        .iter()
        .filter(|m| *m == "WATCHDOG=1")
        .count();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no exit within 10 s of SIGTERM");
    }
    assert_eq!(status.unwrap().code(), Some(0));
    assert!(
        pings >= 3,
        "only {pings} watchdog pings in the 5 s after READY=1: {messages:?}"
    );
}

/// A cycle deadline that is not below half the watchdog (here the default 20 s against
/// WatchdogSec = 1 s) is refused at start with exit 10, before anything is opened: a hung
/// broker could otherwise outlast the watchdog and SIGABRT the service mid-cycle.
#[test]
fn a_cycle_deadline_the_watchdog_cannot_wait_for_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out = command(EXEC, tmp.path())
        .args(["--mode", "sim", "--once", "--state-dir"])
        .arg(&state)
        .env("NOTIFY_SOCKET", tmp.path().join("absent.sock"))
        .env("WATCHDOG_USEC", "1000000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("cycle_deadline_seconds = 20") && text.contains("WatchdogSec"),
        "{text}"
    );
    assert!(
        !state.join("execution.sqlite").exists(),
        "nothing is opened"
    );
}
