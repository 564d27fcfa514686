//! `cargo xtask bench`: netwatch's overhead on a real HTTP workload (next to a
//! bpftrace program doing the same in-kernel work, and strace), its event capacity
//! under failing-syscall storms, start-up and detach times, footprint and per-program
//! cost. Results go to target/bench/results.json and results.md; docs/BENCHMARKS.md
//! describes the method and a run.
//!
//! The bench checks its targets and prints PASS/FAIL for each, but exits 0 whenever it
//! ran: a missed target is a result, not an error.

mod capacity;
mod json;
mod machine;
mod markdown;
mod phases;
mod procfs;
pub(crate) mod procs;
mod report;
mod summaries;
mod workload;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use self::capacity::StormRun;
use self::json::to_json;
use self::machine::{Machine, machine_info};
use self::markdown::markdown;
use self::phases::{run_capacity, run_startup, run_workload};
use self::summaries::{Target, check_targets};
use self::workload::Run;
use crate::cmd::{Cmd, is_root};
use crate::storm::Kind;

/// Debian packages the bench needs (package, command), installed when missing. Used by
/// the bench only: setup and test do not need them.
pub const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("nginx", "nginx"),
    ("wrk", "wrk"),
    ("bpftrace", "bpftrace"),
    ("strace", "strace"),
];
/// Optional: only gives the BPF programs their names in the per-program table.
const OPTIONAL_PACKAGES: &[(&str, &str)] = &[("bpftool", "bpftool")];

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [options]

Runs as root. Installs nginx, wrk, bpftrace, strace (and bpftool) with apt-get when
missing, builds netwatch (cargo xtask build), then measures:
  1. workload overhead: nginx (sendfile, one worker) + wrk, keep-alive and
     Connection: close; runs alternate untraced / netwatch / bpftrace-equivalent /
     floor (bpftrace on one syscall tracepoint: the slow path every syscall tracer
     puts the host on) / strace; each traced run's requests/s is divided by the
     untraced runs around it;
     one more netwatch run per variant with kernel.bpf_stats_enabled=1 gives each
     program's runs and ns per request
  2. event capacity: failing bind/connect/write/read storms, untraced vs netwatch -j
  3. start-up (exec to `netwatch: ready`) and detach (SIGINT to exit)
  4. footprint (VmHWM, CPU%) and per-program ns/event (kernel.bpf_stats_enabled)
Results: target/bench/results.json and target/bench/results.md. Exit status 0 when the
bench ran, whatever the PASS/FAIL lines say.

options:
  --quick              a smoke run of about 3 minutes
  --rounds N           workload rounds (default 16; quick 2)
  --duration SECS      seconds per wrk run (default 3)
  --connections N      wrk connections (default 32)
  --capacity-rounds N  traced storms per kind (default 3; quick 1)
  --startup-runs N     start/stop cycles (default 10; quick 3)
  --tracer-cpu N       pin the tracers to CPU N (default: unpinned)
  --only LIST          comma-separated subset of workload,capacity,startup
  --no-build           use target/release/netwatch as it is
  --sockio exits       trace socket I/O at the syscall exits, as netwatch does on
                       kernels without sock_send_length (NETWATCH_SOCKIO=exits)
";

