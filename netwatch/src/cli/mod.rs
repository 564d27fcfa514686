//! Command-line interface (clap derive). Flags follow bcc/strace habits: -p PID,
//! -j for NDJSON.

use clap::Parser;

const EXAMPLES: &str = "\
EXAMPLES:
    sudo netwatch                    # socket errors of every process on the host
    sudo netwatch -p 1234            # only process 1234 and the children it forks
    sudo netwatch -p 1234,5678       # only these two processes (and their children)
    sudo netwatch -- ./server -l 80  # run a command, trace it and everything it starts
    sudo netwatch -v -- ./server     # also successful binds/listens/connects, forks, execs
    sudo netwatch -P 9000 --errno EADDRINUSE -d 60   # one port, one errno, one minute
    sudo netwatch -n nginx -u 33 -4  # processes named nginx, of uid 33, IPv4 sockets
    sudo netwatch -j                 # NDJSON, one object per event (netwatch-json(5))
    sudo netwatch -j | jq 'select(.error == \"EADDRINUSE\")'
    sudo netwatch --check -- ./server   # CI guard: fail if the server exits 0 after a failed bind
    sudo netwatch --summary-only -- ./run-tests.sh
    sudo netwatch --metrics 9464 --quiet   # a daemon for Prometheus: 127.0.0.1:9464/metrics
    sudo netwatch --cgroup /system.slice/nginx.service   # one service (or container)
    sudo netwatch --ring-buffer-size 64M   # room for bursts: a power of two, 4K to 1G (K, M, G)

EXIT STATUS:
    0    stopped by Ctrl-C (SIGINT) or SIGTERM, after -d SECS, when every -p process
         exited, or stdout closed
    1    netwatch failed (not privileged, tracefs or a program could not be set up, ...)
    2    bad command line
    With -- CMD: CMD's exit status (128+N if a signal N killed it); 127 if CMD was
    not found, 126 if it could not be executed; 130 if a second SIGINT ended netwatch
    before CMD.
    86   with --check: a process in CMD's tree exited 0 after a bind failure it never
         recovered from (the diagnosis says which); takes precedence over CMD's status.

The manual, netwatch(8), has the output's columns, every diagnosis, signals (SIGHUP
reopens -o FILE, SIGUSR1 prints the summary so far) and the environment.";

#[derive(Debug, Parser)]
#[command(
    name = "netwatch",
    version,
    about = "Trace socket errors per process, live, and explain them.",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Trace only this process and its children (repeatable, or a comma list: -p 1,2).
    /// Filtered in the kernel. netwatch ends, with the summary, when all have exited.
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID",
        value_parser = parse_pid,
        value_delimiter = ','
    )]
    pub pids: Vec<u32>,

    /// With -p: keep tracing after every watched process has exited (until Ctrl-C).
    #[arg(long, requires = "pids")]
    pub keep_going: bool,

    /// Only socket events whose local or remote port is PORT (repeatable). Filtered in
    /// the kernel; process exits, signals and forks still come through.
    #[arg(short = 'P', long = "port", value_name = "PORT", value_parser = parse_port)]
    pub ports: Vec<u16>,

    /// Only these failures (repeatable): --errno EADDRINUSE --errno EPIPE. Filtered in
    /// the kernel; the summary counts only these.
    #[arg(
        long = "errno",
        value_name = "NAME",
        value_parser = ErrnoName,
        hide_possible_values = true
    )]
    pub errnos: Vec<i32>,

    /// Only processes named COMM, exactly (repeatable; at most 15 bytes, what the
    /// kernel keeps of a name). Filtered in the kernel.
    #[arg(short = 'n', long = "name", value_name = "COMM", value_parser = parse_comm)]
    pub names: Vec<String>,

    /// Only processes running as this user id. Filtered in the kernel.
    #[arg(short = 'u', long = "uid", value_name = "UID")]
    pub uid: Option<u32>,

    /// Only IPv4 sockets.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Only IPv6 sockets.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Print NDJSON: one JSON object per line (schema: docs/JSON.md).
    #[arg(short = 'j', long)]
    pub json: bool,

    /// Only failures: the default, kept for bcc's habit (-x).
    #[arg(short = 'x', long = "failed", conflicts_with = "verbose", hide = true)]
    pub failed: bool,

    /// Also show successful binds, listens and connects, forks, execs and every exit.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// How TIME is printed: local (the default; honours TZ), utc, iso (RFC 3339, local
    /// offset), relative (seconds since start) or none. JSON keeps its UTC `time`.
    #[arg(short = 'T', long = "time", value_name = "FORMAT", value_enum, default_value_t = TimeFormat::Local)]
    pub time: TimeFormat,

    /// Stop after SECS seconds (fractions allowed), with the summary, and exit 0. With
    /// -- CMD, as strace does when it detaches: tracing stops, CMD is left running and
    /// not waited for, and the exit status is 0 (86 with --check if a flagged exit was
    /// seen).
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<std::time::Duration>,

    /// Colour errnos and diagnoses: auto (on a terminal, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// Print nothing while running; only the per-process summary at exit.
    #[arg(long)]
    pub summary_only: bool,

    /// Print nothing on stdout (for a daemon scraped through --metrics, or a CI guard:
    /// --check -- CMD); warnings and errors still go to stderr.
    #[arg(short = 'q', long, conflicts_with = "summary_only")]
    pub quiet: bool,

    /// Only processes in this cgroup (v2) or below it; filtered in the kernel. PATH is
    /// relative to the cgroup hierarchy (e.g. /system.slice/nginx.service) or absolute
    /// under its mount.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,

    /// Write the stream and the summary to FILE (appended) instead of stdout. SIGHUP
    /// reopens it, for log rotation.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    /// Serve Prometheus/OpenMetrics metrics on http://ADDR/metrics. ADDR is PORT (on
    /// 127.0.0.1), localhost:PORT, IP:PORT or [IPv6]:PORT: listening beyond loopback
    /// is explicit. Port 0 picks a free one; the ready line says which.
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::parse_addr)]
    pub metrics: Option<std::net::SocketAddr>,

    /// With -- CMD: exit 86 if any process in CMD's tree exits 0 after a failed bind
    /// it never recovered from (a CI/deploy guard); otherwise exit with CMD's status.
    #[arg(long, requires = "command")]
    pub check: bool,

    /// Print the man page (roff) and exit. For packagers: `cargo xtask install` uses it.
    #[arg(long, hide = true, exclusive = true)]
    pub man: bool,

    /// Print a completion script for SHELL and exit (bash, zsh, fish, elvish, powershell).
    #[arg(long, hide = true, exclusive = true, value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Run CMD and trace it and every process it starts, from its first instruction.
    /// netwatch then exits with CMD's status.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,

    /// Size of the kernel ring buffer: a power of two from 4K to 1G (K, M and G suffixes).
    #[arg(long, value_name = "BYTES", default_value = "4M", value_parser = parse_size)]
    pub ring_buffer_size: u32,
}

