//! Harness of the crash-safety suite: the demo scenario of 2010-08-09 built once per test
//! process, the real `avwap-execution` binary run cycle by cycle with `--at`, crash points and
//! broker faults, and the invariants checked on the final state of both databases.

use super::alpaca_front;
use avwap::broker::sim::{SimBroker, SimConfig, SimFault, SimMethod, SimSnapshot};
use avwap::broker::{BrokerOrder, OrderType, Side};
use avwap::execution::config::ExecutionConfig;
use avwap::execution::db::{Event, Fill, OrderRow, OwnedPosition, StateDb};
use avwap::execution::ids::{self, ClientOrderId, Leg};
use avwap::execution::lifecycle::CRASH_ENV;
use avwap::execution::service::{parse_at, SIM_BROKER_FILE};
use avwap::market_data::intraday::BarListFeed;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::OnceLock;

pub const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");
pub const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");
/// The session the scenario trades (New York).
pub const DAY: &str = "2010-08-09";
/// Files of the scenario template copied into every case's state directory.
const TEMPLATE_FILES: [&str; 3] = ["bars.sqlite", "bars.sqlite-wal", "daily_candidates.csv"];
pub const SIGKILL: i32 = 9;
pub const SIGABRT: i32 = 6;

/// A command for one of our binaries with a clean environment (no config, state dir, mode,
/// sd_notify socket, watchdog or crash point inherited from the test's environment).
pub fn command(bin: &str, cwd: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_MODE")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove(CRASH_ENV)
        .env("RUST_LOG", "warn");
    cmd
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// New York wall-clock times of the scenario's cycles: 09:35, 09:45, … 16:05.
pub fn session_times() -> Vec<String> {
    let mut out = Vec::new();
    let mut minutes = 9 * 60 + 35;
    while minutes <= 16 * 60 + 5 {
        out.push(format!("{:02}:{:02}", minutes / 60, minutes % 60));
        minutes += 10;
    }
    out
}

/// Cycles after the close so every unresolved order and every stop settles.
pub const SETTLE_TIMES: [&str; 3] = ["16:15", "16:25", "16:35"];

/// Every cycle of a sequence: the session, then the settling cycles.
pub fn all_times() -> Vec<String> {
    let mut t = session_times();
    t.extend(SETTLE_TIMES.iter().map(|s| s.to_string()));
    t
}

pub fn instant(time: &str) -> DateTime<Utc> {
    parse_at(&format!("{DAY}T{time}")).expect("a New York time")
}

/// The New York time (HH:MM of the scenario) of a cycle instant.
pub fn time_of(at: DateTime<Utc>) -> String {
    all_times()
        .into_iter()
        .find(|t| instant(t) == at)
        .unwrap_or_else(|| panic!("{at} is not a cycle of the scenario"))
}

struct Template {
    files: Vec<(&'static str, Vec<u8>)>,
}

static TEMPLATE: OnceLock<Template> = OnceLock::new();

/// The bar store and the watchlist for 2010-08-09, built once per test process by the real
/// `avwap-scan` from the demo data, kept in memory.
fn template() -> &'static Template {
    TEMPLATE.get_or_init(|| {
        let tmp = scratch_dir();
        let state = tmp.path().join("state");
        let bars = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo/bars.csv.gz");
        let out = command(SCAN, tmp.path())
            .arg("import")
            .arg(&bars)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap();
        assert!(out.status.success(), "import: {}", stderr(&out));
        let out = command(SCAN, tmp.path())
            .args(["--demo", "--as-of", DAY, "--state-dir"])
            .arg(&state)
            .output()
            .unwrap();
        assert!(out.status.success(), "scan: {}", stderr(&out));
        let files: Vec<_> = TEMPLATE_FILES
            .iter()
            .filter_map(|name| std::fs::read(state.join(name)).ok().map(|b| (*name, b)))
            .collect();
        let watchlist = files
            .iter()
            .find(|(n, _)| *n == "daily_candidates.csv")
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .expect("the scan wrote no watchlist");
        let rows: Vec<&str> = watchlist.lines().skip(1).collect();
        assert_eq!(rows.len(), 20, "expected a 20-row watchlist:\n{watchlist}");
        assert!(
            rows.iter().all(|r| r.starts_with(&format!("1,{DAY},"))),
            "the watchlist is not for {DAY}"
        );
        Template { files }
    })
}

/// A scratch directory, on tmpfs when there is one: the suite kills processes, it does not
/// cut power, so fsync durability is not under test and tmpfs makes the ~1000 cycles of the
/// suite about a third faster.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("avwap-crash-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// A new state directory holding the scenario's bar store and watchlist.
pub fn fresh_state_dir() -> tempfile::TempDir {
    let template = template();
    let dir = scratch_dir();
    for (name, bytes) in &template.files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// What the harness does around one cycle.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// `AVWAP_TEST_CRASH_AT` for this run only.
    pub crash_at: Option<String>,
    /// Faults queued in the simulated broker just before the run.
    pub faults: Vec<(SimMethod, SimFault)>,
    /// Drop every queued fault before queueing `faults`.
    pub clear_faults: bool,
    /// The signal the run must die of; `None`: it must exit 0.
    pub expect_signal: Option<i32>,
    /// Run `avwap-execution flatten` (a cycle, then every owned position sold at the market)
    /// instead of a plain cycle.
    pub flatten: bool,
}

/// What the binary trades against in a suite (`tests/crash/sim.rs` and `tests/crash/alpaca.rs`
/// each set their `VENUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venue {
    /// `--mode sim`: the simulated broker in the state directory.
    Sim,
    /// `--mode alpaca-paper` through [`alpaca_front`] over that same simulated broker.
    AlpacaPaper,
}

