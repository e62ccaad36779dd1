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

/// Logging for the binaries: human-readable to stderr, level from `RUST_LOG` (default info).
/// (Structured journald output comes with the operations work.)
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
