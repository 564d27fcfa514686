//! netwatch: socket errors per process, traced by eBPF and explained.
//!
//! The binary (`src/main.rs`) only calls [`main`]; everything lives here so that the
//! pieces are unit-tested without root.

pub mod caps;
pub mod cgroup;
pub mod cli;
pub mod clock;
pub mod counts;
pub mod diagnose;
pub mod errno;
pub mod event;
pub mod inspect;
pub mod kernel_btf;
pub mod loader;
pub mod log;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod ringbuf;
pub mod run;
pub mod sockaddr;
pub mod tracefs;

use std::process::ExitCode;

use clap::Parser as _;

/// Parse the command line, run, and turn any error into `netwatch: <chain>` and exit 1.
pub fn main() -> ExitCode {
    let args = cli::Args::parse();
    log::init();
    match cli::print_docs(&args, &mut std::io::stdout().lock()) {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        // `netwatch --man | head`: the reader left; nothing is wrong.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netwatch: writing the document: {e}");
            return ExitCode::FAILURE;
        }
    }
    // `netwatch --` alone: clap accepts it as "no command"; it is a mistake.
    if args.command.is_empty() && std::env::args_os().last().is_some_and(|a| a == "--") {
        use clap::CommandFactory as _;
        cli::Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "`--` must be followed by a command to run",
            )
            .exit();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netwatch: starting the event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netwatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
