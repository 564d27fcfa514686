//! `cargo xtask bench`: netwatch's overhead on a real HTTP workload (next to a
//! bpftrace program doing the same in-kernel work, and strace), its event capacity
//! under failing-syscall storms, start-up and detach times, footprint and per-program
//! cost. Results go to target/bench/results.json and results.md; docs/BENCHMARKS.md
//! describes the method and a run.
//!
//! The bench checks its targets and prints PASS/FAIL for each, but exits 0 whenever it
//! ran: a missed target is a result, not an error.

mod capacity;
pub(crate) mod procs;
mod report;
mod workload;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};

use self::capacity::{Mode, StormRun};
use self::report::{J, Spread, fmt_spread, grouped, spread_json};
use self::workload::{Nginx, Run, Tracer, Variant};
use crate::cmd::{Cmd, find_command, is_root};
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
    let stats_off = procs::BpfStats::disable()?;
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
    procs::set_quiet_budget(Duration::from_secs(if opts.quick { 20 } else { 180 }));
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
    let md = markdown(&out, &targets, &machine, &placement, &opts, elapsed);
    let json = to_json(&out, &targets, &machine, &placement, &opts, elapsed);
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

// ---------------------------------------------------------------------------------
// The three phases
// ---------------------------------------------------------------------------------

fn run_workload(cfg: &workload::Config) -> Result<(Vec<Run>, Vec<workload::ProgramCost>)> {
    let nginx = Nginx::start(&cfg.dir, cfg.worker_cpu)?;
    println!(
        "bench: nginx on 127.0.0.1:{} (worker pid {}, CPUs {})",
        nginx.port,
        nginx.worker,
        procs::cpus_allowed(nginx.worker)
    );
    let mut runs = Vec::new();
    let mut costs = Vec::new();
    for variant in Variant::ALL {
        // Warm-up, not counted.
        workload::run_wrk(cfg, nginx.port, variant, Duration::from_secs(2))?;
        let total = cfg.rounds * Tracer::ROUND.len() + 1;
        for i in 0..total {
            let (round, tracer) = (
                i / Tracer::ROUND.len(),
                Tracer::ROUND[i % Tracer::ROUND.len()],
            );
            let r = workload::one_run(cfg, &nginx, variant, tracer, round)?;
            let label = if round == cfg.rounds {
                "final".to_owned()
            } else {
                format!("round {}/{}", round + 1, cfg.rounds)
            };
            println!(
                "bench: {} {label:<10} {:<30} {:>9.0} req/s, other load {:>4.1} %{}{}{}",
                variant.name(),
                tracer.name(),
                r.rps,
                r.other_cpu_pct,
                r.ready
                    .map(|d| format!(", ready after {} ms", d.as_millis()))
                    .unwrap_or_default(),
                r.socket_errors
                    .as_ref()
                    .map(|e| format!(", socket errors: {e}"))
                    .unwrap_or_default(),
                if r.foreign.is_empty() {
                    String::new()
                } else {
                    format!(", other BPF users: {}", r.foreign.join(", "))
                }
            );
            if !r.tracer_status_ok {
                println!(
                    "bench: warning: {} exited with {}",
                    tracer.name(),
                    r.tracer_status.as_deref().unwrap_or("?")
                );
            }
            runs.push(r);
        }
        let c = workload::program_cost(cfg, &nginx, variant)?;
        println!(
            "bench: {} program cost     netwatch, kernel.bpf_stats_enabled=1: {} requests, {} ns of BPF per request",
            variant.name(),
            c.requests,
            c.ns_per_request()
                .map_or("?".to_owned(), |ns| format!("{ns:.0}"))
        );
        costs.push(c);
    }
    nginx.stop()?;
    Ok((runs, costs))
}

