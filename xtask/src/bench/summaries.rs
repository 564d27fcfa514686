//! Summaries of the runs (ratios, rates, the accounting of records) and the targets
//! checked against them.

use super::Results;
use super::capacity::StormRun;
use super::phases::ms;
use super::report::{Spread, grouped};
use super::workload::{self, Run, Tracer, Variant};
use crate::storm::Kind;

pub(super) fn workload_ratio(runs: &[Run], v: Variant, t: Tracer) -> Option<Spread> {
    Spread::of(&workload::ratios(runs, v, t))
}

/// Other processes' CPU load under which a run counts as clean.
pub(super) const CLEAN_OTHER_LOAD_PERCENT: f64 = 5.0;

/// Ratios over the triples whose three runs were all clean.
pub(super) fn clean_ratios(runs: &[Run], v: Variant, t: Tracer) -> Vec<f64> {
    workload::ratios_where(runs, v, t, |r| {
        r.other_cpu_pct < CLEAN_OTHER_LOAD_PERCENT && r.foreign.is_empty()
    })
}

pub(super) fn workload_rps(runs: &[Run], v: Variant, t: Tracer) -> Option<Spread> {
    let x: Vec<f64> = runs
        .iter()
        .filter(|r| r.variant == v && r.tracer == t)
        .map(|r| r.rps)
        .collect();
    Spread::of(&x)
}

/// The storms that enter the ratios: untraced ones, and traced ones at the default ring
/// buffer size without bpf stats.
pub(super) fn is_plain_traced(r: &StormRun) -> bool {
    r.traced.as_ref().is_some_and(|t| t.ring.is_none()) && !r.stats
}

/// Ratios of each plain traced storm's rate to the untraced storms around it.
pub(super) fn storm_ratios(runs: &[StormRun], kind: Kind, rate: fn(&StormRun) -> f64) -> Vec<f64> {
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

pub(super) fn storm_rates(runs: &[StormRun], kind: Kind, traced: bool) -> Option<Spread> {
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
pub(super) fn delivered_rate(r: &StormRun) -> Option<f64> {
    let t = r.traced.as_ref()?;
    let secs = r.outcome.wall_ns as f64 / 1e9 + t.drain.as_secs_f64();
    Some(t.delivered as f64 / secs)
}

/// All of netwatch's BPF time during a storm (stats runs only) over its failures.
pub(super) fn bpf_ns_per_failure(r: &StormRun) -> Option<f64> {
    let t = r.traced.as_ref().filter(|_| r.stats)?;
    let total: u64 = t.progs.iter().map(|p| p.run_time_ns).sum();
    (r.outcome.failures > 0).then(|| total as f64 / r.outcome.failures as f64)
}

/// produced = delivered + lost, for the storm's own record kind.
pub(super) fn accounting_exact(r: &StormRun) -> Option<bool> {
    let t = r.traced.as_ref()?;
    Some(t.lost_kind? + t.delivered == r.outcome.failures)
}

pub(super) struct Target {
    pub(super) name: String,
    pub(super) pass: bool,
    pub(super) detail: String,
}

pub(super) fn check_targets(out: &Results) -> Vec<Target> {
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
pub(super) fn peak_rss_kib(out: &Results) -> Option<u64> {
    out.capacity
        .iter()
        .filter_map(|r| r.traced.as_ref())
        .filter(|t| t.ring.is_none())
        .filter_map(|t| t.vm_hwm_kib)
        .max()
}