struct Options {
    quick: bool,
    rounds: usize,
    duration: Duration,
    connections: u32,
    capacity_rounds: usize,
    startup_runs: usize,
    tracer_cpu: Option<usize>,
    workload: bool,
    capacity: bool,
    startup: bool,
    build: bool,
    /// `--sockio exits`: netwatch's socket I/O fallback, forced.
    sockio_exits: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Option<Options>> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut o = Options {
            quick,
            rounds: if quick { 2 } else { 16 },
            duration: Duration::from_secs(3),
            connections: 32,
            capacity_rounds: if quick { 1 } else { 3 },
            startup_runs: if quick { 3 } else { 10 },
            tracer_cpu: None,
            workload: true,
            capacity: true,
            startup: true,
            build: true,
            sockio_exits: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--quick" => {}
                "-h" | "--help" => return Ok(None),
                "--rounds" => o.rounds = value()?.parse().context("--rounds")?,
                "--duration" => o.duration = Duration::from_secs(value()?.parse()?),
                "--connections" => o.connections = value()?.parse().context("--connections")?,
                "--capacity-rounds" => o.capacity_rounds = value()?.parse()?,
                "--startup-runs" => o.startup_runs = value()?.parse()?,
                "--tracer-cpu" => o.tracer_cpu = Some(value()?.parse()?),
                "--no-build" => o.build = false,
                "--sockio" => match value()?.as_str() {
                    "exits" => o.sockio_exits = true,
                    "raw" => o.sockio_exits = false,
                    other => bail!("--sockio: {other}: expected raw or exits"),
                },
                "--only" => {
                    let list = value()?;
                    o.workload = false;
                    o.capacity = false;
                    o.startup = false;
                    for part in list.split(',') {
                        match part {
                            "workload" => o.workload = true,
                            "capacity" => o.capacity = true,
                            "startup" => o.startup = true,
                            _ => bail!("--only: unknown part {part}"),
                        }
                    }
                }
                _ => bail!("unknown bench argument {a}\n{USAGE}"),
            }
        }
        if o.rounds == 0 || o.capacity_rounds == 0 || o.startup_runs == 0 {
            bail!("round and run counts must be at least 1");
        }
        Ok(Some(o))
    }

    /// Failing calls per storm.
    fn count(&self, kind: Kind) -> u64 {
        match (kind, self.quick) {
            (Kind::Bind, false) | (Kind::Write, false) => 2_000_000,
            (Kind::Connect, false) => 1_000_000,
            (Kind::Read, false) => 100_000,
            (Kind::Bind, true) | (Kind::Write, true) => 500_000,
            (Kind::Connect, true) => 300_000,
            (Kind::Read, true) => 20_000,
        }
    }
}

/// The CPUs the pieces run on.
struct Placement {
    worker: Option<usize>,
    load: Option<usize>,
    tracer: Option<usize>,
}

impl Placement {
    fn describe(&self) -> String {
        let cpu = |c: Option<usize>| c.map_or("unpinned".to_owned(), |c| format!("CPU {c}"));
        format!(
            "nginx worker and storm generator: {}; wrk: {}; tracers (netwatch, bpftrace, strace): {}",
            cpu(self.worker),
            cpu(self.load),
            cpu(self.tracer)
        )
    }
}

