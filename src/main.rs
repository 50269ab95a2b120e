//! The `clustersim` binary: parse the command line, run, map errors to exit codes.

use clap::Parser;

fn main() {
    // a closed pipe ends the process quietly, as it does for other command-line tools
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(clustersim::commands::main_with(clustersim::cli::Cli::parse()));
}