/// One cycle of the real binary at `time` (New York, on 2010-08-09), or a flatten.
pub fn run_cycle(
    venue: Venue,
    dir: &Path,
    time: &str,
    crash_at: Option<&str>,
    flatten: bool,
) -> Output {
    let mut cmd = command(EXEC, dir);
    if flatten {
        cmd.arg("flatten");
    } else {
        cmd.arg("--once");
    }
    let front = match venue {
        Venue::Sim => {
            cmd.args(["--mode", "sim"]);
            None
        }
        Venue::AlpacaPaper => {
            let front = alpaca_front::front_for(dir);
            front.set_now(instant(time));
            cmd.args(["--mode", "alpaca-paper", "--config"])
                .arg(front.config_file())
                .env("APCA_API_KEY_ID", alpaca_front::KEY_ID)
                .env("APCA_API_SECRET_KEY", alpaca_front::SECRET)
                .env_remove("CREDENTIALS_DIRECTORY");
            Some(front)
        }
    };
    cmd.arg("--at")
        .arg(format!("{DAY}T{time}"))
        .arg("--state-dir")
        .arg(dir);
    if let Some(point) = crash_at {
        cmd.env(CRASH_ENV, point);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run avwap-execution");
    if let Some(front) = &front {
        front.set_client_pid(Some(child.id()));
    }
    let output = child.wait_with_output().expect("wait for avwap-execution");
    if let Some(front) = &front {
        front.set_client_pid(None);
    }
    output
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("signal {s}"),
        _ => format!("{status:?}"),
    }
}

/// The simulated broker of a state directory, opened from the test process (the binary is
/// not running). A new file starts at `time`.
pub fn sim_broker(dir: &Path, time: &str) -> SimBroker {
    SimBroker::open(
        &dir.join(SIM_BROKER_FILE),
        SimConfig {
            start: Some(instant(time)),
            ..SimConfig::default()
        },
        Box::new(BarListFeed::new(Vec::new())),
    )
    .expect("open the simulated broker")
}

/// Run the cycles at `times`, asking `spec` what to do around each; asserts each run ended
/// as expected.
pub fn run_sequence(
    venue: Venue,
    dir: &Path,
    times: &[String],
    mut spec: impl FnMut(&Path, &str) -> RunSpec,
) {
    for time in times {
        let s = spec(dir, time);
        if s.clear_faults || !s.faults.is_empty() {
            let mut broker = sim_broker(dir, time);
            if s.clear_faults {
                broker.clear_faults().unwrap();
            }
            for (method, fault) in &s.faults {
                broker.inject_fault(*method, fault.clone()).unwrap();
            }
        }
        let out = run_cycle(venue, dir, time, s.crash_at.as_deref(), s.flatten);
        match s.expect_signal {
            None => assert!(
                out.status.success(),
                "cycle at {time} ended with {} (expected exit 0): {}",
                describe(out.status),
                stderr(&out)
            ),
            Some(sig) => assert_eq!(
                out.status.signal(),
                Some(sig),
                "cycle at {time} ended with {} (expected signal {sig}; crash point {:?}, faults {:?}): {}",
                describe(out.status),
                s.crash_at,
                s.faults,
                stderr(&out)
            ),
        }
    }
}