/// A directory of the bench's own under /tmp, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!("netwatch-bench-{}", std::process::id()));
        if p.exists() {
            fs::remove_dir_all(&p)?;
        }
        fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn main(root: &Path, args: &[String]) -> Result<ExitCode> {
    let Some(opts) = Options::parse(args)? else {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
    if !is_root() {
        bail!(
            "the bench must run as root (it loads BPF programs and pins CPUs): sudo -E cargo xtask bench"
        );
    }
    procs::install_interrupt_handler();
    let started = Instant::now();
    if opts.sockio_exits {
        // SAFETY: set before any thread is started; every netwatch the bench runs
        // inherits it.
        unsafe { env::set_var("NETWATCH_SOCKIO", "exits") };
    }

    crate::setup::install_packages(BENCH_PACKAGES).context("installing the bench's packages")?;
    if let Err(e) = crate::setup::install_packages(OPTIONAL_PACKAGES) {
        println!("bench: bpftool not available ({e:#}); BPF programs will be named by id");
    }
    let built = if opts.build {
        crate::build(root)?
    } else {
        crate::target_dir(root).join("release/netwatch")
    };
    crate::setup::setup_tracefs()?;
    // `cargo xtask` is a debug build: the generator must not be.
    let storm_exe = if opts.capacity {
        Cmd::new("cargo")
            .args(["build", "--release", "--package", "xtask"])
            .run()
            .context("building the storm generator (xtask, release)")?;
        crate::target_dir(root).join("release/xtask")
    } else {
        PathBuf::new()
    };
    let tmp = TempDir::new()?;
    // A copy: the binary in target/ may be rebuilt while the bench runs.
    let netwatch = tmp.0.join("netwatch");
    fs::copy(&built, &netwatch).with_context(|| format!("copying {}", built.display()))?;

    let ncpu = num_cpus();
    let placement = if ncpu >= 2 {
        Placement {
            worker: Some(0),
            load: Some(1),
            tracer: opts.tracer_cpu,
        }
    } else {
        Placement {
            worker: None,
            load: None,
            tracer: None,
        }
    };
    let mut machine = machine_info(root, &built, ncpu);
    println!("bench: {}", placement.describe());
    // Off for the whole bench but the runs that read the statistics; put back at the end.
    let stats_off = procfs::BpfStats::disable()?;
    machine.bpf_stats_before = stats_off.previous().to_owned();
    if machine.bpf_stats_before != "0" {
        println!(
            "bench: kernel.bpf_stats_enabled was {}: 0 for the measured runs, put back at the end",
            machine.bpf_stats_before
        );
    }

    // Before each measurement, wait (bounded) for a quiet host: at most this long per
    // run, and at most the budget over the whole bench.
    let quiet_wait = Duration::from_secs(if opts.quick { 3 } else { 10 });
    procfs::set_quiet_budget(Duration::from_secs(if opts.quick { 20 } else { 180 }));
    let mut out = Results::default();
    if opts.workload {
        let cfg = workload::Config {
            duration: opts.duration,
            connections: opts.connections,
            rounds: opts.rounds,
            worker_cpu: placement.worker,
            wrk_cpu: placement.load,
            tracer_cpu: placement.tracer,
            netwatch: netwatch.clone(),
            dir: tmp.0.join("nginx"),
            quiet_wait,
        };
        fs::create_dir_all(&cfg.dir)?;
        (out.workload, out.workload_costs) = run_workload(&cfg)?;
    }
    if opts.capacity || opts.startup {
        let cfg = capacity::Config {
            netwatch: netwatch.clone(),
            storm_exe: storm_exe.clone(),
            dir: tmp.0.clone(),
            storm_cpu: placement.worker,
            tracer_cpu: placement.tracer,
            quiet_wait,
        };
        if opts.capacity {
            out.capacity = run_capacity(&cfg, &opts)?;
        }
        if opts.startup {
            out.startup = run_startup(&cfg, opts.startup_runs)?;
        }
    }

    let elapsed = started.elapsed();
    let targets = check_targets(&out);
    let report = Report {
        out: &out,
        targets: &targets,
        machine: &machine,
        placement: &placement,
        opts: &opts,
        elapsed,
    };
    let md = markdown(&report);
    let json = to_json(&report);
    let dir = crate::target_dir(root).join("bench");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("results.json"), format!("{json}\n"))?;
    fs::write(dir.join("results.md"), &md)?;
    println!("\n{md}");
    println!(
        "bench: results in {} and {}",
        dir.join("results.json").display(),
        dir.join("results.md").display()
    );
    for t in &targets {
        println!(
            "{} {}: {}",
            if t.pass { "PASS" } else { "FAIL" },
            t.name,
            t.detail
        );
    }
    println!("bench: took {:.1} min", elapsed.as_secs_f64() / 60.0);
    Ok(ExitCode::SUCCESS)
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[derive(Default)]
struct Results {
    workload: Vec<Run>,
    workload_costs: Vec<workload::ProgramCost>,
    capacity: Vec<StormRun>,
    startup: Vec<capacity::StartStop>,
}

/// Everything the reports (markdown, JSON) are written from.
#[derive(Clone, Copy)]
struct Report<'a> {
    out: &'a Results,
    targets: &'a [Target],
    machine: &'a Machine,
    placement: &'a Placement,
    opts: &'a Options,
    elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = Options::parse(&[]).unwrap().unwrap();
        assert_eq!((o.rounds, o.duration.as_secs(), o.quick), (16, 3, false));
        let o = Options::parse(&["--quick".into(), "--rounds".into(), "3".into()])
            .unwrap()
            .unwrap();
        assert_eq!((o.rounds, o.duration.as_secs(), o.quick), (3, 3, true));
        let o = Options::parse(&["--only".into(), "startup".into()])
            .unwrap()
            .unwrap();
        assert!(!o.workload && !o.capacity && o.startup && !o.sockio_exits);
        let o = Options::parse(&["--sockio".into(), "exits".into()])
            .unwrap()
            .unwrap();
        assert!(o.sockio_exits);
        assert!(Options::parse(&["--sockio".into(), "kprobes".into()]).is_err());
        assert!(Options::parse(&["--bogus".into()]).is_err());
        assert!(Options::parse(&["--help".into()]).unwrap().is_none());
    }
}
