//! The subcommands, one file each: load the inputs, call the library, print and write the outputs.
//! No modelling here; nothing below imports this folder.

mod bench;
mod cluster;
mod collective;
mod input;
mod merge;
mod plan;
mod run;
mod sweep;
mod trace;
mod train;
mod validate;

use crate::cli::{Cli, Command, RunArgs, TraceAction};

/// Runs the command line; returns the process exit code (0, 2 for bad input, 1 for internal errors).
pub fn main_with(cli: Cli) -> i32 {
    let result = match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run::run_command(&args),
        Command::Bench(args) => bench::bench_command(&args),
        Command::Collective(args) => collective::collective_command(&args),
        Command::Sweep(args) => sweep::sweep_command(&args),
        Command::Validate(args) => validate::validate_command(&args),
        Command::Plan(args) => plan::plan_command(&args),
        Command::Train(args) => train::train_command(&args),
        Command::Cluster(args) => cluster::cluster_command(&args),
        Command::Merge(args) => merge::merge_command(&args),
        Command::Trace(args) => match &args.action {
            TraceAction::Export(e) => trace::export_command(e),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}
