//! Event capacity (failing-syscall storms, untraced vs under netwatch), start-up and
//! detach times, footprint and per-program cost.

use std::fs::{self, File};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::procfs::{self, OtherLoad, ProgStat, cpu_ticks, status_kib};
use super::procs::{self, Lines, Proc, pin_command};
use crate::storm::{Kind, Outcome};

pub struct Config {
    pub netwatch: PathBuf,
    /// An optimised build of xtask, whose hidden `storm` subcommand is the generator.
    pub storm_exe: PathBuf,
    pub dir: PathBuf,
    pub storm_cpu: Option<usize>,
    pub tracer_cpu: Option<usize>,
    /// The longest a run waits for a quiet host.
    pub quiet_wait: Duration,
}

/// How netwatch names what a storm produces: (record kind, lost_by_kind key, errno
/// name, summary count family).
pub fn netwatch_names(kind: Kind) -> (&'static str, &'static str, &'static str, &'static str) {
    match kind {
        Kind::Bind => ("bind", "bind", "EADDRINUSE", "bind"),
        Kind::Connect => ("connect", "connect", "EADDRNOTAVAIL", "connect"),
        Kind::Write => ("send", "sockio", "EPIPE", "send"),
        Kind::Read => ("recv", "sockio", "ECONNRESET", "recv"),
    }
}

/// What netwatch did during a traced storm.
pub struct Traced {
    pub ring: Option<String>,
    pub ready: Duration,
    pub detach: Duration,
    pub status_ok: bool,
    pub status: String,
    /// Records of the storm's failures netwatch printed.
    pub delivered: u64,
    /// summary_end's `lost` and `lost_by_kind[<kind>]`.
    pub lost_total: Option<u64>,
    pub lost_kind: Option<u64>,
    /// The kernel's exact count for the storm's process (its `summary`).
    pub kernel_count: Option<u64>,
    pub live_lost_reports: u64,
    pub output_lines: u64,
    /// netwatch's CPU time over the storm's wall time, in percent of one CPU.
    pub cpu_pct: f64,
    /// From the storm's end until netwatch's output stopped growing.
    pub drain: Duration,
    pub vm_hwm_kib: Option<u64>,
    pub progs: Vec<ProgStat>,
}

pub struct StormRun {
    pub kind: Kind,
    pub round: usize,
    pub outcome: Outcome,
    /// Wall time of the whole storm process (set-up included), for the CPU%.
    pub process_wall: Duration,
    pub traced: Option<Traced>,
    pub stats: bool,
    pub foreign: Vec<String>,
    /// CPU used by other processes during the storm, in % of all CPUs.
    pub other_cpu_pct: f64,
}

impl StormRun {
    pub fn cpu_rate(&self) -> f64 {
        self.outcome.failures as f64 / (self.outcome.cpu_ns as f64 / 1e9)
    }

    pub fn wall_rate(&self) -> f64 {
        self.outcome.failures as f64 / (self.outcome.wall_ns as f64 / 1e9)
    }
}

#[derive(Clone)]
pub enum Mode {
    Untraced,
    Traced { ring: Option<String>, stats: bool },
}

