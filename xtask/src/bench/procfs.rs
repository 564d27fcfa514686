//! What /proc says about the bench's processes and the host: CPU time, memory, CPU
//! affinity, children, BPF programs and their run statistics; and waiting for a quiet
//! host.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::procs::sleep;

pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: plain libc call.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The fields of /proc/PID/stat after the command name, from field 3 (state) on.
fn stat_fields(pid: i32) -> Result<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime of the whole process, in clock ticks.
pub fn cpu_ticks(pid: i32) -> Result<u64> {
    let f = stat_fields(pid)?;
    // Field 14 is utime, 15 stime; the vector starts at field 3.
    let get = |i: usize| -> Result<u64> {
        f.get(i - 3)
            .context("short stat")?
            .parse()
            .context("stat field")
    };
    Ok(get(14)? + get(15)?)
}

/// CPU seconds spent busy by all CPUs (everything in /proc/stat's `cpu` line but idle
/// and iowait).
pub fn host_busy_seconds() -> Result<f64> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok((total - idle) as f64 / clock_ticks_per_second())
}

/// CPU seconds of this process's reaped children (getrusage RUSAGE_CHILDREN).
pub fn reaped_children_seconds() -> f64 {
    // SAFETY: ru is written by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU seconds of a live process.
pub fn cpu_seconds(pid: i32) -> f64 {
    cpu_ticks(pid).map_or(0.0, |t| t as f64 / clock_ticks_per_second())
}

/// Measures the CPU time that processes other than the bench's own used during a
/// measurement: host busy time minus the watched live processes' and the children
/// reaped meanwhile. In percent of all CPUs.
pub struct OtherLoad {
    t0: Instant,
    busy0: f64,
    reaped0: f64,
    live0: Vec<(i32, f64)>,
}

impl OtherLoad {
    pub fn start(live: &[i32]) -> OtherLoad {
        OtherLoad {
            t0: Instant::now(),
            busy0: host_busy_seconds().unwrap_or(0.0),
            reaped0: reaped_children_seconds(),
            live0: live.iter().map(|&p| (p, cpu_seconds(p))).collect(),
        }
    }

    /// Call while the `live` processes are still alive.
    pub fn percent(&self) -> f64 {
        let wall = self.t0.elapsed().as_secs_f64();
        let busy = host_busy_seconds().unwrap_or(0.0) - self.busy0;
        let reaped = reaped_children_seconds() - self.reaped0;
        let live: f64 = self
            .live0
            .iter()
            .map(|&(p, c0)| (cpu_seconds(p) - c0).max(0.0))
            .sum();
        let ncpu = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        ((busy - reaped - live) / (wall * ncpu) * 100.0).max(0.0)
    }
}

/// A `Key:   N kB` line of /proc/PID/status, in KiB.
pub fn status_kib(pid: i32, key: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

/// The `Cpus_allowed_list` of a process.
pub fn cpus_allowed(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Children of a process (all its threads').
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(c) = fs::read_to_string(t.path().join("children")) {
            out.extend(c.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// How many of a process's descriptors point to `anon_inode:<what>`.
pub fn count_anon_fds(pid: i32, what: &str) -> usize {
    let want = format!("anon_inode:{what}");
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
                .count()
        })
        .unwrap_or(0)
}

/// Processes other than `ours` that hold BPF programs or links: other tracers whose
/// tracepoints would slow the "untraced" runs too. `pid comm` strings.
pub fn foreign_bpf_holders(ours: &[i32]) -> Vec<String> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || ours.contains(&pid) {
            continue;
        }
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|e| {
            fs::read_link(e.path()).is_ok_and(|l| {
                let l = l.to_string_lossy();
                l == "anon_inode:bpf-prog" || l == "anon_inode:bpf_link"
            })
        });
        if holds {
            let comm = fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            out.push(format!("{pid} {}", comm.trim()));
        }
    }
    out
}

/// What is left of the total time the bench may spend waiting for a quiet host.
static QUIET_BUDGET_MS: AtomicU64 = AtomicU64::new(0);
/// Busy CPU (all CPUs, in %) under which the host counts as quiet.
pub const QUIET_BUSY_PERCENT: f64 = 10.0;

pub fn set_quiet_budget(d: Duration) {
    QUIET_BUDGET_MS.store(d.as_millis() as u64, Ordering::SeqCst);
}

/// The host as a measurement started.
pub struct Quiet {
    /// Other processes holding BPF programs.
    pub foreign: Vec<String>,
    pub waited: Duration,
}

/// Waits until no other process holds BPF programs (their tracepoints would slow the
/// untraced runs too) and the CPUs are nearly idle, at most `max` and at most what is
/// left of the bench's total waiting budget. Measures at least 300 ms.
pub fn wait_for_quiet(max: Duration) -> Result<Quiet> {
    let t0 = Instant::now();
    let max = max.min(Duration::from_millis(
        QUIET_BUDGET_MS.load(Ordering::SeqCst),
    ));
    let ncpu = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    loop {
        let foreign = foreign_bpf_holders(&[]);
        let (b0, w0) = (host_busy_seconds()?, Instant::now());
        sleep(Duration::from_millis(300))?;
        let busy_percent =
            (host_busy_seconds()? - b0) / (w0.elapsed().as_secs_f64() * ncpu) * 100.0;
        let quiet = foreign.is_empty() && busy_percent < QUIET_BUSY_PERCENT;
        if quiet || t0.elapsed() >= max {
            let waited = t0.elapsed();
            let spent = waited.as_millis() as u64;
            let _ = QUIET_BUDGET_MS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(b.saturating_sub(spent))
            });
            return Ok(Quiet { foreign, waited });
        }
    }
}

