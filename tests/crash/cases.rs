//! The crash and fault cases of the crash-safety suite, shared by `tests/crash/sim.rs` (sim
//! mode) and `tests/crash/alpaca.rs` (alpaca-paper through the Alpaca HTTP front): each case is
//! a function of the venue, and [`crash_cases!`] in each of those modules expands to one
//! `#[test]` per case for its venue. The reference runs the cases compare with are built once
//! per venue and test process.

use super::harness::*;
use avwap::broker::sim::{SimFault, SimMethod};
use avwap::execution::db::StateDb;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// A finished run and the decisions it contains.
struct Reference {
    name: &'static str,
    captured: Captured,
    economics: Economics,
    /// Intents per cycle, in journal order.
    runs: BTreeMap<String, Vec<IntentRow>>,
}

impl Reference {
    fn build(venue: Venue, name: &'static str, spec: &dyn Fn(&Path, &str) -> RunSpec) -> Reference {
        let dir = fresh_state_dir();
        run_sequence(venue, dir.path(), &all_times(), spec);
        let captured = capture(dir.path());
        captured.assert_invariants(name);
        let mut runs: BTreeMap<String, Vec<IntentRow>> = BTreeMap::new();
        for i in &captured.intents {
            runs.entry(time_of(i.created_at))
                .or_default()
                .push(i.clone());
        }
        Reference {
            name,
            economics: captured.economics(),
            captured,
            runs,
        }
    }

    /// The first cycle whose intents satisfy `pred`.
    fn first_run(&self, what: &str, pred: impl Fn(&[IntentRow]) -> bool) -> String {
        self.runs
            .iter()
            .find(|(_, intents)| pred(intents))
            .map(|(t, _)| t.clone())
            .unwrap_or_else(|| {
                panic!(
                    "the {} scenario has no cycle with {what}:\n{}",
                    self.name,
                    self.captured.summary()
                )
            })
    }

    fn first_leg(&self, code: &str) -> String {
        self.first_run(&format!("a {code} order"), |i| {
            i.iter().any(|i| i.leg_code() == code)
        })
    }

    /// The first cycle whose first stop order is a new one (not a replace).
    fn first_initial_stop(&self) -> String {
        self.first_run("an initial stop first", |i| {
            first_stop(i).is_some_and(|s| s.replaces_order_id.is_none())
        })
    }

    /// The first cycle whose first stop order replaces one, with (`trim`) or without a trim
    /// in the same cycle (the R1 resize, or the break-even raise).
    fn first_replace(&self, trim: bool) -> String {
        self.first_run("a stop replace first", |i| {
            first_stop(i).is_some_and(|s| s.replaces_order_id.is_some())
                && i.iter().any(|i| i.leg == "tr") == trim
        })
    }
}

fn first_stop(intents: &[IntentRow]) -> Option<&IntentRow> {
    intents.iter().find(|i| i.leg_code() == "st")
}

pub fn no_hooks(_: &Path, _: &str) -> RunSpec {
    RunSpec::default()
}

/// The reference run of `venue` (each venue has its cell in these statics).
fn reference(venue: Venue) -> &'static Reference {
    static REF: [OnceLock<Reference>; 2] = [OnceLock::new(), OnceLock::new()];
    REF[venue as usize].get_or_init(|| {
        let r = Reference::build(venue, "reference", &no_hooks);
        // The scenario the suite is written for (verified, so a changed strategy or data set
        // fails loudly here instead of silently skipping steps).
        let c = &r.captured;
        let legs = |code: &str| c.intents.iter().filter(|i| i.leg_code() == code).count();
        assert_eq!(legs("en"), 5, "entries\n{}", c.summary());
        assert!(legs("tr") >= 1, "no trim\n{}", c.summary());
        assert!(
            c.events.iter().any(|e| e.kind == "stop_raised"),
            "no break-even raise"
        );
        assert!(c.broker.fills.len() >= 8, "too few fills\n{}", c.summary());
        r
    })
}

