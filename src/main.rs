use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mirror::cli::Cli::parse();
    match mirror::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            mirror::output::print_error(&err);
            ExitCode::FAILURE
        }
    }
}
