//! `avwap-gate`: refuses to let execution start unless today's watchlist exists (systemd
//! `ExecStartPre`). All logic lives in `avwap::gate`; this file parses the arguments, sets up
//! logging and calls `gate::run` with the system clock.

use avwap::calendar::{Clock, SystemClock};
use avwap::ops::logging::{self, LogFormat};
use clap::Parser;
use std::path::PathBuf;

const BINARY: &str = "avwap-gate";

const EXIT_CODES: &str = "\
Exit codes:
  0   the watchlist is fresh: it exists, was written today (New York date of its mtime),
      is a valid watchlist and its ScanDate is today (NY). Message on stdout:
      OK: Watchlist is fresh for today (NY): <path> (<date>)
  1   the watchlist is missing. stderr: Watchlist missing: <path>
  2   the file was not written today (NY). stderr:
      Watchlist is not from today (NY). file_date=<d> today=<d> path=<p>
  3   the content is not a valid watchlist (truncated, garbage, wrong header, bad field,
      larger than 1 MiB or 1,000 rows); the message names the line and column
  4   the watchlist is valid but its ScanDate is not today (NY)
  5   the watchlist exists but cannot be read (permissions, I/O error), or it is not a
      regular file (a FIFO, device or directory; refused without waiting on it)
  10  bad command line or configuration file

Dates are New York dates whatever the host's TZ. A header-only watchlist (no candidates)
is fresh. Fix codes 1-4 by running the scan (systemctl start scan.service).";

/// Check that today's watchlist exists before execution starts.
#[derive(Debug, Parser)]
#[command(name = "avwap-gate", version, after_help = EXIT_CODES)]
struct Args {
    /// Watchlist to check [default: <state-dir>/daily_candidates.csv]
    #[arg(long, value_name = "PATH")]
    watchlist: Option<PathBuf>,
    /// State directory [env: AVWAP_STATE_DIR] [default: /var/lib/avwap]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Configuration file [env: AVWAP_CONFIG]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where log lines go (the verdict itself is always on stdout/stderr as documented)
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
    let path = args.watchlist.unwrap_or_else(|| config.watchlist_path());
    avwap::gate::run(&path, SystemClock.now()).into()
}