/// The symbol whose stop is raised to break-even first in the reference run.
fn breakeven_symbol(venue: Venue) -> String {
    let r = reference(venue);
    let t = r.first_replace(false);
    first_stop(&r.runs[&t]).unwrap().symbol.clone()
}

/// The hooks of the exit scenario: from the break-even cycle on, the broker rejects the next
/// replace of every cycle until the break-even symbol has an exit order.
fn exit_scenario_hooks(venue: Venue, dir: &Path, time: &str) -> RunSpec {
    let from = reference(venue).first_replace(false);
    if instant(time) < instant(&from) {
        return RunSpec::default();
    }
    let symbol = breakeven_symbol(venue);
    let db = StateDb::open(&db_path(dir)).unwrap();
    let open = db
        .position(&symbol)
        .unwrap()
        .is_some_and(|p| p.open && !p.qty.is_zero());
    let exited = intents(&db_path(dir))
        .iter()
        .any(|i| i.symbol == symbol && i.leg == "ex");
    RunSpec {
        clear_faults: true,
        faults: if open && !exited {
            vec![(SimMethod::Replace, SimFault::RejectNext)]
        } else {
            Vec::new()
        },
        ..RunSpec::default()
    }
}

/// The time of the operator's flatten in the flatten scenario: the first cycle after the
/// last trim of the reference run's morning, with positions and stops open.
const FLATTEN_AT: &str = "12:05";

fn flatten_scenario_hooks(_: &Path, time: &str) -> RunSpec {
    RunSpec {
        flatten: time == FLATTEN_AT,
        ..RunSpec::default()
    }
}

fn flatten_reference(venue: Venue) -> &'static Reference {
    static REF: [OnceLock<Reference>; 2] = [OnceLock::new(), OnceLock::new()];
    REF[venue as usize].get_or_init(|| {
        let r = Reference::build(venue, "flatten", &flatten_scenario_hooks);
        assert!(
            r.runs
                .get(FLATTEN_AT)
                .is_some_and(|i| i.iter().filter(|i| i.leg == "fl").count() >= 2),
            "the flatten sold fewer than two positions:\n{}",
            r.captured.summary()
        );
        r
    })
}

fn exit_reference(venue: Venue) -> &'static Reference {
    static REF: [OnceLock<Reference>; 2] = [OnceLock::new(), OnceLock::new()];
    REF[venue as usize]
        .get_or_init(|| Reference::build(venue, "exit", &|d, t| exit_scenario_hooks(venue, d, t)))
}

