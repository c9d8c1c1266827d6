use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = airlog::cli::Cli::parse();
    match airlog::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line naming the problem; `{:#}` joins the context chain.
            eprintln!("airlog: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