fn run_capacity(cfg: &capacity::Config, opts: &Options) -> Result<Vec<StormRun>> {
    let mut runs = Vec::new();
    let print = |r: &StormRun| {
        let what = match &r.traced {
            None => "untraced".to_owned(),
            Some(t) => format!(
                "netwatch{}{}",
                t.ring
                    .as_ref()
                    .map(|r| format!(" --ring-buffer-size {r}"))
                    .unwrap_or_default(),
                if r.stats { " (bpf stats on)" } else { "" }
            ),
        };
        let mut line = format!(
            "bench: storm {:<7} {:<38} {:>8.0}/s (CPU time) {:>8.0}/s (wall), other load {:.1} %",
            r.kind.name(),
            what,
            r.cpu_rate(),
            r.wall_rate(),
            r.other_cpu_pct
        );
        if let Some(t) = &r.traced {
            let _ = write!(
                line,
                "; delivered {} lost {} (kernel count {})",
                t.delivered,
                t.lost_kind.map_or("?".to_owned(), |n| n.to_string()),
                t.kernel_count.map_or("?".to_owned(), |n| n.to_string())
            );
        }
        if !r.foreign.is_empty() {
            let _ = write!(line, "; other BPF users: {}", r.foreign.join(", "));
        }
        println!("{line}");
    };
    let traced = Mode::Traced {
        ring: None,
        stats: false,
    };
    for kind in Kind::ALL {
        let n = opts.count(kind);
        // U T U T ... U: every traced run has an untraced one on each side.
        for round in 0..opts.capacity_rounds {
            for mode in [&Mode::Untraced, &traced] {
                let r = capacity::run(cfg, kind, n, mode, round)?;
                print(&r);
                runs.push(r);
            }
        }
        let r = capacity::run(cfg, kind, n, &Mode::Untraced, opts.capacity_rounds)?;
        print(&r);
        runs.push(r);
        // Per-program cost, with kernel.bpf_stats_enabled=1 (which costs time itself, so
        // these runs are kept out of the ratios).
        let stats = Mode::Traced {
            ring: None,
            stats: true,
        };
        let r = capacity::run(cfg, kind, n, &stats, opts.capacity_rounds + 1)?;
        print(&r);
        runs.push(r);
        if kind == Kind::Bind {
            let small = Mode::Traced {
                ring: Some("64K".to_owned()),
                stats: false,
            };
            let r = capacity::run(cfg, kind, n, &small, opts.capacity_rounds + 2)?;
            print(&r);
            runs.push(r);
        }
    }
    Ok(runs)
}

