//! `avwap-execution`: the long-running execution service. All logic lives in
//! `avwap::execution::service` (and `avwap::simulation` for `simulate`); this file parses the
//! arguments, sets up logging and calls the one library function of the command.

use avwap::calendar::{Clock, SystemClock};
use avwap::cli::{self, AtFlag, ModeFlag};
use avwap::execution::service::{self, Command, AFTER_HELP};
use avwap::ops::logging::{self, LogFormat};
use avwap::ops::notify::{self, AlertCommand};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

const BINARY: &str = "avwap-execution";

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
    #[arg(long, value_enum, value_name = "FORMAT", env = logging::ENV_LOG_FORMAT, hide_env_values = true, default_value_t = LogFormat::Auto, global = true)]
    log_format: LogFormat,
    #[command(flatten)]
    mode: ModeFlag,
    /// Run one cycle, then exit
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    at: AtFlag,
}

/// `--mode` and `--at` are options of the commands they mean something for; given before a
/// command (`avwap-execution --mode sim flatten`) they still apply.
#[derive(Debug, Subcommand)]
enum Sub {
    /// Close every position this system owns at the market (cancels its stops first)
    Flatten {
        #[command(flatten)]
        mode: ModeFlag,
        #[command(flatten)]
        at: AtFlag,
    },
    /// Broker-side kill switch (Alpaca suspend_trade): Alpaca refuses every new order of the
    /// account, protective stop changes included, until --resume; working stops stay
    SuspendTrading {
        /// Lift the suspension
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        mode: ModeFlag,
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
    /// Send an operator alert through the webhook and wait for it: a test, a failed unit
    /// (systemd OnFailure=), or the end-of-day summary
    Alert {
        #[command(subcommand)]
        what: AlertSub,
    },
    /// Simulate whole sessions of the demo data on the simulated broker and a simulated clock
    /// (sim mode only)
    Simulate {
        /// First session (YYYY-MM-DD), within the demo data (2009-08-21..2010-08-20)
        #[arg(long)]
        date: chrono::NaiveDate,
        /// Number of sessions, carrying positions over
        #[arg(long, default_value_t = 1)]
        days: u32,
        #[command(flatten)]
        mode: ModeFlag,
    },
}

#[derive(Debug, Subcommand)]
enum AlertSub {
    /// A test alert, to see that alerts reach you
    Test,
    /// UNIT failed (run by avwap-alert@UNIT.service from the unit's OnFailure=): its Result
    /// and whether it hit its start limit
    UnitFailed {
        /// The failed unit, e.g. avwap-execution.service
        unit: String,
    },
    /// The end-of-day summary: entries, exits, realized P&L, open positions with their stops,
    /// skipped candidates by reason
    Summary {
        /// Session date (YYYY-MM-DD) [default: today in New York]
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
}

fn main() -> std::process::ExitCode {
    let args: Args = cli::parse_args();
    logging::init(BINARY, args.log_format);
    let mut config = match cli::load_config(args.config.as_deref(), args.state_dir) {
        Ok(config) => config,
        Err(e) => return cli::finish(BINARY, Err(e)),
    };
    let (mode, at) = match &args.command {
        Some(Sub::Flatten { mode, at }) => (mode.mode, at.at.clone()),
        Some(Sub::SuspendTrading { mode, .. } | Sub::Simulate { mode, .. }) => (mode.mode, None),
        _ => (None, None),
    };
    if let Some(mode) = mode.or(args.mode.mode) {
        config.mode = mode.into();
    }
    let at = at.or(args.at.at);
    let clock: Box<dyn Clock> = match at.map(|at| service::fixed_clock(&config, &at)) {
        None => Box::new(SystemClock),
        Some(Ok(fixed)) => Box::new(fixed),
        Some(Err(e)) => return cli::finish(BINARY, Err(e)),
    };
    let result = match args.command {
        None => service::run(&config, Command::Run { once: args.once }, clock.as_ref()),
        Some(Sub::Flatten { .. }) => service::run(&config, Command::Flatten, clock.as_ref()),
        Some(Sub::Report { date, json }) => service::print_report(&config, date, json, clock.now()),
        Some(Sub::SuspendTrading { resume, .. }) => service::suspend_trading(&config, !resume),
        Some(Sub::Alert { what }) => {
            let command = match what {
                AlertSub::Test => AlertCommand::Test,
                AlertSub::UnitFailed { unit } => AlertCommand::UnitFailed { unit },
                AlertSub::Summary { date } => AlertCommand::Summary { date },
            };
            return cli::finish(BINARY, notify::run(&config, command, clock.now()));
        }
        Some(Sub::Simulate { date, days, .. }) => {
            return cli::finish(BINARY, avwap::simulation::run(&config, date, days))
        }
    };
    cli::finish(BINARY, result)
}
