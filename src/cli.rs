//! Shared command-line plumbing for the four binaries: argument parsing whose usage errors map
//! to avwap's config-error exit code (clap's own code 2 would read as "stale watchlist"),
//! loading the configuration the same way everywhere, ending a process with a typed failure's
//! message and exit code, and the "not implemented yet" exit for commands whose issue has not
//! landed.

use crate::config::{Config, ConfigError, Mode};
use crate::credentials::process_env;
use crate::exit::{with_causes, ExitCode, Failure};
use clap::Parser;
use std::path::{Path, PathBuf};

/// Parse arguments; on `--help`/`--version` print and exit 0, on a usage error print and exit
/// with [`ExitCode::ConfigError`].
pub fn parse_args<T: Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(err) => {
            let code = if err.use_stderr() {
                ExitCode::ConfigError.code()
            } else {
                ExitCode::Ok.code()
            };
            let _ = err.print();
            std::process::exit(i32::from(code));
        }
    }
}

/// The configuration the way every binary loads it: the file from `--config` or
/// `AVWAP_CONFIG` (defaults when neither is given), the env overrides, then `--state-dir`.
pub fn load_config(
    config_flag: Option<&Path>,
    state_dir: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let mut config = Config::load(config_flag, &process_env)?;
    if let Some(dir) = state_dir {
        config.state_dir = dir;
    }
    Ok(config)
}

/// End `binary`: exit 0 on success; on failure print `<binary>: <message>` on stderr and exit
/// with the failure's code.
pub fn finish<E: Failure>(binary: &str, result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => ExitCode::Ok.into(),
        Err(e) => {
            eprintln!("{binary}: {e}");
            e.exit_code().into()
        }
    }
}

/// [`finish`], the message followed by its causes (see [`with_causes`]).
pub fn finish_with_causes<E: Failure>(
    binary: &str,
    result: Result<(), E>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => ExitCode::Ok.into(),
        Err(e) => {
            eprintln!("{binary}: {}", with_causes(&e));
            e.exit_code().into()
        }
    }
}

/// Refuse honestly: print what is missing and exit non-zero.
pub fn not_implemented(binary: &str, what: &str) -> std::process::ExitCode {
    eprintln!(
        "{binary}: not implemented yet: {what}. This build of avwap cannot do it; nothing was done."
    );
    ExitCode::NotImplemented.into()
}

/// `avwap-execution --mode`: the execution mode, overriding `AVWAP_MODE` and the file's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
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

/// `--mode`, on the commands of `avwap-execution` that talk to a broker (flattened into each,
/// so the option shows only where it means something).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ModeFlag {
    /// Execution mode [env: AVWAP_MODE] [default: sim]
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
}

/// `--at`, on the commands of `avwap-execution` that run cycles.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AtFlag {
    /// Run as if the time were this (RFC 3339, or YYYY-MM-DDTHH:MM New York); sim mode (and tests against a loopback fake)
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// Logging for the binaries: see [`crate::ops::logging`]. The format comes from
/// `AVWAP_LOG_FORMAT` (default `auto`: journald under systemd, text on stderr otherwise), the
/// level from `RUST_LOG` (default info). A binary with a `--log-format` flag calls
/// [`crate::ops::logging::init`] instead.
pub fn init_logging() {
    crate::ops::logging::init_from_env();
}