fn run_startup(cfg: &capacity::Config, n: usize) -> Result<Vec<capacity::StartStop>> {
    let mut out = Vec::new();
    for i in 0..n {
        let s = capacity::start_stop(cfg, i)?;
        println!(
            "bench: start-up {}/{n}: ready after {:.1} ms, detached in {:.1} ms",
            i + 1,
            ms(s.ready),
            ms(s.detach)
        );
        out.push(s);
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------
// Summaries
// ---------------------------------------------------------------------------------

fn workload_ratio(runs: &[Run], v: Variant, t: Tracer) -> Option<Spread> {
    Spread::of(&workload::ratios(runs, v, t))
}

/// Other processes' CPU load under which a run counts as clean.
const CLEAN_OTHER_LOAD_PERCENT: f64 = 5.0;

/// Ratios over the triples whose three runs were all clean.
fn clean_ratios(runs: &[Run], v: Variant, t: Tracer) -> Vec<f64> {
    workload::ratios_where(runs, v, t, |r| {
        r.other_cpu_pct < CLEAN_OTHER_LOAD_PERCENT && r.foreign.is_empty()
    })
}

fn workload_rps(runs: &[Run], v: Variant, t: Tracer) -> Option<Spread> {
    let x: Vec<f64> = runs
        .iter()
        .filter(|r| r.variant == v && r.tracer == t)
        .map(|r| r.rps)
        .collect();
    Spread::of(&x)
}

/// The storms that enter the ratios: untraced ones, and traced ones at the default ring
/// buffer size without bpf stats.
fn is_plain_traced(r: &StormRun) -> bool {
    r.traced.as_ref().is_some_and(|t| t.ring.is_none()) && !r.stats
}

/// Ratios of each plain traced storm's rate to the untraced storms around it.
fn storm_ratios(runs: &[StormRun], kind: Kind, rate: fn(&StormRun) -> f64) -> Vec<f64> {
    let base = |round: usize| {
        runs.iter()
            .find(|r| r.kind == kind && r.traced.is_none() && r.round == round)
            .map(rate)
    };
    runs.iter()
        .filter(|r| r.kind == kind && is_plain_traced(r))
        .filter_map(|r| Some(rate(r) / ((base(r.round)? + base(r.round + 1)?) / 2.0)))
        .collect()
}

fn storm_rates(runs: &[StormRun], kind: Kind, traced: bool) -> Option<Spread> {
    let x: Vec<f64> = runs
        .iter()
        .filter(|r| {
            r.kind == kind
                && if traced {
                    is_plain_traced(r)
                } else {
                    r.traced.is_none()
                }
        })
        .map(StormRun::cpu_rate)
        .collect();
    Spread::of(&x)
}

/// Records per second netwatch delivered: over the storm's loop and the drain after it.
fn delivered_rate(r: &StormRun) -> Option<f64> {
    let t = r.traced.as_ref()?;
    let secs = r.outcome.wall_ns as f64 / 1e9 + t.drain.as_secs_f64();
    Some(t.delivered as f64 / secs)
}

/// All of netwatch's BPF time during a storm (stats runs only) over its failures.
fn bpf_ns_per_failure(r: &StormRun) -> Option<f64> {
    let t = r.traced.as_ref().filter(|_| r.stats)?;
    let total: u64 = t.progs.iter().map(|p| p.run_time_ns).sum();
    (r.outcome.failures > 0).then(|| total as f64 / r.outcome.failures as f64)
}

/// produced = delivered + lost, for the storm's own record kind.
fn accounting_exact(r: &StormRun) -> Option<bool> {
    let t = r.traced.as_ref()?;
    Some(t.lost_kind? + t.delivered == r.outcome.failures)
}

struct Target {
    name: String,
    pass: bool,
    detail: String,
}

fn check_targets(out: &Results) -> Vec<Target> {
    let mut ts = Vec::new();
    if !out.workload.is_empty() {
        for v in Variant::ALL {
            let nw = workload_ratio(&out.workload, v, Tracer::Netwatch);
            let bt = workload_ratio(&out.workload, v, Tracer::Bpftrace);
            let floor = workload_ratio(&out.workload, v, Tracer::Floor)
                .map_or_else(|| "-".to_owned(), |f| format!("{:.3}", f.median));
            let (pass, detail) = match (nw, bt) {
                (Some(nw), Some(bt)) => (
                    nw.median >= 0.98 && nw.median >= bt.median,
                    format!(
                        "netwatch median ratio {:.3} (target >= 0.98), bpftrace-equivalent {:.3} (netwatch must not be below); floor {floor}",
                        nw.median, bt.median
                    ),
                ),
                _ => (false, "no ratio measured".to_owned()),
            };
            ts.push(Target {
                name: format!("workload {}", v.name()),
                pass,
                detail,
            });
        }
    }
    if !out.capacity.is_empty() {
        let ratios = Spread::of(&storm_ratios(&out.capacity, Kind::Bind, StormRun::cpu_rate));
        let plain: Vec<&StormRun> = out
            .capacity
            .iter()
            .filter(|r| r.kind == Kind::Bind && is_plain_traced(r))
            .collect();
        let lost: u64 = plain
            .iter()
            .map(|r| {
                r.traced
                    .as_ref()
                    .and_then(|t| t.lost_kind)
                    .unwrap_or(u64::MAX)
            })
            .fold(0, u64::saturating_add);
        let produced: u64 = plain.iter().map(|r| r.outcome.failures).sum();
        let (pass, detail) = match ratios {
            Some(s) => (
                s.median >= 0.6 && lost == 0,
                format!(
                    "failing binds kept {:.3} of the untraced rate (median of {} runs; target >= 0.6); {} of their {} records lost at the default ring buffer size (target 0)",
                    s.median,
                    s.n,
                    if lost == u64::MAX {
                        "?".to_owned()
                    } else {
                        grouped(lost)
                    },
                    grouped(produced)
                ),
            ),
            None => (false, "no ratio measured".to_owned()),
        };
        ts.push(Target {
            name: "capacity (streaming every failing bind)".to_owned(),
            pass,
            detail,
        });
    }
    if !out.startup.is_empty() {
        let s = Spread::of(&out.startup.iter().map(|s| ms(s.ready)).collect::<Vec<_>>());
        ts.push(Target {
            name: "start-up".to_owned(),
            pass: s.is_some_and(|s| s.median <= 150.0),
            detail: format!(
                "median {} ms from exec to `netwatch: ready` (target <= 150 ms)",
                s.map_or("?".to_owned(), |s| format!("{:.1}", s.median))
            ),
        });
    }
    if let Some(peak) = peak_rss_kib(out) {
        ts.push(Target {
            name: "peak RSS".to_owned(),
            pass: peak <= 20 * 1024,
            detail: format!(
                "{:.1} MiB VmHWM, highest of the runs at the default ring buffer size (target <= 20 MiB)",
                peak as f64 / 1024.0
            ),
        });
    }
    ts
}

/// The highest VmHWM of netwatch over the storms at the default ring buffer size.
fn peak_rss_kib(out: &Results) -> Option<u64> {
    out.capacity
        .iter()
        .filter_map(|r| r.traced.as_ref())
        .filter(|t| t.ring.is_none())
        .filter_map(|t| t.vm_hwm_kib)
        .max()
}

// ---------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------

struct Machine {
    nproc: usize,
    kernel: String,
    cpu_model: String,
    mem_mib: u64,
    netwatch_commit: String,
    netwatch_binary: String,
    tools: Vec<(String, String)>,
    date_unix: u64,
    /// kernel.bpf_stats_enabled when the bench started (it runs with 0).
    bpf_stats_before: String,
}

fn first_line(mut c: Command) -> String {
    c.output()
        .ok()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .find(|l| !l.trim().is_empty() && !l.contains("RLIMIT_MEMLOCK"))
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn machine_info(root: &Path, netwatch: &Path, nproc: usize) -> Machine {
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let mem_mib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |k| k / 1024);
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let mut commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "netwatch",
        "netwatch-common",
        "netwatch-ebpf",
    ]);
    if !dirty.is_empty() {
        commit.push_str(" + uncommitted changes in netwatch*/");
    }
    let netwatch_binary = fs::metadata(netwatch)
        .map(|m| {
            let age = m
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .map_or("?".to_owned(), |d| format!("{} s", d.as_secs()));
            format!("{} bytes, built {age} before the bench", m.len())
        })
        .unwrap_or_default();
    let tool = |name: &str, args: &[&str]| {
        let mut c = Command::new(name);
        c.args(args);
        (name.to_owned(), first_line(c))
    };
    let mut nw = Command::new(netwatch);
    nw.arg("--version");
    let tools = vec![
        ("netwatch".to_owned(), first_line(nw)),
        tool("nginx", &["-v"]),
        tool("wrk", &["-v"]),
        tool("bpftrace", &["--version"]),
        tool("strace", &["-V"]),
        (
            "bpftool".to_owned(),
            if find_command("bpftool").is_some() {
                let mut c = Command::new("bpftool");
                c.arg("--version");
                first_line(c)
            } else {
                "not installed".to_owned()
            },
        ),
    ];
    Machine {
        nproc,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        cpu_model,
        mem_mib,
        netwatch_commit: commit,
        netwatch_binary,
        tools,
        date_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        bpf_stats_before: String::new(),
    }
}

