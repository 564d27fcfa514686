//! Output: the results as JSON (target/bench/results.json).

use std::time::Duration;

use super::Report;
use super::capacity::StormRun;
use super::phases::ms;
use super::procfs;
use super::report::{J, Spread, spread_json};
use super::summaries::{
    accounting_exact, bpf_ns_per_failure, clean_ratios, delivered_rate, peak_rss_kib, storm_rates,
    storm_ratios, workload_ratio, workload_rps,
};
use super::workload::{self, Tracer, Variant};
use crate::storm::Kind;

fn dur_json(d: Option<Duration>) -> J {
    J::opt_num(d.map(ms))
}

/// netwatch's programs and their run statistics.
fn programs_json(progs: &[procfs::ProgStat]) -> J {
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

pub(super) fn to_json(r: &Report) -> J {
    let Report {
        out,
        targets,
        machine: m,
        placement,
        opts,
        elapsed,
    } = *r;
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
