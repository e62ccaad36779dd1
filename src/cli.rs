//! Shared command-line plumbing for the four binaries: argument parsing whose usage errors map
//! to avwap's config-error exit code (clap's own code 2 would read as "stale watchlist"), and
//! the "not implemented yet" exit for commands whose issue has not landed.

use crate::exit::ExitCode;
use clap::Parser;

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

/// Refuse honestly: print what is missing and exit non-zero.
pub fn not_implemented(binary: &str, what: &str) -> std::process::ExitCode {
    eprintln!(
        "{binary}: not implemented yet: {what}. This build of avwap cannot do it; nothing was done."
    );
    ExitCode::NotImplemented.into()
}

/// Logging for the binaries: see [`crate::ops::logging`]. The format comes from
/// `AVWAP_LOG_FORMAT` (default `auto`: journald under systemd, text on stderr otherwise), the
/// level from `RUST_LOG` (default info). A binary with a `--log-format` flag calls
/// [`crate::ops::logging::init`] instead.
pub fn init_logging() {
    crate::ops::logging::init_from_env();
}