impl Args {
    /// The filters the kernel applies.
    pub fn filters(&self) -> crate::loader::Filters {
        use netwatch_common::{AF_INET, AF_INET6};
        crate::loader::Filters {
            uid: self.uid,
            names: self.names.clone(),
            family: match (self.ipv4, self.ipv6) {
                (true, _) => Some(AF_INET),
                (_, true) => Some(AF_INET6),
                _ => None,
            },
            ports: dedup(&self.ports),
            errnos: dedup(&self.errnos),
        }
    }

    /// Combinations that clap's attributes cannot express, each with what to use
    /// instead; refused like clap's own errors (exit 2).
    pub fn check_combinations(&self) -> Result<(), String> {
        use netwatch_common::{MAX_FILTER_COMMS, MAX_FILTER_ERRNOS, MAX_FILTER_PORTS};
        let f = self.filters();
        for (flag, n, max) in [
            ("-P", f.ports.len(), MAX_FILTER_PORTS),
            ("--errno", f.errnos.len(), MAX_FILTER_ERRNOS),
            ("-n", f.names.len(), MAX_FILTER_COMMS),
        ] {
            if n > max {
                return Err(format!(
                    "{flag} given {n} times: the kernel filter holds {max} at most"
                ));
            }
        }
        if self.quiet && self.output.is_some() {
            return Err(
                "--quiet writes nothing, so -o FILE would stay empty: drop --quiet, \
                        or use --summary-only -o FILE for the summary alone"
                    .into(),
            );
        }
        if self.quiet && self.metrics.is_none() && self.command.is_empty() {
            return Err(
                "--quiet alone prints nothing and serves nothing: add --metrics ADDR \
                        (a daemon for Prometheus), or use --summary-only"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `-T`: how TIME is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeFormat {
    Local,
    Utc,
    Iso,
    Relative,
    None,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// `values` without repeats, in the order given.
fn dedup<T: PartialEq + Copy>(values: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(*v);
        }
    }
    out
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{s}` is not a port (1 to 65535)")),
        Ok(port) => Ok(port),
    }
}

/// `--errno NAME`, in any case: its number. The shell completions offer every name; a
/// wrong one is refused in one line (not with the list of all).
#[derive(Clone)]
struct ErrnoName;

impl clap::builder::TypedValueParser for ErrnoName {
    type Value = i32;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<i32, clap::Error> {
        let text = value.to_string_lossy();
        crate::errno::number(&text.to_ascii_uppercase()).ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("--errno: `{text}` is not an errno name (e.g. EADDRINUSE, EPIPE)\n"),
            )
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::errno::names().map(clap::builder::PossibleValue::new),
        ))
    }
}

fn parse_comm(s: &str) -> Result<String, String> {
    match s.len() {
        0 => Err("an empty process name matches nothing".into()),
        1..=15 => Ok(s.to_owned()),
        _ => Err(format!(
            "`{s}` is {} bytes: the kernel keeps 15 of a process name",
            s.len()
        )),
    }
}

fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(secs))
        }
        _ => Err(format!("`{s}` is not a number of seconds above 0")),
    }
}

fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("0 is not a process id (PIDs start at 1)".into()),
        Ok(pid) if pid <= i32::MAX as u32 => Ok(pid),
        _ => Err(format!(
            "`{s}` is not a process id (expected a positive integer)"
        )),
    }
}

fn parse_size(s: &str) -> Result<u32, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size (e.g. 256K, 4M)"))?;
    if n < 4096 || !n.is_power_of_two() || n > 1 << 30 {
        return Err(format!(
            "{n} bytes: the ring buffer size must be a power of two from 4K to 1G"
        ));
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests;

/// The manual, netwatch(8), written by hand (roff) rather than generated by
/// clap_mangen: it explains the columns, the diagnoses, the signals and the exit
/// statuses, which a list of flags cannot. `--man` prints it as it is. What keeps it
/// true to this definition: the tests below (every option `--help` shows, with its
/// value name, is in OPTIONS; every diagnosis is in DIAGNOSES) and
/// netwatch/tests/cli.rs (`man --warnings` finds nothing to say; every long option of
/// the built binary's `--help` is in the page).
pub const MAN_PAGE: &str = include_str!("../../../docs/netwatch.8");

/// `--man` and `--completions`: write the document to `out`.
pub fn print_docs(args: &Args, out: &mut impl std::io::Write) -> std::io::Result<bool> {
    if args.man {
        out.write_all(MAN_PAGE.as_bytes())?;
        return Ok(true);
    }
    if let Some(shell) = args.completions {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut completed_command(), "netwatch", &mut script);
        let script = String::from_utf8_lossy(&script);
        out.write_all(complete_values(shell, &script).as_bytes())?;
        return Ok(true);
    }
    Ok(false)
}

/// The values clap's generated scripts cannot offer, put into them: the live pids
/// for `-p` and the cgroup hierarchy's paths for `--cgroup` (both are read when the
/// shell completes, so they are the host's at that moment).
fn complete_values(shell: clap_complete::Shell, script: &str) -> String {
    use clap_complete::Shell;
    const CGROUPS: &str = "/sys/fs/cgroup";
    match shell {
        Shell::Bash => {
            let files = "COMPREPLY=($(compgen -f \"${cur}\"))";
            let pids = "COMPREPLY=($(compgen -W \"$(cd /proc && ls -d [0-9]*)\" -- \"${cur}\"))";
            let cgroups = format!(
                "COMPREPLY=($(compgen -W \"$(cd {CGROUPS} && find . -mindepth 1 -type d \
                 -printf '/%P ' 2>/dev/null)\" -- \"${{cur}}\"))"
            );
            let mut out = script.to_owned();
            for (case, with) in [
                ("--pid)", pids.to_owned()),
                ("-p)", pids.to_owned()),
                ("--cgroup)", cgroups),
            ] {
                let from = format!("{case}\n                    {files}");
                let to = format!("{case}\n                    {with}");
                out = out.replace(&from, &to);
            }
            out
        }
        Shell::Zsh => script
            .lines()
            .map(|l| {
                if l.contains("]:PID:_default") {
                    l.replace("]:PID:_default", "]:PID:_pids")
                } else if l.starts_with("'--cgroup=") {
                    l.replace(
                        "]:PATH:_default",
                        &format!("]:PATH:_path_files -W {CGROUPS} -/"),
                    )
                } else {
                    l.to_owned()
                }
            })
            .map(|l| l + "\n")
            .collect(),
        Shell::Fish => script
            .lines()
            .map(|l| {
                if l.starts_with("complete -c netwatch -s p -l pid ") {
                    format!("{l} -f -a '(__fish_complete_pids)'")
                } else if l.starts_with("complete -c netwatch -l cgroup ") {
                    format!(
                        "{l} -f -a '(find {CGROUPS} -mindepth 1 -type d 2>/dev/null \
                         | string replace {CGROUPS} \"\")'"
                    )
                } else {
                    l.to_owned()
                }
            })
            .map(|l| l + "\n")
            .collect(),
        _ => script.to_owned(),
    }
}

/// The command line the completion scripts offer: the options `--help` shows.
/// clap_complete ignores `hide`, so the hidden ones (`--man`, `--completions`,
/// `-x`/`--failed`) are left out here; none of the others refers to them.
fn completed_command() -> clap::Command {
    use clap::CommandFactory as _;
    let full = Args::command();
    let visible: Vec<clap::Arg> = full
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("netwatch")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .args(visible)
}

#[cfg(test)]
mod doc_tests;
