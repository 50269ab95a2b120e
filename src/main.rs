//! The `clustersim` binary: parse the command line, run, map errors to exit codes.

use clap::Parser;

fn main() {
    std::process::exit(clustersim::commands::main_with(clustersim::cli::Cli::parse()));
}
