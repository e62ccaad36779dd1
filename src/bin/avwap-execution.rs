//! `avwap-execution`: the long-running execution service. All logic lives in
//! `avwap::execution`; this file wires arguments, configuration and the clock.

use avwap::calendar::{Clock, FixedClock, SystemClock};
use avwap::config::{Config, Mode};
use avwap::credentials::process_env;
use avwap::execution::service::{self, Command as ServiceCommand};
use avwap::exit::ExitCode;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Modes: sim (default; built-in simulated broker, no credentials), dry-run, alpaca-paper,
alpaca-live. An unknown mode is a configuration error, never live. dry-run reads Alpaca market
data and records orders in a local book (dry_run_broker.sqlite), never sending them; the
alpaca modes need the keys (credentials alpaca-key-id / alpaca-secret-key, or APCA_API_KEY_ID /
APCA_API_SECRET_KEY) and alpaca-live also the account number in alpaca-live-account (or
AVWAP_LIVE_ACCOUNT), which must match the account of the keys.

Kill switch: create the file KILL_SWITCH in the state directory (or set
execution.kill_switch = true) to stop all new entries at once; exits and stops keep working.

Exit codes:
  0   stopped cleanly (SIGTERM/SIGINT after the current step, or --once / flatten done)
  10  bad command line, configuration or missing credentials (never restarted)
  11  another avwap-execution holds the state-directory lock
  12  the broker is unreachable or refused our credentials
  13  input problem (state directory, database of a newer avwap, bar store)
  70  internal error";

/// Trade today's watchlist with broker-side protective stops.
#[derive(Debug, Parser)]
#[command(name = "avwap-execution", version, after_help = AFTER_HELP)]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Configuration file [env: AVWAP_CONFIG]
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// State directory [env: AVWAP_STATE_DIR] [default: /var/lib/avwap]
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Log format: auto (journald under systemd, else text), text, json, journald
    #[arg(long, value_enum, value_name = "FORMAT", env = avwap::ops::logging::ENV_LOG_FORMAT, default_value_t = avwap::ops::logging::LogFormat::Auto, global = true)]
    log_format: avwap::ops::logging::LogFormat,
    /// Execution mode [env: AVWAP_MODE] [default: sim]
    #[arg(long, value_enum, global = true)]
    mode: Option<ModeArg>,
    /// Run one cycle, then exit
    #[arg(long)]
    once: bool,
    /// Run as if the time were this (RFC 3339, or YYYY-MM-DDTHH:MM New York); sim mode (and tests against a loopback fake)
    #[arg(long, value_name = "TIME", global = true)]
    at: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Close every position this system owns at the market (cancels its stops first)
    Flatten,
    /// Broker-side kill switch (Alpaca suspend_trade): Alpaca refuses every new order of the
    /// account, protective stop changes included, until --resume; working stops stay
    SuspendTrading {
        /// Lift the suspension
        #[arg(long)]
        resume: bool,
    },
    /// Print one session's decisions, orders, fills, stops and P&L
    Report {
        /// Session date (YYYY-MM-DD) [default: the last session with a heartbeat, else today NY]
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// One JSON object instead of tables
        #[arg(long)]
        json: bool,
    },
    /// Simulate whole sessions of the demo data on the simulated broker and a simulated clock
    Simulate {
        /// First session (YYYY-MM-DD), within the demo data (2009-08-21..2010-08-20)
        #[arg(long)]
        date: chrono::NaiveDate,
        /// Number of sessions, carrying positions over
        #[arg(long, default_value_t = 1)]
        days: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Sim,
    DryRun,
    AlpacaPaper,
    AlpacaLive,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Sim => Mode::Sim,
            ModeArg::DryRun => Mode::DryRun,
            ModeArg::AlpacaPaper => Mode::AlpacaPaper,
            ModeArg::AlpacaLive => Mode::AlpacaLive,
        }
    }
}

