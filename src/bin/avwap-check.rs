//! `avwap-check`: the one-command health check of the host. All logic lives in
//! `avwap::ops::check`; this file parses the arguments, sets up logging and calls it with the
//! process environment and the system clock.

use avwap::calendar::{Clock, SystemClock};
use avwap::credentials::process_env;
use avwap::ops::check::{self, CheckOptions};
use avwap::ops::logging::{self, LogFormat};
use clap::Parser;
use std::path::PathBuf;

const BINARY: &str = "avwap-check";

const AFTER_HELP: &str = "\
Checks, one line each (OK|WARN|FAIL  <name>  <reason>), then a verdict line:
  execution.service        active (running), no automatic restarts since it was started
  scan.timer               next run is the one its installed OnCalendar= gives (any schedule;
                           WARN without a time zone, or at/after the market open)
  execution-restart.timer  the same, for its own OnCalendar=
  watchlist                the watchlist gate passes (its own message)
  universe-cache           only when scan.service runs avwap-scan --provider alpaca: the
                           cached holdings (members, age); WARN missing or > 7 days, FAIL > 30
  execution-process        exactly one avwap-execution process: the unit's main PID
  tmux                     no process in a tmux session (any user's) runs avwap-scan,
                           avwap-execution, avwap-gate or the predecessor's entry point
  state-db                 PRAGMA quick_check of the state database (read-only)
  kill-switch              engaged (WARN) or off
  heartbeat                age of the execution loop's heartbeat (stale = FAIL while the market is open)
  protective-stops         every owned position has a working protective stop (journal;
                           'each with a working protective stop' only on the broker's word)
  broker-reconciliation    the last cycle's broker positions against the journal: FAIL a
                           position beyond its broker stops, a mismatch in two consecutive
                           cycles, or a stale verdict while the market is open
Without systemd (no systemctl, or systemd not PID 1) one WARN line says the unit checks
were skipped and the rest still run. The state database is opened read-only (nothing is
created): run it as the service user or as a member of its group.

Exit codes:
  0   every check OK
  1   at least one FAIL (with --strict: or a WARN)
  2   no FAIL, at least one WARN
  10  bad command line or configuration file

Environment: AVWAP_CONFIG, AVWAP_STATE_DIR, RUST_LOG, AVWAP_LOG_FORMAT; for tests and unusual
hosts AVWAP_SYSTEMCTL (the systemctl executable) and AVWAP_PROC_ROOT (default /proc).";

/// Print the health of the whole deployment.
#[derive(Debug, Parser)]
#[command(name = "avwap-check", version, after_help = AFTER_HELP)]
struct Args {
    /// Print one JSON object {"verdict", "checks": [{"name", "status", "message"}]}
    #[arg(long)]
    json: bool,
    /// Count every WARN as a FAIL
    #[arg(long)]
    strict: bool,
    /// Configuration file [env: AVWAP_CONFIG]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// State directory [env: AVWAP_STATE_DIR] [default: /var/lib/avwap]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Where log lines go (the report itself is always on stdout)
    #[arg(long, value_enum, value_name = "FORMAT", env = logging::ENV_LOG_FORMAT, hide_env_values = true, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
}

fn main() -> std::process::ExitCode {
    let args: Args = avwap::cli::parse_args();
    logging::init(BINARY, args.log_format);
    let config = match avwap::cli::load_config(args.config.as_deref(), args.state_dir) {
        Ok(config) => config,
        Err(e) => return avwap::cli::finish(BINARY, Err(e)),
    };
    let options = CheckOptions {
        json: args.json,
        strict: args.strict,
    };
    std::process::ExitCode::from(check::run(
        &config,
        options,
        &process_env,
        SystemClock.now(),
    ))
}
