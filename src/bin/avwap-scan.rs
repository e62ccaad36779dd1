//! `avwap-scan`: computes Anchored VWAP over the universe and writes the ranked watchlist.

use clap::Parser;

/// avwap-scan: computes Anchored VWAP over the universe and writes the ranked watchlist (not implemented yet).
#[derive(Debug, Parser)]
#[command(name = "avwap-scan", version)]
struct Args {
    /// Arguments are accepted and ignored until this command is implemented.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let _args: Args = avwap::cli::parse_args();
    avwap::cli::not_implemented(
        "avwap-scan",
        "the scanner (issue 'Scanner') has not landed; no watchlist was written",
    )
}