// ---------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------

fn kib_mib(k: Option<u64>) -> String {
    k.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn markdown(
    out: &Results,
    targets: &[Target],
    m: &Machine,
    placement: &Placement,
    opts: &Options,
    elapsed: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# netwatch bench results\n");
    let _ = writeln!(
        s,
        "Machine: {} CPUs ({}), {} MiB, kernel {}. netwatch {} ({}).",
        m.nproc, m.cpu_model, m.mem_mib, m.kernel, m.netwatch_commit, m.netwatch_binary
    );
    let tools: Vec<String> = m.tools.iter().map(|(n, v)| format!("{n}: `{v}`")).collect();
    let _ = writeln!(s, "Tools: {}.", tools.join("; "));
    let _ = writeln!(s, "Placement: {}.", placement.describe());
    let _ = writeln!(
        s,
        "kernel.bpf_stats_enabled: 0 during the measured runs, 1 during the statistics runs (it was {} before the bench, and is again).",
        m.bpf_stats_before
    );
    let _ = writeln!(
        s,
        "Mode: {}; socket I/O traced at {}; took {:.1} min.\n",
        if opts.quick { "--quick" } else { "full" },
        if opts.sockio_exits {
            "the syscall exits (--sockio exits)"
        } else {
            "sock_send_length/sock_recv_length"
        },
        elapsed.as_secs_f64() / 60.0
    );

    if !out.workload.is_empty() {
        let _ = writeln!(
            s,
            "## Workload: nginx + wrk ({} rounds of {} s, {} connections)\n",
            opts.rounds,
            opts.duration.as_secs(),
            opts.connections
        );
        let _ = writeln!(
            s,
            "Ratio = the run's requests/s over the mean of the untraced runs before and after it: median (min-max).\n"
        );
        let _ = writeln!(
            s,
            "| variant | tracer | ratio to untraced | ratio, clean runs only | requests/s | tracer ready | tracer stop | other load |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for v in Variant::ALL {
            for t in Tracer::ROUND {
                let (ratio, clean) = if t == Tracer::Untraced {
                    ("1".to_owned(), "1".to_owned())
                } else {
                    let clean = clean_ratios(&out.workload, v, t);
                    (
                        fmt_spread(workload_ratio(&out.workload, v, t), 3),
                        format!("{} (n={})", fmt_spread(Spread::of(&clean), 3), clean.len()),
                    )
                };
                let of = |f: fn(&Run) -> Option<Duration>| {
                    let x: Vec<f64> = out
                        .workload
                        .iter()
                        .filter(|r| r.variant == v && r.tracer == t)
                        .filter_map(|r| f(r).map(ms))
                        .collect();
                    Spread::of(&x).map_or("-".to_owned(), |s| format!("{:.0} ms", s.median))
                };
                let other: Vec<f64> = out
                    .workload
                    .iter()
                    .filter(|r| r.variant == v && r.tracer == t)
                    .map(|r| r.other_cpu_pct)
                    .collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {clean} | {} | {} | {} | {} % |",
                    v.name(),
                    t.name(),
                    ratio,
                    fmt_spread(workload_rps(&out.workload, v, t), 0),
                    of(|r| r.ready),
                    of(|r| r.stop),
                    fmt_spread(Spread::of(&other), 1)
                );
            }
        }
        let errors: Vec<String> = out
            .workload
            .iter()
            .filter(|r| r.socket_errors.is_some() || r.non_2xx > 0 || !r.tracer_status_ok)
            .map(|r| {
                format!(
                    "{} round {} {}: socket errors {}, non-2xx {}, tracer exit {}",
                    r.variant.name(),
                    r.round + 1,
                    r.tracer.name(),
                    r.socket_errors.as_deref().unwrap_or("none"),
                    r.non_2xx,
                    r.tracer_status.as_deref().unwrap_or("-")
                )
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "\nRuns with errors:\n");
            for e in errors {
                let _ = writeln!(s, "- {e}");
            }
        }
        let foreign = out
            .workload
            .iter()
            .filter(|r| !r.foreign.is_empty())
            .count();
        let _ = writeln!(
            s,
            "\nOther load: CPU time used by processes other than nginx, wrk and the tracer during each wrk run, in % of all CPUs: median (min-max). Clean runs: other load under {CLEAN_OTHER_LOAD_PERCENT} % and no other process holding BPF programs, for the traced run and both untraced runs around it. Runs started while another process held BPF programs: {foreign} of {}.",
            out.workload.len()
        );
        let hwm = out
            .workload
            .iter()
            .filter(|r| r.tracer == Tracer::Netwatch)
            .filter_map(|r| r.tracer_hwm_kib)
            .max();
        let _ = writeln!(
            s,
            "netwatch's VmHWM in the workload runs: {} at most.\n",
            kib_mib(hwm)
        );
        if !out.workload_costs.is_empty() {
            let _ = writeln!(s, "### netwatch's programs per request\n");
            let _ = writeln!(
                s,
                "One more netwatch run of each variant ({} s) with kernel.bpf_stats_enabled=1, not counted in the ratios: run_time_ns / run_cnt of each program that ran, and its runs and BPF time per request. The statistics add a little to each run; the tracepoints' own machinery and the slow path of every syscall are not in these figures.\n",
                opts.duration.min(workload::STATS_RUN).as_secs()
            );
            let _ = writeln!(
                s,
                "| variant | program | type | runs per request | ns/run | ns per request |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|");
            for c in &out.workload_costs {
                let per_request = |n: u64| n as f64 / c.requests.max(1) as f64;
                for p in &c.progs {
                    let Some(ns) = p.ns_per_run() else { continue };
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {:.3} | {ns:.0} | {:.0} |",
                        c.variant.name(),
                        p.name,
                        p.prog_type,
                        per_request(p.run_cnt),
                        per_request(p.run_time_ns)
                    );
                }
                let _ = writeln!(
                    s,
                    "| {} | all programs ({} requests) | | | | {} |",
                    c.variant.name(),
                    grouped(c.requests),
                    c.ns_per_request()
                        .map_or("?".to_owned(), |ns| format!("{ns:.0}"))
                );
            }
            let _ = writeln!(s);
        }
    }

    if !out.capacity.is_empty() {
        let _ = writeln!(
            s,
            "## Event capacity: failing-syscall storms under `netwatch -j`\n"
        );
        let _ = writeln!(
            s,
            "Rates are failures per second of the generator's CPU time (wall-clock ratio next to it); ratio = traced over the mean of the untraced storms around it. Delivered/s counts the storm's records in netwatch's output over the storm plus the drain after it.\n"
        );
        let _ = writeln!(
            s,
            "| storm | N | untraced /s | traced /s | ratio (CPU time) | ratio (wall) | delivered/s | lost | delivered + lost = N | netwatch CPU | VmHWM | other load |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for kind in Kind::ALL {
            let plain: Vec<&StormRun> = out
                .capacity
                .iter()
                .filter(|r| r.kind == kind && is_plain_traced(r))
                .collect();
            if plain.is_empty() {
                continue;
            }
            let ratio = |rate: fn(&StormRun) -> f64| {
                fmt_spread(Spread::of(&storm_ratios(&out.capacity, kind, rate)), 3)
            };
            let of_traced = |f: fn(&StormRun) -> Option<f64>, digits| {
                fmt_spread(
                    Spread::of(&plain.iter().filter_map(|r| f(r)).collect::<Vec<_>>()),
                    digits,
                )
            };
            let lost = list(plain.iter().map(|r| {
                r.traced
                    .as_ref()
                    .and_then(|t| t.lost_kind)
                    .map_or("?".to_owned(), grouped)
            }));
            let exact = list(plain.iter().map(|r| yes_no(accounting_exact(r))));
            let hwm = plain
                .iter()
                .filter_map(|r| r.traced.as_ref()?.vm_hwm_kib)
                .max();
            let other: Vec<f64> = out
                .capacity
                .iter()
                .filter(|r| r.kind == kind && (r.traced.is_none() || is_plain_traced(r)))
                .map(|r| r.other_cpu_pct)
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {lost} | {exact} | {} % | {} | {} % |",
                storm_label(kind),
                grouped(plain[0].outcome.count),
                fmt_spread(storm_rates(&out.capacity, kind, false), 0),
                fmt_spread(storm_rates(&out.capacity, kind, true), 0),
                ratio(StormRun::cpu_rate),
                ratio(StormRun::wall_rate),
                of_traced(delivered_rate, 0),
                of_traced(|r| r.traced.as_ref().map(|t| t.cpu_pct), 0),
                kib_mib(hwm),
                fmt_spread(Spread::of(&other), 1),
            );
        }
        let foreign = out
            .capacity
            .iter()
            .filter(|r| !r.foreign.is_empty())
            .count();
        let _ = writeln!(
            s,
            "\nOther load: as above, during the storm's run. Storms started while another process held BPF programs: {foreign} of {}.",
            out.capacity.len()
        );
        let _ = writeln!(s, "\nOther traced storms (not in the ratios above):\n");
        let _ = writeln!(
            s,
            "| storm | netwatch | rate /s (CPU time) | delivered | lost (kind) | lost (all) | kernel count | delivered + lost = N |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in out
            .capacity
            .iter()
            .filter(|r| r.traced.is_some() && !is_plain_traced(r))
        {
            let Some(t) = &r.traced else { continue };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {} | {} | {} | {} | {} |",
                storm_label(r.kind),
                match (&t.ring, r.stats) {
                    (Some(ring), _) => format!("`--ring-buffer-size {ring}`"),
                    (None, true) => "default, kernel.bpf_stats_enabled=1".to_owned(),
                    (None, false) => "default".to_owned(),
                },
                r.cpu_rate(),
                grouped(t.delivered),
                t.lost_kind.map_or("?".to_owned(), grouped),
                t.lost_total.map_or("?".to_owned(), grouped),
                t.kernel_count.map_or("?".to_owned(), grouped),
                yes_no(accounting_exact(r)),
            );
        }
        let _ = writeln!(s, "\n## Per-program cost (kernel.bpf_stats_enabled=1)\n");
        let _ = writeln!(
            s,
            "run_time_ns / run_cnt of netwatch's programs during each storm (programs that ran at least once). A program attached to every syscall's exit runs for other syscalls too (the generator's, netwatch's own, the rest of the host's), so its ns/run is an average over cheap and expensive runs; the `all programs / N` row divides the time of all netwatch's programs by the storm's N failures: what one failure costs in the kernel, at most.\n"
        );
        let _ = writeln!(s, "| storm | program | type | runs | ns/run |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for r in out.capacity.iter().filter(|r| r.stats) {
            let Some(t) = &r.traced else { continue };
            for p in &t.progs {
                let Some(ns) = p.ns_per_run() else { continue };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {ns:.0} |",
                    r.kind.name(),
                    p.name,
                    p.prog_type,
                    grouped(p.run_cnt)
                );
            }
            if let Some(ns) = bpf_ns_per_failure(r) {
                let _ = writeln!(
                    s,
                    "| {} | all programs / N | | {} | {ns:.0} |",
                    r.kind.name(),
                    grouped(r.outcome.failures)
                );
            }
        }
        let _ = writeln!(s);
    }

    if !out.startup.is_empty() {
        let ready = Spread::of(&out.startup.iter().map(|s| ms(s.ready)).collect::<Vec<_>>());
        let detach = Spread::of(&out.startup.iter().map(|s| ms(s.detach)).collect::<Vec<_>>());
        let _ = writeln!(s, "## Start-up and detach ({} runs)\n", out.startup.len());
        let _ = writeln!(s, "| | median (min-max) |");
        let _ = writeln!(s, "|---|---|");
        let _ = writeln!(
            s,
            "| exec to `netwatch: ready` | {} ms |",
            fmt_spread(ready, 1)
        );
        let _ = writeln!(
            s,
            "| SIGINT to exit (detach) | {} ms |",
            fmt_spread(detach, 1)
        );
        let bad = out.startup.iter().filter(|s| !s.status_ok).count();
        if bad > 0 {
            let _ = writeln!(s, "\n{bad} runs did not exit 0.");
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Targets\n");
    for t in targets {
        let _ = writeln!(
            s,
            "- **{}** {}: {}",
            if t.pass { "PASS" } else { "FAIL" },
            t.name,
            t.detail
        );
    }
    s
}

fn storm_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Bind => "bind EADDRINUSE",
        Kind::Connect => "connect EADDRNOTAVAIL",
        Kind::Write => "send EPIPE",
        Kind::Read => "recv ECONNRESET",
    }
}

