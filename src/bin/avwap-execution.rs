//! `avwap-execution`: trades the watchlist through the simulated broker or Alpaca.

use clap::Parser;

/// avwap-execution: trades the watchlist through the simulated broker or Alpaca (not implemented yet).
#[derive(Debug, Parser)]
#[command(name = "avwap-execution", version)]
struct Args {
    /// Arguments are accepted and ignored until this command is implemented.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let _args: Args = avwap::cli::parse_args();
    avwap::cli::not_implemented(
        "avwap-execution",
        "the execution service (issue 'Execution core') has not landed; no orders were sent",
    )
}