/// A BPF program a process holds, with the kernel's run statistics (non-zero only
/// while kernel.bpf_stats_enabled is 1).
#[derive(Clone, Debug)]
pub struct ProgStat {
    pub id: u64,
    pub prog_type: String,
    pub name: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

impl ProgStat {
    /// Mean run time, when the program ran.
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

/// The BPF programs `pid` holds, from /proc/PID/fdinfo; names from bpftool when it is
/// installed.
pub fn prog_stats(pid: i32) -> Vec<ProgStat> {
    let mut out: Vec<ProgStat> = Vec::new();
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in fds.flatten() {
        if !fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog") {
            continue;
        }
        let info_path = Path::new("/proc")
            .join(pid.to_string())
            .join("fdinfo")
            .join(e.file_name());
        let Ok(info) = fs::read_to_string(info_path) else {
            continue;
        };
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        };
        let num = |k: &str| field(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let id = num("prog_id");
        if out.iter().any(|p| p.id == id) {
            continue;
        }
        out.push(ProgStat {
            id,
            prog_type: prog_type_name(num("prog_type")),
            name: prog_name(id).unwrap_or_else(|| format!("id {id}")),
            run_time_ns: num("run_time_ns"),
            run_cnt: num("run_cnt"),
        });
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.run_time_ns));
    out
}

/// The kernel's `enum bpf_prog_type` names of the types a tracer uses.
fn prog_type_name(t: u64) -> String {
    match t {
        2 => "kprobe".to_owned(),
        5 => "tracepoint".to_owned(),
        7 => "perf_event".to_owned(),
        17 => "raw_tracepoint".to_owned(),
        24 => "raw_tracepoint_writable".to_owned(),
        26 => "tracing".to_owned(),
        _ => format!("type {t}"),
    }
}

/// `bpftool prog show id N` prints `N: tracepoint  name sys_exit_bind  tag ...`.
fn prog_name(id: u64) -> Option<String> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "name")?;
    words.next().map(str::to_owned)
}

/// Sets kernel.bpf_stats_enabled and puts the previous value back when dropped. The
/// statistics cost every BPF program run two clock reads: the measured runs must not
/// have them (a host left with them on measured a failing-bind storm at 0.560 where
/// it keeps 0.6), the runs that read them must.
pub struct BpfStats {
    previous: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    /// Statistics on, for the runs that read them.
    pub fn enable() -> Result<BpfStats> {
        Self::set("1")
    }

    /// Statistics off, for the measured runs.
    pub fn disable() -> Result<BpfStats> {
        Self::set("0")
    }

    fn set(value: &str) -> Result<BpfStats> {
        let previous = fs::read_to_string(BPF_STATS)
            .with_context(|| format!("reading {BPF_STATS}"))?
            .trim()
            .to_owned();
        fs::write(BPF_STATS, value).with_context(|| format!("writing {value} to {BPF_STATS}"))?;
        Ok(BpfStats { previous })
    }

    /// The value before this guard set it.
    pub fn previous(&self) -> &str {
        &self.previous
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(e) = fs::write(BPF_STATS, &self.previous) {
            eprintln!(
                "bench: warning: could not restore {BPF_STATS} to {}: {e}",
                self.previous
            );
        }
    }
}