/// One intent row in journal order.
#[derive(Debug, Clone)]
pub struct IntentRow {
    pub client_order_id: String,
    pub symbol: String,
    pub leg: String,
    pub replaces_order_id: Option<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

impl IntentRow {
    /// The leg code of crash points: `en`, `st`, `tr`, `ex`, `fl`.
    pub fn leg_code(&self) -> &str {
        if self.leg.starts_with("st") {
            "st"
        } else {
            &self.leg
        }
    }
}

/// Everything the invariants and the comparisons look at.
#[derive(Debug, Clone)]
pub struct Captured {
    pub broker: SimSnapshot,
    pub db_orders: Vec<OrderRow>,
    pub db_fills: Vec<Fill>,
    pub positions: Vec<OwnedPosition>,
    pub events: Vec<Event>,
    pub intents: Vec<IntentRow>,
    pub db_integrity: String,
    pub broker_integrity: String,
}

fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("; ")
}

/// Intents in the order they were journaled.
pub fn intents(db_path: &Path) -> Vec<IntentRow> {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT client_order_id, symbol, leg, replaces_order_id, state, created_at
             FROM intents ORDER BY rowid",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(IntentRow {
            client_order_id: r.get(0)?,
            symbol: r.get(1)?,
            leg: r.get(2)?,
            replaces_order_id: r.get(3)?,
            state: r.get(4)?,
            created_at: DateTime::parse_from_rfc3339(&r.get::<_, String>(5)?)
                .unwrap()
                .with_timezone(&Utc),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("execution.sqlite")
}

/// Read both databases of a state directory (no binary may be running).
pub fn capture(dir: &Path) -> Captured {
    let db = StateDb::open(&db_path(dir)).expect("open execution.sqlite");
    let broker = sim_broker(dir, "09:35");
    Captured {
        broker: broker.snapshot().unwrap(),
        db_orders: db.all_orders().unwrap(),
        db_fills: db.fills().unwrap(),
        positions: db.all_positions().unwrap(),
        events: db.events(None).unwrap(),
        intents: intents(&db_path(dir)),
        db_integrity: db.integrity_check().unwrap(),
        broker_integrity: integrity(&dir.join(SIM_BROKER_FILE)),
    }
}

fn is_stop(o: &BrokerOrder) -> bool {
    o.side == Side::Sell && o.order_type == OrderType::Stop
}

fn remaining(o: &BrokerOrder) -> Decimal {
    o.qty - o.filled_qty
}

impl Captured {
    pub fn broker_order(&self, client_order_id: &str) -> Option<&BrokerOrder> {
        self.broker
            .orders
            .iter()
            .find(|o| o.client_order_id == client_order_id)
    }

    pub fn db_order(&self, client_order_id: &str) -> Option<&OrderRow> {
        self.db_orders
            .iter()
            .find(|o| o.order.client_order_id == client_order_id)
    }

    pub fn intents_in_state(&self, state: &str) -> Vec<&IntentRow> {
        self.intents.iter().filter(|i| i.state == state).collect()
    }

    /// Open sell stops of ours at the broker, per symbol: remaining quantity.
    pub fn open_stop_qty(&self, symbol: &str) -> Decimal {
        self.broker
            .orders
            .iter()
            .filter(|o| o.symbol == symbol && is_stop(o) && o.status.is_open())
            .map(remaining)
            .sum()
    }

    /// Our open sell orders other than stops (trims, exits) at the broker: remaining quantity.
    pub fn open_other_sell_qty(&self, symbol: &str) -> Decimal {
        self.broker
            .orders
            .iter()
            .filter(|o| {
                o.symbol == symbol
                    && o.side == Side::Sell
                    && !is_stop(o)
                    && o.status.is_open()
                    && ids::is_ours(&o.client_order_id)
            })
            .map(remaining)
            .sum()
    }

