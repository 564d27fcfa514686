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
pub mod procfs;
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
    if let Err(why) = args.check_combinations() {
        use clap::CommandFactory as _;
        cli::Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, why)
            .exit();
    }
    if let Err(why) = check_stdout(args.quiet || args.output.is_some()) {
        eprintln!("netwatch: {why}");
        return ExitCode::FAILURE;
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

/// `netwatch >&-`: refused unless nothing goes to stdout (`--quiet`, `-o`), since
/// netwatch would run for nothing.
///
/// Rust's runtime has already given a closed standard fd /dev/null before `main`
/// (so that no file opened later becomes fd 1), opened read-write; a shell's
/// `>/dev/null` opens it write-only. A read-write /dev/null on fd 1 is therefore taken
/// as a stdout that was closed.
fn check_stdout(stdout_unused: bool) -> Result<(), String> {
    if stdout_unused || !stdout_was_closed() {
        return Ok(());
    }
    Err(
        "stdout is closed: the stream would go nowhere (use -o FILE, \
         or --quiet with --metrics)"
            .into(),
    )
}

fn stdout_was_closed() -> bool {
    // SAFETY: F_GETFL and fstat only read the fd's state into our buffer.
    let (flags, st) = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (
            libc::fcntl(1, libc::F_GETFL),
            (libc::fstat(1, &mut st) == 0).then_some(st),
        )
    };
    let Some(st) = st else {
        // Still closed (no runtime sanitising): closed.
        return true;
    };
    let dev_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && libc::major(st.st_rdev) == 1
        && libc::minor(st.st_rdev) == 3;
    dev_null && flags != -1 && flags & libc::O_ACCMODE == libc::O_RDWR
}