/// What the final economics are compared with.
enum Economy {
    /// Positions, realized P&L and broker cash equal the reference's.
    Equal,
    /// Only the position of the symbol whose order was in flight is compared: the crash also
    /// delays the other orders that same cycle would have sent, at other prices.
    InFlightSymbol,
    /// The in-flight symbol's position as in this other run, every other position as in
    /// the base run.
    InFlightAs(&'static Reference),
    /// Invariants only (the reason is in the case).
    Free,
}

/// What the harness expects to find right after the interrupted cycle.
#[derive(Clone, Copy)]
enum After {
    /// One unresolved intent of this leg, not at the broker.
    JournaledOnly(&'static str),
    /// One unresolved intent of this leg, at the broker.
    AtBroker(&'static str),
    /// A position without any stop at the broker.
    UnprotectedFill,
    /// A stop smaller than its position and no trim order.
    ResizedNoTrim,
    /// Nothing unresolved (read faults).
    Clean,
}

struct Case {
    name: String,
    /// The cycle the crash point or fault applies to.
    time: String,
    crash_at: Option<String>,
    fault: Option<(SimMethod, SimFault)>,
    expect_signal: Option<i32>,
    after: After,
    economy: Economy,
    /// The same decisions as the reference in the faulted cycle (read faults).
    same_decisions: bool,
}

impl Case {
    fn crash(point: &str, time: String, after: After, economy: Economy) -> Case {
        Case {
            name: format!("crash at {point} @ {time}"),
            time,
            crash_at: Some(point.to_string()),
            fault: None,
            expect_signal: Some(SIGKILL),
            after,
            economy,
            same_decisions: false,
        }
    }

    fn fault(
        method: SimMethod,
        fault: SimFault,
        time: String,
        after: After,
        economy: Economy,
    ) -> Case {
        let expect_signal = matches!(fault, SimFault::CrashAfterAccept).then_some(SIGABRT);
        Case {
            name: format!("{method} fault {fault:?} @ {time}"),
            time,
            crash_at: None,
            fault: Some((method, fault)),
            expect_signal,
            after,
            economy,
            same_decisions: false,
        }
    }
}

fn run_case(venue: Venue, case: Case, base: &Reference, hooks: &dyn Fn(&Path, &str) -> RunSpec) {
    let dir = fresh_state_dir();
    let dir = dir.path();
    let times = all_times();
    let at = times.iter().position(|t| *t == case.time).unwrap();
    run_sequence(venue, dir, &times[..at], hooks);

    // The interrupted cycle.
    run_sequence(venue, dir, &times[at..=at], |d, t| {
        let mut spec = hooks(d, t);
        spec.crash_at = case.crash_at.clone();
        spec.faults.extend(case.fault.clone());
        spec.expect_signal = case.expect_signal;
        spec
    });
    let mid = capture(dir);
    let unresolved = mid.intents_in_state("journaled");
    let in_flight = unresolved.first().map(|i| (*i).clone());
    let context = || {
        format!(
            "{}: after the interrupted cycle\n{}",
            case.name,
            mid.summary()
        )
    };
    match case.after {
        After::JournaledOnly(leg) | After::AtBroker(leg) => {
            assert_eq!(unresolved.len(), 1, "{}", context());
            let i = unresolved[0];
            assert_eq!(i.leg_code(), leg, "{}", context());
            let at_broker = mid.broker_order(&i.client_order_id).is_some();
            assert_eq!(
                at_broker,
                matches!(case.after, After::AtBroker(_)),
                "{} at the broker? {}",
                i.client_order_id,
                context()
            );
            assert!(mid.db_order(&i.client_order_id).is_none(), "{}", context());
        }
        After::UnprotectedFill => {
            assert!(unresolved.is_empty(), "{}", context());
            assert!(
                mid.positions
                    .iter()
                    .any(|p| p.open && mid.open_stop_qty(&p.symbol).is_zero()),
                "no filled position is waiting for its stop: {}",
                context()
            );
        }
        After::ResizedNoTrim => {
            assert!(unresolved.is_empty(), "{}", context());
            assert!(
                mid.positions.iter().any(|p| {
                    let stop = mid.open_stop_qty(&p.symbol);
                    p.open
                        && !stop.is_zero()
                        && stop < p.qty
                        && mid.open_other_sell_qty(&p.symbol).is_zero()
                }),
                "no position with a resized stop and no trim: {}",
                context()
            );
        }
        After::Clean => assert!(unresolved.is_empty(), "{}", context()),
    }
    if case.same_decisions {
        let decided: Vec<_> = mid
            .intents
            .iter()
            .filter(|i| time_of(i.created_at) == case.time)
            .map(|i| (i.client_order_id.clone(), i.state.clone()))
            .collect();
        let reference: Vec<_> = base
            .runs
            .get(&case.time)
            .into_iter()
            .flatten()
            .map(|i| (i.client_order_id.clone(), i.state.clone()))
            .collect();
        assert_eq!(
            decided, reference,
            "{}: the faulted cycle decided differently from the reference",
            case.name
        );
        assert!(
            !mid.events
                .iter()
                .any(|e| time_of(e.at) == case.time && e.kind == "order_cancelled"),
            "{}: an order was cancelled in the faulted cycle",
            case.name
        );
    }

    // The restart: the remaining cycles without the crash point.
    run_sequence(venue, dir, &times[at + 1..], hooks);
    let end = capture(dir);
    end.assert_invariants(&case.name);
    if let Some(i) = &in_flight {
        let state = &end
            .intents
            .iter()
            .find(|x| x.client_order_id == i.client_order_id)
            .unwrap()
            .state;
        let expected = match case.after {
            After::AtBroker(_) => "acknowledged",
            _ => "not_placed",
        };
        assert_eq!(
            state, expected,
            "{}: the in-flight order {}",
            case.name, i.client_order_id
        );
    }
    let economics = end.economics();
    let diff = match case.economy {
        Economy::Equal => economics.diff(&base.economics),
        Economy::InFlightSymbol => {
            let symbol = in_flight
                .as_ref()
                .map(|i| i.symbol.clone())
                .expect("an in-flight order");
            economics.diff_symbols(&base.economics, &[symbol])
        }
        Economy::InFlightAs(other) => {
            let symbol = in_flight
                .as_ref()
                .map(|i| i.symbol.clone())
                .expect("an in-flight order");
            let others: Vec<String> = base
                .economics
                .positions
                .keys()
                .chain(economics.positions.keys())
                .filter(|s| **s != symbol)
                .cloned()
                .collect();
            let mut d = economics.diff_symbols(&other.economics, &[symbol]);
            d.extend(economics.diff_symbols(&base.economics, &others));
            d
        }
        Economy::Free => Vec::new(),
    };
    assert!(
        diff.is_empty(),
        "{}: the economics differ from the {} run:\n  - {}\n{}",
        case.name,
        base.name,
        diff.join("\n  - "),
        end.summary()
    );
    eprintln!(
        "{}: ok; realized P&L {} (the {} run: {})",
        case.name,
        economics.total_realized(),
        base.name,
        base.economics.total_realized()
    );
}

fn crash(venue: Venue, point: &str, time: String, after: After, economy: Economy) {
    run_case(
        venue,
        Case::crash(point, time, after, economy),
        reference(venue),
        &no_hooks,
    );
}

fn fault(
    venue: Venue,
    method: SimMethod,
    f: SimFault,
    time: String,
    after: After,
    economy: Economy,
) {
    run_case(
        venue,
        Case::fault(method, f, time, after, economy),
        reference(venue),
        &no_hooks,
    );
}

// ---- the reference itself ----

pub fn reference_run_holds_the_invariants_and_repeats_exactly(venue: Venue) {
    let first = reference(venue);
    let again = Reference::build(venue, "reference (again)", &no_hooks);
    assert_eq!(
        again.economics.diff(&first.economics),
        Vec::<String>::new(),
        "the simulation is not deterministic"
    );
    assert_eq!(
        again
            .captured
            .broker
            .orders
            .iter()
            .map(|o| (&o.client_order_id, o.status, o.filled_qty))
            .collect::<Vec<_>>(),
        first
            .captured
            .broker
            .orders
            .iter()
            .map(|o| (&o.client_order_id, o.status, o.filled_qty))
            .collect::<Vec<_>>()
    );
    for (point, time) in [
        ("en", first.first_leg("en")),
        ("initial st", first.first_initial_stop()),
        ("st replace (trim resize)", first.first_replace(true)),
        ("st replace (break-even)", first.first_replace(false)),
        ("tr", first.first_leg("tr")),
        ("ex (exit scenario)", exit_reference(venue).first_leg("ex")),
    ] {
        eprintln!("first {point} at {time}");
    }
}

// ---- entries ----

/// The entry never reached the broker; the next cycle may enter again with attempt 2 at
/// another price, or not at all, and the other entries of that cycle wait a cycle: invariants
/// only.
pub fn crash_after_entry_journaled(venue: Venue) {
    crash(
        venue,
        "journaled:en",
        reference(venue).first_leg("en"),
        After::JournaledOnly("en"),
        Economy::Free,
    );
}

/// The entry reached the broker before the crash: found by its client order id, never sent
/// twice. The entries after it in that cycle are decided a cycle later at other prices, so
/// only the in-flight symbol's economics must match.
pub fn crash_after_entry_sent(venue: Venue) {
    crash(
        venue,
        "sent:en",
        reference(venue).first_leg("en"),
        After::AtBroker("en"),
        Economy::InFlightSymbol,
    );
}

// ---- protective stops ----

pub fn crash_after_fill_before_stop(venue: Venue) {
    crash(
        venue,
        "filled_before_stop",
        reference(venue).first_initial_stop(),
        After::UnprotectedFill,
        Economy::Equal,
    );
}

pub fn crash_after_initial_stop_journaled(venue: Venue) {
    crash(
        venue,
        "journaled:st",
        reference(venue).first_initial_stop(),
        After::JournaledOnly("st"),
        Economy::Equal,
    );
}

pub fn crash_after_initial_stop_sent(venue: Venue) {
    crash(
        venue,
        "sent:st",
        reference(venue).first_initial_stop(),
        After::AtBroker("st"),
        Economy::Equal,
    );
}

/// The R1 trim's stop resize (a replace) is journaled, not sent: the stop still covers the
/// whole position. The trim waits for the next cycle, where the price may no longer be at
/// R1: invariants only.
pub fn crash_after_trim_resize_replace_journaled(venue: Venue) {
    crash(
        venue,
        "journaled:st",
        reference(venue).first_replace(true),
        After::JournaledOnly("st"),
        Economy::Free,
    );
}

/// The resize replace reached the broker; the trim waits a cycle (invariants only, as above).
pub fn crash_after_trim_resize_replace_sent(venue: Venue) {
    crash(
        venue,
        "sent:st",
        reference(venue).first_replace(true),
        After::AtBroker("st"),
        Economy::Free,
    );
}

pub fn crash_after_breakeven_replace_journaled(venue: Venue) {
    crash(
        venue,
        "journaled:st",
        reference(venue).first_replace(false),
        After::JournaledOnly("st"),
        Economy::Equal,
    );
}

pub fn crash_after_breakeven_replace_sent(venue: Venue) {
    crash(
        venue,
        "sent:st",
        reference(venue).first_replace(false),
        After::AtBroker("st"),
        Economy::Equal,
    );
}

// ---- trims ----

/// Killed between the stop resize and the trim: the trim is decided again next cycle, maybe
/// at another price or not at all: invariants only.
pub fn crash_after_stop_resize_before_trim(venue: Venue) {
    crash(
        venue,
        "trim_after_stop_resize",
        reference(venue).first_leg("tr"),
        After::ResizedNoTrim,
        Economy::Free,
    );
}

/// The trim never reached the broker: decided again next cycle (invariants only).
pub fn crash_after_trim_journaled(venue: Venue) {
    crash(
        venue,
        "journaled:tr",
        reference(venue).first_leg("tr"),
        After::JournaledOnly("tr"),
        Economy::Free,
    );
}

/// The trim reached the broker and fills as in the reference.
pub fn crash_after_trim_sent(venue: Venue) {
    crash(
        venue,
        "sent:tr",
        reference(venue).first_leg("tr"),
        After::AtBroker("tr"),
        Economy::Equal,
    );
}

// ---- exits (derived scenario, see the module documentation) ----

/// The stop was cancelled and the exit never reached the broker: the next cycle exits again
/// (attempt 2) at another price, or protects the position again: invariants only.
pub fn crash_after_exit_journaled(venue: Venue) {
    let base = exit_reference(venue);
    run_case(
        venue,
        Case::crash(
            "journaled:ex",
            base.first_leg("ex"),
            After::JournaledOnly("ex"),
            Economy::Free,
        ),
        base,
        &|d, t| exit_scenario_hooks(venue, d, t),
    );
}

pub fn crash_after_exit_sent(venue: Venue) {
    let base = exit_reference(venue);
    run_case(
        venue,
        Case::crash(
            "sent:ex",
            base.first_leg("ex"),
            After::AtBroker("ex"),
            Economy::Equal,
        ),
        base,
        &|d, t| exit_scenario_hooks(venue, d, t),
    );
}

// ---- the operator's flatten ----

/// Killed after the first position's stop was cancelled and its flatten order journaled: the
/// operator's command died, so nothing is sold; the next (ordinary) cycle finds the order
/// never placed and protects the position again. The outcome is the reference run's.
pub fn crash_after_flatten_journaled(venue: Venue) {
    run_case(
        venue,
        Case::crash(
            "journaled:fl",
            flatten_reference(venue).first_leg("fl"),
            After::JournaledOnly("fl"),
            Economy::Equal,
        ),
        reference(venue),
        &flatten_scenario_hooks,
    );
}

/// The first flatten order reached the broker before the kill: found and filled as in the
/// flatten scenario; the positions after it were never touched and end as in the reference.
pub fn crash_after_flatten_sent(venue: Venue) {
    run_case(
        venue,
        Case::crash(
            "sent:fl",
            flatten_reference(venue).first_leg("fl"),
            After::AtBroker("fl"),
            Economy::InFlightAs(flatten_reference(venue)),
        ),
        reference(venue),
        &flatten_scenario_hooks,
    );
}

// ---- broker faults ----

/// A timeout after the broker accepted the first entry: found next cycle, never resent. The
/// order may exist, so it must count towards the caps in the cycle it was sent: the outcome
/// must equal the reference's.
pub fn submit_unknown_outcome_after_accept(venue: Venue) {
    fault(
        venue,
        SimMethod::Submit,
        SimFault::UnknownOutcomeAfterAccept,
        reference(venue).first_leg("en"),
        After::AtBroker("en"),
        Economy::Equal,
    );
}

/// A timeout after the broker accepted the R1 trim (the first submit of that cycle; the stop
/// resize before it is a replace): found next cycle, and the position counts as trimmed, so
/// the outcome equals the reference's.
pub fn submit_unknown_outcome_after_accept_on_trim(venue: Venue) {
    fault(
        venue,
        SimMethod::Submit,
        SimFault::UnknownOutcomeAfterAccept,
        reference(venue).first_leg("tr"),
        After::AtBroker("tr"),
        Economy::Equal,
    );
}

/// A timeout before the broker saw the first entry: proven absent next cycle, then at most a
/// new attempt: invariants only.
pub fn submit_unknown_outcome_before_accept(venue: Venue) {
    fault(
        venue,
        SimMethod::Submit,
        SimFault::UnknownOutcomeBeforeAccept,
        reference(venue).first_leg("en"),
        After::JournaledOnly("en"),
        Economy::Free,
    );
}

/// The process dies (abort) after the broker accepted the first entry, before our record.
/// The other entries of that cycle wait a cycle (as with `sent:en`).
pub fn submit_crash_after_accept(venue: Venue) {
    fault(
        venue,
        SimMethod::Submit,
        SimFault::CrashAfterAccept,
        reference(venue).first_leg("en"),
        After::AtBroker("en"),
        Economy::InFlightSymbol,
    );
}

/// The first entry is rate limited (not placed): treated as unknown, proven absent next
/// cycle: invariants only.
pub fn submit_rate_limited(venue: Venue) {
    fault(
        venue,
        SimMethod::Submit,
        SimFault::RateLimited {
            retry_after_secs: 1,
        },
        reference(venue).first_leg("en"),
        After::JournaledOnly("en"),
        Economy::Free,
    );
}

/// A timeout after the broker accepted the trim's stop resize: the trim waits until the
/// replace is resolved (invariants only, the price moves meanwhile).
pub fn replace_unknown_outcome_after_accept(venue: Venue) {
    fault(
        venue,
        SimMethod::Replace,
        SimFault::UnknownOutcomeAfterAccept,
        reference(venue).first_replace(true),
        After::AtBroker("st"),
        Economy::Free,
    );
}

/// The open-order list fails in the cycle that sees the entry fills: fills are still found
/// order by order, and the cycle decides exactly as the reference.
pub fn open_orders_read_error(venue: Venue) {
    let mut case = Case::fault(
        SimMethod::OpenOrders,
        SimFault::ReadError,
        reference(venue).first_initial_stop(),
        After::Clean,
        Economy::Equal,
    );
    case.same_decisions = true;
    run_case(venue, case, reference(venue), &no_hooks);
}

/// The position report fails while positions and stops are open: never taken as flat (no
/// stop cancelled, nothing sold that the reference did not sell).
pub fn positions_read_error(venue: Venue) {
    for time in [reference(venue).first_leg("tr"), "11:05".to_string()] {
        let mut case = Case::fault(
            SimMethod::Positions,
            SimFault::ReadError,
            time,
            After::Clean,
            Economy::Equal,
        );
        case.same_decisions = true;
        run_case(venue, case, reference(venue), &no_hooks);
    }
}

// ---- the tests ----

// ---- the journal lost or rolled back (issue 14): the broker is the source of truth ----

/// How the execution database is lost just before a cycle of the reference day.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// `rm execution.sqlite*`.
    Deleted,
    /// `: > execution.sqlite` (WAL and SHM removed too).
    Truncated,
    /// Replaced by its copy from this many cycles earlier (a backup, a VM snapshot).
    RolledBack(usize),
    /// The cycle before is SIGKILLed after its first order is sent, then `-wal` and `-shm` are
    /// removed (storage that lost its recent writes).
    WalRemovedAfterKill,
}

const JOURNAL_FILES: [&str; 3] = [
    "execution.sqlite",
    "execution.sqlite-wal",
    "execution.sqlite-shm",
];

fn copy_journal(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in &JOURNAL_FILES[..2] {
        let _ = std::fs::remove_file(to.join(name));
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
}

fn remove_journal(dir: &Path) {
    for name in JOURNAL_FILES {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// Run the reference day with the journal lost before the cycle at `at`, then check what must
/// hold whatever the journal knows: no id used twice, no second entry/trim/exit of a symbol in a
/// session, the daily cap, and at the end every broker position owned in full and covered by
/// its stop.
fn run_with_loss(venue: Venue, loss: Loss, at: &str) {
    let name = format!("{loss:?} before {at} ({venue:?})");
    let dir = fresh_state_dir();
    let dir = dir.path();
    let copies = tempfile::tempdir().unwrap();
    let times = all_times();
    let at_index = times.iter().position(|t| t == at).unwrap();
    let kill_index = at_index.saturating_sub(1);
    run_sequence(venue, dir, &times, |d, t| {
        let i = times.iter().position(|x| x == t).unwrap();
        copy_journal(d, &copies.path().join(i.to_string()));
        let mut spec = RunSpec::default();
        if i == at_index {
            match loss {
                Loss::Deleted => remove_journal(d),
                Loss::Truncated => {
                    remove_journal(d);
                    std::fs::write(d.join(JOURNAL_FILES[0]), b"").unwrap();
                }
                Loss::RolledBack(k) => {
                    remove_journal(d);
                    copy_journal(&copies.path().join(i.saturating_sub(k).to_string()), d);
                }
                Loss::WalRemovedAfterKill => {
                    for name in &JOURNAL_FILES[1..] {
                        let _ = std::fs::remove_file(d.join(name));
                    }
                }
            }
        }
        if matches!(loss, Loss::WalRemovedAfterKill) && i == kill_index {
            spec.crash_at = Some("sent".to_string());
            spec.expect_signal = Some(SIGKILL);
        }
        spec
    });
    let end = capture(dir);
    // Without a crash the loss cannot change the economics: the broker's orders rebuild the
    // positions and today's watchlist their plans, so the day ends as the reference did. (A
    // SIGKILL mid-cycle moves the in-flight order's fills, as in the crash cases above.)
    let diff = end.economics().diff(&reference(venue).economics);
    if !matches!(loss, Loss::WalRemovedAfterKill) {
        assert!(
            diff.is_empty(),
            "{name}: the economics differ from the reference:\n  - {}\n{}",
            diff.join("\n  - "),
            end.summary()
        );
    }
    let v = end.safety_violations();
    assert!(
        v.is_empty(),
        "{name}: {} violation(s):\n  - {}\n{}",
        v.len(),
        v.join("\n  - "),
        end.summary()
    );
    eprintln!(
        "{name}: ok; economics differ from the reference in {} place(s)",
        diff.len()
    );
}

/// The moments of the reference day a loss hits: right after the entries (their fills and
/// first stops pending), after the first stop, at the first trim and at the first break-even.
fn loss_moments(venue: Venue) -> Vec<String> {
    let r = reference(venue);
    let times = all_times();
    let next = |t: String| {
        let i = times.iter().position(|x| *x == t).unwrap();
        times[(i + 1).min(times.len() - 1)].clone()
    };
    let mut moments = vec![
        next(r.first_leg("en")),
        next(r.first_initial_stop()),
        next(r.first_leg("tr")),
        next(r.first_replace(false)),
    ];
    moments.dedup();
    moments
}

pub fn journal_deleted_or_truncated_is_recovered_from_the_broker(venue: Venue) {
    for at in loss_moments(venue) {
        run_with_loss(venue, Loss::Deleted, &at);
        run_with_loss(venue, Loss::Truncated, &at);
    }
}

pub fn journal_rolled_back_one_to_three_cycles_is_recovered_from_the_broker(venue: Venue) {
    for at in loss_moments(venue) {
        for k in 1..=3 {
            run_with_loss(venue, Loss::RolledBack(k), &at);
        }
    }
}

pub fn wal_and_shm_removed_after_a_kill_is_recovered_from_the_broker(venue: Venue) {
    for at in loss_moments(venue) {
        run_with_loss(venue, Loss::WalRemovedAfterKill, &at);
    }
}

/// One `#[test]` per case above, running it against `$venue` (an expression of type `Venue`):
/// `crash_cases!(VENUE);` in a module of the crash suite. A case missing from this list is an
/// unused function, which `cargo clippy -- -D warnings` refuses.
macro_rules! crash_cases {
    ($venue:expr) => {
        $crate::crash::cases::crash_cases!(@each $venue;
            reference_run_holds_the_invariants_and_repeats_exactly,
            crash_after_entry_journaled,
            crash_after_entry_sent,
            crash_after_fill_before_stop,
            crash_after_initial_stop_journaled,
            crash_after_initial_stop_sent,
            crash_after_trim_resize_replace_journaled,
            crash_after_trim_resize_replace_sent,
            crash_after_breakeven_replace_journaled,
            crash_after_breakeven_replace_sent,
            crash_after_stop_resize_before_trim,
            crash_after_trim_journaled,
            crash_after_trim_sent,
            crash_after_exit_journaled,
            crash_after_exit_sent,
            crash_after_flatten_journaled,
            crash_after_flatten_sent,
            submit_unknown_outcome_after_accept,
            submit_unknown_outcome_after_accept_on_trim,
            submit_unknown_outcome_before_accept,
            submit_crash_after_accept,
            submit_rate_limited,
            replace_unknown_outcome_after_accept,
            open_orders_read_error,
            positions_read_error,
            journal_deleted_or_truncated_is_recovered_from_the_broker,
            journal_rolled_back_one_to_three_cycles_is_recovered_from_the_broker,
            wal_and_shm_removed_after_a_kill_is_recovered_from_the_broker,
        );
    };
    (@each $venue:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                $crate::crash::cases::$case($venue);
            }
        )*
    };
}

pub(crate) use crash_cases;
