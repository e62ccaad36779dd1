//! The real `avwap-execution` in alpaca-paper against a fake Alpaca that, after a normal start,
//! accepts connections and never answers: every cycle ends within the cycle deadline (+ 2 s),
//! the watchdog is pinged at least that often, the outage does not multiply into a request per
//! order, nothing is ordered, and the process is never killed; SIGTERM still stops it cleanly.
//!
//! The stall lasts `AVWAP_TEST_STALL_SECONDS` (default 20 s) with a cycle deadline of
//! `AVWAP_TEST_STALL_DEADLINE` seconds (default 2; the watchdog is then 10 s, or 60 s as in the
//! unit for deadlines from 5 s). The 10-minute run with the production deadline:
//! `AVWAP_TEST_STALL_SECONDS=600 AVWAP_TEST_STALL_DEADLINE=20 cargo test --test alpaca watchdog -- --nocapture`.

use super::execution::{
    breakout, config, cycle, exec, state_with_watchlist, stderr, tradable, DAY,
};
use super::fake_alpaca::FakeAlpaca;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the issue allows beyond the deadline.
const SLACK: Duration = Duration::from_secs(2);

type Log = Arc<Mutex<Vec<(Instant, String)>>>;

/// Collect every sd_notify datagram with the time it arrived.
fn listen(socket: UnixDatagram) -> Log {
    let log: Log = Arc::default();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            sink.lock().unwrap().push((Instant::now(), text));
        }
    });
    log
}

/// Collect the child's stderr lines with the time each arrived.
fn collect_stderr(child: &mut Child) -> Log {
    let log: Log = Arc::default();
    let sink = log.clone();
    let pipe = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push((Instant::now(), line));
        }
    });
    log
}

fn wait_for(log: &Log, what: &str, timeout: Duration) -> Option<Instant> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some((t, _)) = log.lock().unwrap().iter().find(|(_, m)| m.contains(what)) {
            return Some(*t);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stall_seconds() -> u64 {
    env_number("AVWAP_TEST_STALL_SECONDS", 20)
}

/// The cycle deadline of this run (seconds) and the watchdog the "unit" asks for (µs).
fn deadline_and_watchdog() -> (u64, u64) {
    let deadline = env_number("AVWAP_TEST_STALL_DEADLINE", 2).max(1);
    let watchdog_seconds = if deadline < 5 {
        10
    } else {
        60.max(2 * deadline + 1)
    };
    (deadline, watchdog_seconds * 1_000_000)
}

#[test]
fn a_hung_broker_never_outlasts_the_cycle_deadline_or_the_watchdog() {
    let (deadline, watchdog_usec) = deadline_and_watchdog();
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    breakout(&fake, tradable(&rows));
    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
    // A normal cycle first: an entry order is working, so the journal has an order of ours
    // that an outage could turn into a lookup per order.
    let out = cycle(&cfg, dir.path(), "10:05");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text = text.replacen(
        "[alpaca]",
        &format!(
            "[execution]\ncycle_deadline_seconds = {deadline}\npoll_seconds_open = 1\n\n[alpaca]"
        ),
        1,
    );
    std::fs::write(&cfg, text).unwrap();

    let socket_path = dir.path().join("notify.sock");
    let notify = listen(UnixDatagram::bind(&socket_path).unwrap());
    let when = format!("{DAY}T10:15");
    let mut child = exec(&cfg, dir.path(), &["--at", &when])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", watchdog_usec.to_string())
        .env_remove("WATCHDOG_PID")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let logs = collect_stderr(&mut child);
    assert!(
        wait_for(&notify, "READY=1", Duration::from_secs(30)).is_some(),
        "no READY=1; stderr: {:?}",
        logs.lock().unwrap()
    );

    // The outage.
    fake.set_stalled(true);
    let stalled_at = Instant::now();
    let requests_before = fake.requests().len();
    let cycles_before = logs
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, l)| l.contains("cycle done"))
        .count();
    let stall = Duration::from_secs(stall_seconds());
    while stalled_at.elapsed() < stall {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the service ended during the outage: {:?}",
            logs.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stall_end = Instant::now();
    let requests: Vec<_> = fake.requests().split_off(requests_before);

    // SIGTERM ends it cleanly within the deadline (the current step finishes first).
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stop_started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stop_started.elapsed() < Duration::from_secs(deadline) + SLACK + SLACK,
            "SIGTERM did not stop the service in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stop_took = stop_started.elapsed();
    assert!(
        status.success(),
        "exit {status:?}; {:?}",
        logs.lock().unwrap()
    );

    // Watchdog pings: never further apart than deadline + 2 s during the outage.
    let pings: Vec<Instant> = notify
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, m)| m.contains("WATCHDOG=1") && *t >= stalled_at && *t <= stall_end)
        .map(|(t, _)| *t)
        .collect();
    let mut points = vec![stalled_at];
    points.extend(&pings);
    points.push(stall_end);
    let longest_gap = points
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    // Cycles: each ends within the deadline + 2 s (consecutive "cycle done" lines are one cycle
    // plus the 1 s poll wait apart).
    let cycle_ends: Vec<Instant> = logs
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, l)| l.contains("cycle done") && *t >= stalled_at && *t <= stall_end)
        .map(|(t, _)| *t)
        .collect();
    let cycles = cycle_ends.len();
    let longest_cycle = cycle_ends
        .windows(2)
        .map(|w| (w[1] - w[0]).saturating_sub(Duration::from_secs(1)))
        .max()
        .unwrap_or_default();
    let order_lookups = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v2/orders:by_client_order_id"))
        .count();
    let posts = requests.iter().filter(|r| r.method != "GET").count();
    println!(
        "stall {:.0} s: {cycles} cycles (before the stall {cycles_before}), {} pings, longest ping gap {:.2} s, longest cycle {:.2} s, \
         {} requests ({:.1} per cycle, {order_lookups} order lookups, {posts} non-GET), SIGTERM took {:.2} s",
        stall.as_secs_f64(),
        pings.len(),
        longest_gap.as_secs_f64(),
        longest_cycle.as_secs_f64(),
        requests.len(),
        requests.len() as f64 / cycles.max(1) as f64,
        stop_took.as_secs_f64()
    );
    let limit = Duration::from_secs(deadline) + SLACK;
    assert!(
        longest_gap <= limit,
        "watchdog pings {longest_gap:?} apart (limit {limit:?})"
    );
    assert!(
        cycles as u64 >= stall.as_secs() / (deadline + 2),
        "only {cycles} cycles in {stall:?}"
    );
    assert!(
        longest_cycle <= limit,
        "a cycle took {longest_cycle:?} (limit {limit:?})"
    );
    // No storm: the five reads of a cycle (account, positions, open orders, bars, trades),
    // each retried at most 3 times inside the deadline (a 20 s deadline fits a second attempt
    // after the 15 s request timeout), and at most one order lookup per cycle — never a
    // request per order.
    assert!(
        requests.len() <= (cycles + 1) * 5 * 4,
        "{} requests in {cycles} cycles: {:?}",
        requests.len(),
        requests.iter().map(|r| r.path.as_str()).collect::<Vec<_>>()
    );
    assert!(
        order_lookups <= cycles.max(1),
        "{order_lookups} order lookups in {cycles} cycles"
    );
    assert_eq!(posts, 0, "nothing is ordered against a silent broker");
    let warned = logs
        .lock()
        .unwrap()
        .iter()
        .any(|(_, l)| l.contains("reads_incomplete") || l.contains("unavailable"));
    assert!(warned, "the outage is logged");
}