fn storm_command(cfg: &Config, kind: Kind, count: u64) -> Result<Command> {
    let mut c = Command::new(&cfg.storm_exe);
    c.args([
        "storm",
        "--kind",
        kind.name(),
        "--count",
        &count.to_string(),
    ]);
    if let Some(cpu) = cfg.storm_cpu {
        c.args(["--cpu", &cpu.to_string()]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(c)
}

/// Runs one storm to its end; its outcome and wall time.
fn run_storm_process(cfg: &Config, kind: Kind, count: u64) -> Result<(Proc, Outcome, Duration)> {
    let mut p = Proc::spawn("storm", storm_command(cfg, kind, count)?)?;
    let status = p.wait_exit(Duration::from_secs(300))?;
    let wall = p.spawned_at.elapsed();
    if let Some(l) = p.stdout.as_mut() {
        l.finish(Duration::from_secs(2));
    }
    let out = p.stdout.as_ref().map(Lines::text).unwrap_or_default();
    if !status.success() {
        bail!(
            "storm --kind {} failed ({status}):{}",
            kind.name(),
            p.output_tail()
        );
    }
    let outcome = out
        .lines()
        .find_map(Outcome::parse)
        .with_context(|| format!("no result line from the storm:\n{out}"))?;
    if outcome.failures != count {
        bail!(
            "storm made {} failures, asked for {count}",
            outcome.failures
        );
    }
    Ok((p, outcome, wall))
}

pub fn run(cfg: &Config, kind: Kind, count: u64, mode: &Mode, round: usize) -> Result<StormRun> {
    let quiet = procfs::wait_for_quiet(cfg.quiet_wait)?;
    let foreign = quiet.foreign;
    let (ring, stats) = match mode {
        Mode::Untraced => {
            let load = OtherLoad::start(&[]);
            let (_p, outcome, wall) = run_storm_process(cfg, kind, count)?;
            return Ok(StormRun {
                kind,
                round,
                outcome,
                process_wall: wall,
                traced: None,
                stats: false,
                foreign,
                other_cpu_pct: load.percent(),
            });
        }
        Mode::Traced { ring, stats } => (ring.clone(), *stats),
    };

    let out_path = cfg
        .dir
        .join(format!("netwatch-storm-{}-{round}.ndjson", kind.name()));
    let mut cmd = Command::new(&cfg.netwatch);
    cmd.arg("-j");
    if let Some(r) = &ring {
        cmd.args(["--ring-buffer-size", r]);
    }
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(Stdio::piped());
    if let Some(cpu) = cfg.tracer_cpu {
        pin_command(&mut cmd, cpu);
    }
    let _stats_guard = if stats {
        Some(procfs::BpfStats::enable()?)
    } else {
        None
    };
    let mut nw = Proc::spawn("netwatch", cmd)?;
    let ready_at = nw.stderr.as_mut().context("netwatch stderr")?.wait_for(
        |l| l.starts_with("netwatch: ready"),
        Duration::from_secs(60),
    )?;
    let Some((ready_at, _)) = ready_at else {
        bail!("netwatch did not get ready:{}", nw.output_tail());
    };
    let ready = ready_at.saturating_duration_since(nw.spawned_at);
    procs::sleep(Duration::from_millis(300))?;

    let ticks0 = cpu_ticks(nw.pid)?;
    let load = OtherLoad::start(&[nw.pid]);
    let t0 = Instant::now();
    let result = run_storm_process(cfg, kind, count);
    let storm_wall = t0.elapsed();
    let ticks1 = cpu_ticks(nw.pid)?;
    let other_cpu_pct = load.percent();
    let (storm, outcome, process_wall) = result?;
    let cpu_pct =
        (ticks1 - ticks0) as f64 / procfs::clock_ticks_per_second() / storm_wall.as_secs_f64()
            * 100.0;

    let drain = wait_output_settled(&out_path, Duration::from_secs(30))?;
    let vm_hwm_kib = status_kib(nw.pid, "VmHWM").ok();
    let progs = if stats {
        procfs::prog_stats(nw.pid)
    } else {
        Vec::new()
    };
    let (status, detach) = nw.stop(libc::SIGINT, Duration::from_secs(60))?;
    let status_ok = status.success();
    let mut status_text = status.to_string();
    if !status_ok {
        status_text.push_str(&nw.output_tail());
    }
    let parsed = parse_output(&out_path, kind, storm.pid)?;
    let _ = fs::remove_file(&out_path);
    Ok(StormRun {
        kind,
        round,
        outcome,
        process_wall,
        stats,
        foreign,
        other_cpu_pct,
        traced: Some(Traced {
            ring,
            ready,
            detach,
            status_ok,
            status: status_text,
            delivered: parsed.delivered,
            lost_total: parsed.lost_total,
            lost_kind: parsed.lost_kind,
            kernel_count: parsed.kernel_count,
            live_lost_reports: parsed.live_lost_reports,
            output_lines: parsed.lines,
            cpu_pct,
            drain,
            vm_hwm_kib,
            progs,
        }),
    })
}

/// Waits until the file has not grown for 300 ms; how long that took.
fn wait_output_settled(path: &Path, limit: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    let mut last = (fs::metadata(path)?.len(), Instant::now());
    loop {
        procs::sleep(Duration::from_millis(25))?;
        let len = fs::metadata(path)?.len();
        if len != last.0 {
            last = (len, Instant::now());
        } else if last.1.elapsed() >= Duration::from_millis(300) {
            return Ok(last.1.saturating_duration_since(t0));
        }
        if t0.elapsed() > limit {
            return Ok(t0.elapsed());
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub lines: u64,
    pub delivered: u64,
    pub lost_total: Option<u64>,
    pub lost_kind: Option<u64>,
    pub kernel_count: Option<u64>,
    pub live_lost_reports: u64,
}

fn parse_output(path: &Path, kind: Kind, pid: i32) -> Result<Parsed> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut p = Parsed::default();
    let mut r = BufReader::new(f);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        parse_line(&String::from_utf8_lossy(&buf), kind, pid, &mut p);
    }
    Ok(p)
}

/// The unsigned integer right after `key` in `s`.
fn number_after(s: &str, key: &str) -> Option<u64> {
    let rest = &s[s.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Tallies one NDJSON line. Event objects start with their `kind`; `summary` and
/// `summary_end` objects may not (their keys are sorted).
pub fn parse_line(line: &str, kind: Kind, pid: i32, p: &mut Parsed) {
    let (record, lost_key, errno_name, family) = netwatch_names(kind);
    p.lines += 1;
    let pid_field = format!("\"pid\":{pid},");
    if line.starts_with(&format!("{{\"kind\":\"{record}\","))
        && number_after(line, "\"pid\":") == Some(pid as u64)
        && number_after(line, "\"errno\":") == Some(kind.errno() as u64)
    {
        p.delivered += 1;
    } else if line.starts_with("{\"kind\":\"lost\",") {
        p.live_lost_reports += 1;
    } else if line.contains("\"kind\":\"summary_end\"") {
        p.lost_total = number_after(line, "\"lost\":");
        let by_kind = line
            .find("\"lost_by_kind\":{")
            .map(|i| &line[i..])
            .and_then(|s| s.split_once('}'))
            .map(|(s, _)| s);
        p.lost_kind = by_kind.map(|s| number_after(s, &format!("\"{lost_key}\":")).unwrap_or(0));
    } else if line.contains("\"kind\":\"summary\"") && line.contains(&pid_field) {
        p.kernel_count = number_after(line, &format!("\"{errno_name}\":{{\"{family}\":"));
    }
}

/// Start-up (exec to the `netwatch: ready` line) and detach (SIGINT to exit) times.
pub struct StartStop {
    pub ready: Duration,
    pub detach: Duration,
    pub status_ok: bool,
}

pub fn start_stop(cfg: &Config, i: usize) -> Result<StartStop> {
    procfs::wait_for_quiet(cfg.quiet_wait)?;
    let out = cfg.dir.join(format!("netwatch-startup-{i}.out"));
    let mut cmd = Command::new(&cfg.netwatch);
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out)?)
        .stderr(Stdio::piped());
    let mut nw = Proc::spawn("netwatch", cmd)?;
    let hit = nw.stderr.as_mut().context("netwatch stderr")?.wait_for(
        |l| l.starts_with("netwatch: ready"),
        Duration::from_secs(60),
    )?;
    let Some((at, _)) = hit else {
        bail!("netwatch did not get ready:{}", nw.output_tail());
    };
    let ready = at.saturating_duration_since(nw.spawned_at);
    procs::sleep(Duration::from_millis(300))?;
    let (status, detach) = nw.stop(libc::SIGINT, Duration::from_secs(60))?;
    let _ = fs::remove_file(&out);
    Ok(StartStop {
        ready,
        detach,
        status_ok: status.success(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_is_tallied() {
        let lines = [
            r#"{"kind":"bind","time":"t","ts_ns":1,"pid":42,"tid":42,"comm":"xtask","syscall":"bind","errno":98,"error":"EADDRINUSE","fd":4,"addr":{"family":"inet","ip":"127.0.0.1","port":1}}"#,
            r#"{"kind":"bind","time":"t","ts_ns":1,"pid":421,"tid":421,"comm":"x","syscall":"bind","errno":98,"error":"EADDRINUSE","fd":4}"#,
            r#"{"kind":"diagnosis","diagnosis":"port_held","pid":42,"holders":[{"pid":42}],"port":1}"#,
            r#"{"kind":"lost","time":"t","ts_ns":1,"count":5,"total":5}"#,
            r#"{"comm":"xtask","counts":{"EADDRINUSE":{"bind":1000}},"errors":1000,"kind":"summary","pid":42,"resets":{}}"#,
            r#"{"kernel_map_entries":{"proc_counts":0},"kind":"summary_end","lossy":true,"lost":7,"lost_by_kind":{"bind":5,"sockio":2},"processes":1}"#,
        ];
        let mut p = Parsed::default();
        for l in lines {
            parse_line(l, Kind::Bind, 42, &mut p);
        }
        assert_eq!(
            p,
            Parsed {
                lines: 6,
                delivered: 1,
                lost_total: Some(7),
                lost_kind: Some(5),
                kernel_count: Some(1000),
                live_lost_reports: 1,
            }
        );
        let mut p = Parsed::default();
        parse_line(lines[5], Kind::Connect, 42, &mut p);
        assert_eq!(p.lost_kind, Some(0));
        parse_line(lines[5], Kind::Write, 42, &mut p);
        assert_eq!(p.lost_kind, Some(2));
    }
}
