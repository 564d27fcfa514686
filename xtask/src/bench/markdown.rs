//! Output: the results as markdown (target/bench/results.md).

use std::fmt::Write as _;
use std::time::Duration;

use super::Report;
use super::capacity::StormRun;
use super::phases::ms;
use super::report::{Spread, fmt_spread, grouped};
use super::summaries::{
    CLEAN_OTHER_LOAD_PERCENT, accounting_exact, bpf_ns_per_failure, clean_ratios, delivered_rate,
    is_plain_traced, storm_rates, storm_ratios, workload_ratio, workload_rps,
};
use super::workload::{self, Run, Tracer, Variant};
use crate::storm::Kind;

fn kib_mib(k: Option<u64>) -> String {
    k.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

pub(super) fn markdown(r: &Report) -> String {
    let Report {
        out,
        targets,
        machine: m,
        placement,
        opts,
        elapsed,
    } = *r;
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
