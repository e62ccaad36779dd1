//! `avwap-check`: prints the health of the whole deployment.

use clap::Parser;

/// avwap-check: prints the health of the whole deployment (not implemented yet).
#[derive(Debug, Parser)]
#[command(name = "avwap-check", version)]
struct Args {
    /// Arguments are accepted and ignored until this command is implemented.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let _args: Args = avwap::cli::parse_args();
    avwap::cli::not_implemented("avwap-check", "the health check (issue 'Operations') has not landed; nothing was checked, so do not read this as healthy")
}