    pub fn broker_position(&self, symbol: &str) -> Decimal {
        self.broker
            .positions
            .iter()
            .find(|p| p.symbol == symbol)
            .map_or(Decimal::ZERO, |p| p.qty)
    }

    pub fn owned_qty(&self, symbol: &str) -> Decimal {
        self.positions
            .iter()
            .find(|p| p.symbol == symbol && p.open)
            .map_or(Decimal::ZERO, |p| p.qty)
    }

    /// Every invariant of the suite; the violations, empty when all hold.
    pub fn violations(&self) -> Vec<String> {
        let mut v = self.safety_violations();
        v.extend(self.journal_violations());
        v
    }

    /// What must hold whatever happened to the journal: sound databases, unique ids, no
    /// duplicated entry/trim/exit, the daily entry cap, and every broker position owned in full
    /// and covered by its stop (minus what our trim/exit orders are selling).
    pub fn safety_violations(&self) -> Vec<String> {
        let mut v = self.order_safety_violations();
        v.extend(self.position_violations());
        v
    }

    fn order_safety_violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let config = ExecutionConfig::default();

        // Both databases are sound.
        if self.db_integrity != "ok" {
            v.push(format!(
                "execution.sqlite integrity_check: {}",
                self.db_integrity
            ));
        }
        if self.broker_integrity != "ok" {
            v.push(format!(
                "sim_broker.sqlite integrity_check: {}",
                self.broker_integrity
            ));
        }

        // Every broker client order id is unique.
        let mut seen = BTreeSet::new();
        for o in &self.broker.orders {
            if !seen.insert(o.client_order_id.as_str()) {
                v.push(format!(
                    "client order id {} used twice at the broker",
                    o.client_order_id
                ));
            }
        }

        // At most one live or filled entry, trim and exit per (session, symbol): no order is
        // duplicated for one intent (a trim is decided once per position).
        let mut legs: BTreeMap<(Leg, chrono::NaiveDate, String), Vec<&BrokerOrder>> =
            BTreeMap::new();
        for o in &self.broker.orders {
            if let Some(id) = ClientOrderId::parse(&o.client_order_id) {
                let once = matches!(id.leg, Leg::Entry | Leg::Trim | Leg::Exit);
                if once && (o.filled_qty > Decimal::ZERO || o.status.is_open()) {
                    legs.entry((id.leg, id.session, id.symbol))
                        .or_default()
                        .push(o);
                }
            }
        }
        for ((leg, session, symbol), list) in &legs {
            if list.len() > 1 {
                let ids: Vec<_> = list.iter().map(|o| o.client_order_id.as_str()).collect();
                v.push(format!(
                    "{} {leg} orders filled or open for {symbol} in {session}: {ids:?}",
                    list.len()
                ));
            }
        }
        let entries: BTreeSet<(chrono::NaiveDate, &str)> = legs
            .keys()
            .filter(|(leg, _, _)| *leg == Leg::Entry)
            .map(|(_, session, symbol)| (*session, symbol.as_str()))
            .collect();
        // The daily entry cap holds even when an order's outcome was unknown when the next
        // entries were decided.
        let mut per_session: BTreeMap<chrono::NaiveDate, usize> = BTreeMap::new();
        for (session, _) in &entries {
            *per_session.entry(*session).or_default() += 1;
        }
        let cap = config.max_entries_per_day as usize;
        for (session, n) in per_session {
            if n > cap {
                let symbols: Vec<_> = entries
                    .iter()
                    .filter(|(s, _)| *s == session)
                    .map(|(_, sym)| *sym)
                    .collect();
                v.push(format!(
                    "{n} symbols entered in {session}, above max_entries_per_day {cap} (max_positions {}): {symbols:?}",
                    config.max_positions
                ));
            }
        }

