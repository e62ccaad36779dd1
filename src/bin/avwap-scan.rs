//! `avwap-scan`: computes Anchored VWAP over the universe and writes the ranked watchlist.
//! All logic lives in `avwap::scan::service`; this file parses the arguments, sets up logging
//! and calls it with the system clock.

use avwap::calendar::SystemClock;
use avwap::cli;
use avwap::ops::logging::{self, LogFormat};
use avwap::scan::service::{self, Provider, ScanAction, ScanRequest, AFTER_HELP};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

const BINARY: &str = "avwap-scan";

/// Scan the universe and write today's watchlist.
#[derive(Debug, Parser)]
// The scan's options mean nothing to `import`: given with it they are an error, not ignored.
#[command(
    name = "avwap-scan",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file [env: AVWAP_CONFIG]
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// State directory [env: AVWAP_STATE_DIR] [default: /var/lib/avwap]
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Log format: auto (journald under systemd, else text), text, json, journald
    #[arg(long, value_enum, value_name = "FORMAT", env = logging::ENV_LOG_FORMAT, hide_env_values = true, default_value_t = LogFormat::Auto, global = true)]
    log_format: LogFormat,
    /// Scan as if on the morning of this New York session (YYYY-MM-DD); only earlier bars are read
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Where bars come from
    #[arg(long, value_enum, default_value_t = Provider::Store)]
    provider: Provider,
    /// Long-format CSV (Date,Symbol,Open,High,Low,Close,Volume; .gz allowed) for --provider csv
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Scan the bundled demo data set (S&P 500, 2009-08-21..2010-08-20) and print the table;
    /// without --state-dir in a new temporary directory
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import CSV bars into the bar store (long format, or one file per symbol named SYMBOL.csv)
    Import {
        /// Files to import (.csv or .csv.gz)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let args: Args = cli::parse_args();
    logging::init(BINARY, args.log_format);
    // --state-dir travels in the request: the demo needs to know whether it was given.
    let config = match cli::load_config(args.config.as_deref(), None) {
        Ok(config) => config,
        Err(e) => return cli::finish_with_causes(BINARY, Err(e)),
    };
    let action = match args.command {
        Some(Command::Import { files }) => ScanAction::Import { files },
        None => ScanAction::Scan {
            as_of: args.as_of,
            provider: args.provider,
            csv: args.csv,
        },
    };
    let request = ScanRequest {
        state_dir: args.state_dir,
        demo: args.demo,
        action,
    };
    cli::finish_with_causes(BINARY, service::run(config, request, &SystemClock))
}