fn yes_no(b: Option<bool>) -> String {
    match b {
        Some(true) => "yes".to_owned(),
        Some(false) => "NO".to_owned(),
        None => "?".to_owned(),
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn dur_json(d: Option<Duration>) -> J {
    J::opt_num(d.map(ms))
}

/// netwatch's programs and their run statistics.
fn programs_json(progs: &[procs::ProgStat]) -> J {
    J::Arr(
        progs
            .iter()
            .map(|p| {
                J::obj([
                    ("id", J::u(p.id)),
                    ("name", J::str(p.name.clone())),
                    ("type", J::str(p.prog_type.clone())),
                    ("run_cnt", J::u(p.run_cnt)),
                    ("run_time_ns", J::u(p.run_time_ns)),
                    ("ns_per_run", J::opt_num(p.ns_per_run())),
                ])
            })
            .collect(),
    )
}

fn to_json(
    out: &Results,
    targets: &[Target],
    m: &Machine,
    placement: &Placement,
    opts: &Options,
    elapsed: Duration,
) -> J {
    let cpu = |c: Option<usize>| c.map_or(J::Null, |c| J::u(c as u64));
    let workload_runs = out
        .workload
        .iter()
        .map(|r| {
            J::obj([
                ("variant", J::str(r.variant.name())),
                ("tracer", J::str(r.tracer.name())),
                ("round", J::u(r.round as u64)),
                ("requests_per_s", J::Num(r.rps)),
                ("requests", J::u(r.requests)),
                (
                    "socket_errors",
                    r.socket_errors.clone().map_or(J::Null, J::Str),
                ),
                ("non_2xx", J::u(r.non_2xx)),
                ("tracer_ready_ms", dur_json(r.ready)),
                ("tracer_stop_ms", dur_json(r.stop)),
                (
                    "tracer_exit",
                    r.tracer_status.clone().map_or(J::Null, J::Str),
                ),
                ("tracer_exit_ok", J::Bool(r.tracer_status_ok)),
                (
                    "tracer_cpus_allowed",
                    r.tracer_cpus.clone().map_or(J::Null, J::Str),
                ),
                ("netwatch_output_lines", J::opt_u(r.output_lines)),
                ("tracer_vm_hwm_kib", J::opt_u(r.tracer_hwm_kib)),
                ("waited_for_quiet_ms", J::Num(ms(r.quiet_wait))),
                ("other_cpu_percent", J::Num(r.other_cpu_pct)),
                (
                    "other_bpf_users",
                    J::Arr(r.foreign.iter().cloned().map(J::Str).collect()),
                ),
            ])
        })
        .collect();
    let mut workload_summary = Vec::new();
    for v in Variant::ALL {
        for t in Tracer::ROUND {
            workload_summary.push(J::obj([
                ("variant", J::str(v.name())),
                ("tracer", J::str(t.name())),
                (
                    "requests_per_s",
                    spread_json(workload_rps(&out.workload, v, t)),
                ),
                (
                    "ratio",
                    if t == Tracer::Untraced {
                        J::Null
                    } else {
                        spread_json(workload_ratio(&out.workload, v, t))
                    },
                ),
                (
                    "ratio_clean_runs",
                    if t == Tracer::Untraced {
                        J::Null
                    } else {
                        spread_json(Spread::of(&clean_ratios(&out.workload, v, t)))
                    },
                ),
                (
                    "ratios",
                    J::Arr(if t == Tracer::Untraced {
                        Vec::new()
                    } else {
                        workload::ratios(&out.workload, v, t)
                            .into_iter()
                            .map(J::Num)
                            .collect()
                    }),
                ),
            ]));
        }
    }
    let storm_runs = out
        .capacity
        .iter()
        .map(|r| {
            let traced = r.traced.as_ref().map_or(J::Null, |t| {
                J::obj([
                    (
                        "ring_buffer_size",
                        t.ring.clone().map_or(J::str("default"), J::Str),
                    ),
                    ("bpf_stats", J::Bool(r.stats)),
                    ("ready_ms", J::Num(ms(t.ready))),
                    ("detach_ms", J::Num(ms(t.detach))),
                    ("exit", J::str(t.status.clone())),
                    ("exit_ok", J::Bool(t.status_ok)),
                    ("delivered", J::u(t.delivered)),
                    ("delivered_per_s", J::opt_num(delivered_rate(r))),
                    ("lost_kind", J::opt_u(t.lost_kind)),
                    ("lost_total", J::opt_u(t.lost_total)),
                    ("kernel_count", J::opt_u(t.kernel_count)),
                    (
                        "delivered_plus_lost_equals_produced",
                        accounting_exact(r).map_or(J::Null, J::Bool),
                    ),
                    ("live_lost_reports", J::u(t.live_lost_reports)),
                    ("output_lines", J::u(t.output_lines)),
                    ("cpu_percent", J::Num(t.cpu_pct)),
                    ("drain_ms", J::Num(ms(t.drain))),
                    ("vm_hwm_kib", J::opt_u(t.vm_hwm_kib)),
                    ("bpf_ns_per_failure", J::opt_num(bpf_ns_per_failure(r))),
                    ("programs", programs_json(&t.progs)),
                ])
            });
            J::obj([
                ("kind", J::str(r.kind.name())),
                ("round", J::u(r.round as u64)),
                ("count", J::u(r.outcome.count)),
                ("failures", J::u(r.outcome.failures)),
                ("errno", J::Int(r.outcome.errno.into())),
                ("loop_wall_ns", J::u(r.outcome.wall_ns)),
                ("loop_cpu_ns", J::u(r.outcome.cpu_ns)),
                ("rate_cpu_per_s", J::Num(r.cpu_rate())),
                ("rate_wall_per_s", J::Num(r.wall_rate())),
                ("process_wall_ms", J::Num(ms(r.process_wall))),
                ("other_cpu_percent", J::Num(r.other_cpu_pct)),
                ("netwatch", traced),
                (
                    "other_bpf_users",
                    J::Arr(r.foreign.iter().cloned().map(J::Str).collect()),
                ),
            ])
        })
        .collect();
    let storm_summary = Kind::ALL
        .iter()
        .filter(|k| out.capacity.iter().any(|r| r.kind == **k))
        .map(|&k| {
            J::obj([
                ("kind", J::str(k.name())),
                (
                    "untraced_rate_cpu",
                    spread_json(storm_rates(&out.capacity, k, false)),
                ),
                (
                    "traced_rate_cpu",
                    spread_json(storm_rates(&out.capacity, k, true)),
                ),
                (
                    "ratio_cpu",
                    spread_json(Spread::of(&storm_ratios(
                        &out.capacity,
                        k,
                        StormRun::cpu_rate,
                    ))),
                ),
                (
                    "ratio_wall",
                    spread_json(Spread::of(&storm_ratios(
                        &out.capacity,
                        k,
                        StormRun::wall_rate,
                    ))),
                ),
            ])
        })
        .collect();
    let startup = if out.startup.is_empty() {
        J::Null
    } else {
        J::obj([
            (
                "ready_ms",
                spread_json(Spread::of(
                    &out.startup.iter().map(|s| ms(s.ready)).collect::<Vec<_>>(),
                )),
            ),
            (
                "detach_ms",
                spread_json(Spread::of(
                    &out.startup.iter().map(|s| ms(s.detach)).collect::<Vec<_>>(),
                )),
            ),
            (
                "runs",
                J::Arr(
                    out.startup
                        .iter()
                        .map(|s| {
                            J::obj([
                                ("ready_ms", J::Num(ms(s.ready))),
                                ("detach_ms", J::Num(ms(s.detach))),
                                ("exit_ok", J::Bool(s.status_ok)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    };
    J::obj([
        (
            "machine",
            J::obj([
                ("nproc", J::u(m.nproc as u64)),
                ("kernel", J::str(m.kernel.clone())),
                ("cpu_model", J::str(m.cpu_model.clone())),
                ("mem_mib", J::u(m.mem_mib)),
                ("netwatch_commit", J::str(m.netwatch_commit.clone())),
                ("netwatch_binary", J::str(m.netwatch_binary.clone())),
                (
                    "tools",
                    J::Obj(
                        m.tools
                            .iter()
                            .map(|(n, v)| (n.clone(), J::str(v.clone())))
                            .collect(),
                    ),
                ),
                ("date_unix", J::u(m.date_unix)),
                (
                    "bpf_stats_enabled_before",
                    J::str(m.bpf_stats_before.clone()),
                ),
            ]),
        ),
        (
            "config",
            J::obj([
                ("quick", J::Bool(opts.quick)),
                ("rounds", J::u(opts.rounds as u64)),
                ("duration_s", J::u(opts.duration.as_secs())),
                ("connections", J::u(u64::from(opts.connections))),
                ("file_size", J::u(workload::FILE_SIZE as u64)),
                ("capacity_rounds", J::u(opts.capacity_rounds as u64)),
                ("startup_runs", J::u(opts.startup_runs as u64)),
                ("nginx_worker_cpu", cpu(placement.worker)),
                ("wrk_cpu", cpu(placement.load)),
                ("storm_cpu", cpu(placement.worker)),
                ("tracer_cpu", cpu(placement.tracer)),
                (
                    "strace",
                    J::str(format!(
                        "strace -f -p <worker> -e {} -o /dev/null",
                        workload::STRACE_FILTER
                    )),
                ),
                ("bpftrace_script", J::str(workload::bpftrace_script())),
                ("floor_script", J::str(workload::floor_script())),
            ]),
        ),
        (
            "workload",
            J::obj([
                ("summary", J::Arr(workload_summary)),
                ("runs", J::Arr(workload_runs)),
                (
                    "program_cost",
                    J::Arr(
                        out.workload_costs
                            .iter()
                            .map(|c| {
                                J::obj([
                                    ("variant", J::str(c.variant.name())),
                                    ("requests", J::u(c.requests)),
                                    ("bpf_ns_per_request", J::opt_num(c.ns_per_request())),
                                    ("programs", programs_json(&c.progs)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ]),
        ),
        (
            "capacity",
            J::obj([
                ("summary", J::Arr(storm_summary)),
                ("runs", J::Arr(storm_runs)),
            ]),
        ),
        ("startup", startup),
        ("peak_rss_kib", J::opt_u(peak_rss_kib(out))),
        (
            "targets",
            J::Arr(
                targets
                    .iter()
                    .map(|t| {
                        J::obj([
                            ("name", J::str(t.name.clone())),
                            ("pass", J::Bool(t.pass)),
                            ("detail", J::str(t.detail.clone())),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("elapsed_s", J::Num(elapsed.as_secs_f64())),
    ])
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