        v
    }

    /// What holds when the journal was never lost: it knows every order and fill of ours
    /// exactly as the broker does, and every intent is resolved consistently.
    fn journal_violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        // Every broker order of ours is known to the database with the same cumulative fill,
        // and the database knows no order the broker does not have.
        for o in &self.broker.orders {
            if !ids::is_ours(&o.client_order_id) {
                continue;
            }
            match self.db_order(&o.client_order_id) {
                None => v.push(format!(
                    "broker order {} ({}, {} {} {}, filled {}) is unknown to the database",
                    o.client_order_id, o.id, o.status, o.qty, o.symbol, o.filled_qty
                )),
                Some(row) => {
                    if row.order.filled_qty != o.filled_qty {
                        v.push(format!(
                            "{}: the database has filled_qty {}, the broker {}",
                            o.client_order_id, row.order.filled_qty, o.filled_qty
                        ));
                    }
                    if row.order.id != o.id {
                        v.push(format!(
                            "{}: broker id {} in the database, {} at the broker",
                            o.client_order_id, row.order.id, o.id
                        ));
                    }
                    if row.order.status.is_open() != o.status.is_open() {
                        v.push(format!(
                            "{}: status {} in the database, {} at the broker",
                            o.client_order_id, row.order.status, o.status
                        ));
                    }
                }
            }
        }
        for row in &self.db_orders {
            if self.broker_order(&row.order.client_order_id).is_none() {
                v.push(format!(
                    "the database has order {} that the broker does not",
                    row.order.client_order_id
                ));
            }
        }

        // No fill lost or invented: per client order id, the database's fills add up to its
        // cumulative quantity, and the broker's fills to the broker's.
        let mut db_fill_qty: BTreeMap<&str, Decimal> = BTreeMap::new();
        for f in &self.db_fills {
            *db_fill_qty.entry(f.client_order_id.as_str()).or_default() += f.qty;
        }
        let mut sim_fill_qty: BTreeMap<&str, Decimal> = BTreeMap::new();
        for f in &self.broker.fills {
            *sim_fill_qty.entry(f.client_order_id.as_str()).or_default() += f.qty;
        }
        for o in &self.broker.orders {
            if !ids::is_ours(&o.client_order_id) {
                continue;
            }
            let db = db_fill_qty
                .get(o.client_order_id.as_str())
                .copied()
                .unwrap_or_default();
            let sim = sim_fill_qty
                .get(o.client_order_id.as_str())
                .copied()
                .unwrap_or_default();
            if db != o.filled_qty || sim != o.filled_qty {
                v.push(format!(
                    "{}: the broker reports filled {}, its fills add up to {sim}, the database's fills to {db}",
                    o.client_order_id, o.filled_qty
                ));
            }
        }
        for cid in db_fill_qty.keys() {
            if self.broker_order(cid).is_none() {
                v.push(format!(
                    "the database has fills of {cid}, unknown to the broker"
                ));
            }
        }

        // Every journaled intent is resolved, consistently with the broker.
        for i in &self.intents {
            let at_broker = self.broker_order(&i.client_order_id).is_some();
            match i.state.as_str() {
                "acknowledged" if !at_broker => v.push(format!(
                    "intent {} is acknowledged but the broker has no such order",
                    i.client_order_id
                )),
                "acknowledged" if self.db_order(&i.client_order_id).is_none() => v.push(format!(
                    "intent {} is acknowledged but no order is recorded",
                    i.client_order_id
                )),
                "not_placed" | "rejected" if at_broker => v.push(format!(
                    "intent {} is {} but the broker has the order",
                    i.client_order_id, i.state
                )),
                "journaled" => v.push(format!(
                    "intent {} is still unresolved after the settling cycles",
                    i.client_order_id
                )),
                _ => {}
            }
        }

        v
    }

    fn position_violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        // Positions: the database owns what the broker holds, and the protective stops at the
        // broker cover exactly that (minus what an open trim/exit order of ours is selling).
        let mut symbols: BTreeSet<&str> = self
            .broker
            .positions
            .iter()
            .map(|p| p.symbol.as_str())
            .collect();
        symbols.extend(
            self.positions
                .iter()
                .filter(|p| p.open)
                .map(|p| p.symbol.as_str()),
        );
        symbols.extend(
            self.broker
                .orders
                .iter()
                .filter(|o| o.side == Side::Sell && o.status.is_open())
                .map(|o| o.symbol.as_str()),
        );
        for symbol in symbols {
            let held = self.broker_position(symbol);
            let owned = self.owned_qty(symbol);
            if held != owned {
                v.push(format!(
                    "{symbol}: the broker holds {held}, the database owns {owned}"
                ));
            }
            let stop = self.open_stop_qty(symbol);
            let selling = self.open_other_sell_qty(symbol);
            if stop + selling != held {
                v.push(format!(
                    "{symbol}: position {held}, open protective stop qty {stop} + open trim/exit qty {selling}"
                ));
            }
        }
        v
    }

    pub fn assert_invariants(&self, case: &str) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "{case}: {} invariant violation(s):\n  - {}\n{}",
            v.len(),
            v.join("\n  - "),
            self.summary()
        );
    }

    /// Positions (all, with P&L) and the broker's cash and positions.
    pub fn economics(&self) -> Economics {
        Economics {
            positions: self
                .positions
                .iter()
                .map(|p| {
                    (
                        p.symbol.clone(),
                        PositionEconomics {
                            qty: p.qty,
                            avg_price: p.avg_price,
                            realized_pnl: p.realized_pnl,
                            open: p.open,
                        },
                    )
                })
                .collect(),
            broker_positions: self
                .broker
                .positions
                .iter()
                .map(|p| (p.symbol.clone(), (p.qty, p.avg_entry_price)))
                .collect(),
            cash: self.broker.cash,
        }
    }

    /// A readable account of the orders and positions (for failure messages).
    pub fn summary(&self) -> String {
        let mut s = String::from("broker orders:\n");
        for o in &self.broker.orders {
            s.push_str(&format!(
                "    {} {} {} {:?} {:?} qty {} filled {} stop {:?} limit {:?}\n",
                o.id,
                o.client_order_id,
                o.status,
                o.side,
                o.order_type,
                o.qty,
                o.filled_qty,
                o.stop_price,
                o.limit_price
            ));
        }
        s.push_str("broker positions:\n");
        for p in &self.broker.positions {
            s.push_str(&format!(
                "    {} {} @ {}\n",
                p.symbol, p.qty, p.avg_entry_price
            ));
        }
        s.push_str("owned positions:\n");
        for p in &self.positions {
            s.push_str(&format!(
                "    {} qty {} avg {} stop {} trimmed {} open {} pnl {}\n",
                p.symbol, p.qty, p.avg_price, p.stop_price, p.trimmed, p.open, p.realized_pnl
            ));
        }
        s.push_str("intents:\n");
        for i in &self.intents {
            s.push_str(&format!(
                "    {} {} {}\n",
                time_of(i.created_at),
                i.client_order_id,
                i.state
            ));
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionEconomics {
    pub qty: Decimal,
    pub avg_price: Decimal,
    pub realized_pnl: Decimal,
    pub open: bool,
}

/// The money side of a final state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Economics {
    pub positions: BTreeMap<String, PositionEconomics>,
    pub broker_positions: BTreeMap<String, (Decimal, Decimal)>,
    pub cash: Decimal,
}

impl Economics {
    pub fn total_realized(&self) -> Decimal {
        self.positions.values().map(|p| p.realized_pnl).sum()
    }

    /// Differences from `reference`, empty when the economics are equal.
    pub fn diff(&self, reference: &Economics) -> Vec<String> {
        let mut d = Vec::new();
        let symbols: BTreeSet<&String> = self
            .positions
            .keys()
            .chain(reference.positions.keys())
            .collect();
        for s in symbols {
            let (a, b) = (self.positions.get(s), reference.positions.get(s));
            if a != b {
                d.push(format!("{s}: {a:?}, reference {b:?}"));
            }
        }
        if self.broker_positions != reference.broker_positions {
            d.push(format!(
                "broker positions {:?}, reference {:?}",
                self.broker_positions, reference.broker_positions
            ));
        }
        if self.cash != reference.cash {
            d.push(format!(
                "broker cash {}, reference {}",
                self.cash, reference.cash
            ));
        }
        d
    }

    /// The same, restricted to the positions of `symbols`.
    pub fn diff_symbols(&self, reference: &Economics, symbols: &[String]) -> Vec<String> {
        let mut d = Vec::new();
        for s in symbols {
            let (a, b) = (self.positions.get(s), reference.positions.get(s));
            if a != b {
                d.push(format!("{s}: {a:?}, reference {b:?}"));
            }
            let (a, b) = (
                self.broker_positions.get(s),
                reference.broker_positions.get(s),
            );
            if a != b {
                d.push(format!("{s} at the broker: {a:?}, reference {b:?}"));
            }
        }
        d
    }
}
