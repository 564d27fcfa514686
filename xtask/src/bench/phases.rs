//! The three phases: the workload, capacity and start-up runs, in their order, each
//! printing a line per run.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

use super::Options;
use super::capacity::{self, Mode, StormRun};
use super::procfs;
use super::workload::{self, Nginx, Run, Tracer, Variant};
use crate::storm::Kind;

pub(super) fn run_workload(
    cfg: &workload::Config,
) -> Result<(Vec<Run>, Vec<workload::ProgramCost>)> {
    let nginx = Nginx::start(&cfg.dir, cfg.worker_cpu)?;
    println!(
        "bench: nginx on 127.0.0.1:{} (worker pid {}, CPUs {})",
        nginx.port,
        nginx.worker,
        procfs::cpus_allowed(nginx.worker)
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

pub(super) fn run_capacity(cfg: &capacity::Config, opts: &Options) -> Result<Vec<StormRun>> {
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

pub(super) fn run_startup(cfg: &capacity::Config, n: usize) -> Result<Vec<capacity::StartStop>> {
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

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