fn main() -> std::process::ExitCode {
    let args: Args = avwap::cli::parse_args();
    avwap::ops::logging::init("avwap-execution", args.log_format);
    let mut config = match Config::load(args.config.as_deref(), &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("avwap-execution: {e}");
            return ExitCode::ConfigError.into();
        }
    };
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    if let Some(mode) = args.mode {
        config.mode = mode.into();
    }
    let clock: Box<dyn Clock> = match &args.at {
        None => Box::new(SystemClock),
        Some(text) => {
            if !service::fixed_clock_allowed(&config) {
                eprintln!("avwap-execution: --at is only allowed in sim mode (and in dry-run/alpaca-paper against a server on this machine, for tests)");
                return ExitCode::ConfigError.into();
            }
            match service::parse_at(text) {
                Some(t) => Box::new(FixedClock::new(t)),
                None => {
                    eprintln!("avwap-execution: --at {text:?} is not a time (use 2026-11-30T10:05 New York, or RFC 3339)");
                    return ExitCode::ConfigError.into();
                }
            }
        }
    };
    let command = match args.command {
        Some(Sub::Flatten) => ServiceCommand::Flatten,
        Some(Sub::Report { date, json }) => return report(&config, date, json, clock.as_ref()),
        Some(Sub::SuspendTrading { resume }) => {
            return match service::set_broker_suspension(&config, !resume) {
                Ok(suspended) => {
                    println!(
                        "{}: Alpaca reports new orders {}",
                        config.mode,
                        if suspended {
                            "SUSPENDED (broker-side kill switch on)"
                        } else {
                            "allowed"
                        }
                    );
                    if suspended == resume {
                        eprintln!("avwap-execution: the account did not change as asked; check Alpaca's dashboard");
                        return ExitCode::BrokerUnavailable.into();
                    }
                    ExitCode::Ok.into()
                }
                Err(e) => {
                    eprintln!("avwap-execution: {}", e.message);
                    e.code.into()
                }
            };
        }
        Some(Sub::Simulate { date, days }) => {
            return match service::simulate(&config, date, days) {
                Ok(sessions) => {
                    println!(
                        "simulated {} session(s): {}; see: avwap-execution report --date D --state-dir {}",
                        sessions.len(),
                        sessions.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                        config.state_dir.display()
                    );
                    ExitCode::Ok.into()
                }
                Err(e) => {
                    eprintln!("avwap-execution: {}", e.message);
                    e.code.into()
                }
            }
        }
        None => ServiceCommand::Run { once: args.once },
    };
    tracing::info!(mode = %config.mode, state_dir = %config.state_dir.display(), "avwap-execution starting");
    match service::run(&config, command, clock.as_ref()) {
        Ok(()) => ExitCode::Ok.into(),
        Err(e) => {
            eprintln!("avwap-execution: {}", e.message);
            e.code.into()
        }
    }
}

fn report(
    config: &Config,
    date: Option<chrono::NaiveDate>,
    json: bool,
    clock: &dyn Clock,
) -> std::process::ExitCode {
    let path = service::db_path(&config.state_dir);
    if !path.exists() {
        eprintln!(
            "avwap-execution: no execution database at {}: nothing has run in this state directory",
            path.display()
        );
        return ExitCode::InputError.into();
    }
    let db = match avwap::execution::db::StateDb::open(&path) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("avwap-execution: {e}");
            return ExitCode::InputError.into();
        }
    };
    let date = date.unwrap_or_else(|| {
        db.last_heartbeat()
            .ok()
            .flatten()
            .map(avwap::calendar::ny_date)
            .unwrap_or_else(|| avwap::calendar::ny_date(clock.now()))
    });
    match avwap::execution::report::day_report(&db, date) {
        Ok(r) if json => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            ExitCode::Ok.into()
        }
        Ok(r) => {
            print!("{}", avwap::execution::report::render_table(&r));
            ExitCode::Ok.into()
        }
        Err(e) => {
            eprintln!("avwap-execution: {e}");
            ExitCode::InputError.into()
        }
    }
}
