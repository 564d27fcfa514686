//! NDJSON: one object per line, every field named. Schema: docs/JSON.md.

use std::{
    borrow::Cow,
    io::{self, Write},
    net::IpAddr,
};

use serde::Serialize;

use super::{RunStats, line::Line};
use crate::{
    cgroup::Place,
    clock::{self, Clock, Stamps},
    diagnose::{Diagnosis, FdUsage, Process, What},
    errno,
    event::process::ExitStatus,
    event::{Addr, Body, Event, signal, sock::Sock},
};

#[cfg(test)]
pub(super) mod reference;
#[cfg(test)]
mod tests;

#[derive(Serialize)]
pub struct JsonAddr {
    family: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

impl From<&Addr> for JsonAddr {
    fn from(a: &Addr) -> Self {
        let (ip, port) = match a {
            Addr::Inet(sa) => (Some(sa.ip().to_string()), Some(sa.port())),
            _ => (None, None),
        };
        Self {
            family: a.family(),
            ip,
            port,
        }
    }
}

fn ndjson(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// One event as a JSON line, written by hand (the stream's hot path): the bytes
/// serde_json wrote for the objects in `reference.rs`, which the tests hold it to.
pub fn event(line: &mut Line, stamps: &mut Stamps, ev: &Event, place: Option<&Place>) {
    line.raw("{\"kind\":");
    line.json(ev.kind_name());
    line.raw(",\"time\":\"");
    stamps.write_rfc3339(ev.ktime_ns, line.bytes());
    line.raw("\",\"ts_ns\":");
    line.int(ev.ktime_ns);
    // null when unknown (a reset on a socket no process was seen using).
    if !ev.owner_known() {
        line.raw(",\"pid\":null,\"tid\":null,\"comm\":null");
    } else {
        line.key("pid");
        line.int(ev.pid);
        line.key("tid");
        line.int(ev.tid);
        line.key("comm");
        line.json(ev.comm.escaped().as_str());
    }
    if ev.cgroup_id != 0 {
        cgroup(line, ev.cgroup_id, place);
    }
    match &ev.body {
        Body::Bind(b) => {
            syscall(line, "bind", b.errno);
            line.key("fd");
            line.int(b.fd);
            line.key("addr");
            addr(line, &b.addr);
        }
        Body::Connect(c) => {
            syscall(line, "connect", c.errno);
            if let Some(fd) = c.fd {
                line.key("fd");
                line.int(fd);
            }
            line.key("addr");
            addr(line, &c.addr);
            sock(line, &c.sock);
            line.key("after_einprogress");
            line.bool(c.is_async());
        }
        Body::SockIo(io) => {
            syscall(line, io.syscall.name(), io.errno);
            line.key("fd");
            line.int(io.fd);
            sock(line, &io.sock);
        }
        Body::Listen(l) => {
            syscall(line, l.syscall.name(), l.errno);
            line.key("fd");
            line.int(l.fd);
            sock(line, &l.sock);
        }
        Body::Reset(r) => {
            line.key("direction");
            line.json(r.direction.name());
            line.key("local");
            addr(line, &r.local);
            line.key("remote");
            addr(line, &r.remote);
            line.key("state");
            match r.state {
                Some(state) => line.json(&state.name()),
                None => line.raw("null"),
            }
            line.key("reason");
            match r.reason_name() {
                Some(reason) => line.json(&reason),
                None => line.raw("null"),
            }
            line.key("owner_known");
            line.bool(r.owner_known);
        }
        Body::Signal(s) => {
            line.key("signal");
            line.json(&signal::name(s.sig));
            line.key("signo");
            line.int(s.sig);
            line.key("target_tid");
            line.int(s.target_tid);
            line.key("target_comm");
            line.json(s.target_comm.escaped().as_str());
            line.key("fate");
            line.json(s.fate.name());
        }
        Body::Exit(e) => {
            line.key("status");
            line.json_fmt(format_args!("{}", e.status));
            let (exit_code, killed) = (e.status.code(), e.status.signal());
            let (sig, core) = (killed.map(|(s, _)| s), killed.is_some_and(|(_, c)| c));
            line.key("exit_code");
            match exit_code {
                Some(c) => line.int(c),
                None => line.raw("null"),
            }
            line.key("signal");
            match sig {
                Some(s) => line.json(&signal::name(s)),
                None => line.raw("null"),
            }
            line.key("core_dumped");
            line.bool(core);
        }
        Body::Fork(f) => {
            line.key("child_pid");
            line.int(f.child_pid);
        }
        Body::Exec(x) => {
            line.key("old_tid");
            line.int(x.old_tid);
            line.key("exe");
            match &x.command {
                Some(c) => line.json(&c.exe),
                None => line.raw("null"),
            }
            line.key("argv");
            match &x.command {
                Some(c) => {
                    line.raw("[");
                    for (i, arg) in c.argv.iter().enumerate() {
                        if i > 0 {
                            line.raw(",");
                        }
                        line.json(arg);
                    }
                    line.raw("]");
                }
                None => line.raw("null"),
            }
        }
    }
    line.raw("}\n");
}

/// Where the process runs: its cgroup v2 id, path (null when the id could not be
/// found in the hierarchy: the cgroup is gone), and the container or systemd unit the
/// path names.
fn cgroup(line: &mut Line, id: u64, place: Option<&Place>) {
    line.raw(",\"cgroup\":{\"id\":");
    line.int(id);
    line.key("path");
    match place {
        Some(p) => line.json(&p.path),
        None => line.raw("null"),
    }
    if let Some(container) = place.and_then(|p| p.container.as_deref()) {
        line.key("container");
        line.json(container);
    }
    if let Some(unit) = place.and_then(|p| p.unit.as_deref()) {
        line.key("unit");
        line.json(unit);
    }
    line.raw("}");
}

/// The fields every syscall event starts with.
fn syscall(line: &mut Line, name: &str, errno: i32) {
    line.key("syscall");
    line.json(name);
    line.key("errno");
    line.int(errno);
    line.key("error");
    line.json(&errno::label(errno));
}

/// An address object: the family, and the ip and port of an inet one.
fn addr(line: &mut Line, a: &Addr) {
    line.raw("{\"family\":");
    line.json(&a.family());
    if let Addr::Inet(sa) = a {
        line.raw(",\"ip\":\"");
        match sa.ip() {
            IpAddr::V4(ip) => line.ipv4(ip.octets()),
            IpAddr::V6(ip) => line.fmt(format_args!("{ip}")),
        }
        line.raw("\",\"port\":");
        line.int(sa.port());
    }
    line.raw("}");
}

/// `"sock"`: "tcp", "udp", "unix", ... with the endpoints, state and whether bind(2)
/// chose the local port; "none" for a pipe or file, "unknown" when unresolved.
fn sock(line: &mut Line, s: &Sock) {
    line.key("sock");
    match s {
        Sock::Socket(s) => {
            line.raw("{\"proto\":");
            line.json(&s.proto.name());
            line.key("local");
            addr(line, &s.local);
            line.key("remote");
            addr(line, &s.remote);
            line.key("state");
            line.json(&s.state.name());
            line.key("port_bound");
            line.bool(s.port_bound);
            line.raw("}");
        }
        Sock::NotASocket => line.raw("{\"proto\":\"none\"}"),
        Sock::Unknown => line.raw("{\"proto\":\"unknown\"}"),
    }
}

pub fn diagnosis(out: &mut impl Write, clock: &Clock, d: &Diagnosis) -> io::Result<()> {
    #[derive(Serialize)]
    struct Record {
        kind: &'static str,
        diagnosis: &'static str,
        time: String,
        ts_ns: u64,
        pid: u32,
        comm: String,
        message: String,
        #[serde(flatten)]
        details: serde_json::Map<String, serde_json::Value>,
    }
    ndjson(
        out,
        &Record {
            kind: "diagnosis",
            diagnosis: d.what.name(),
            time: clock::rfc3339(clock.wall_ns(d.ktime_ns)),
            ts_ns: d.ktime_ns,
            pid: d.pid,
            comm: d.comm.to_string(),
            message: d.what.message(),
            details: details(&d.what),
        },
    )
}

/// The structured facts behind a diagnosis's sentence.
fn details(w: &What) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let addr = |a: &Addr| serde_json::to_value(JsonAddr::from(a)).unwrap_or(Value::Null);
    let v = match w {
        What::ExitZeroAfterBindFailure {
            addr: a,
            errno,
            reason,
        } => {
            json!({"addr": addr(a), "errno": errno, "error": errno::label(*errno), "reason": reason})
        }
        What::PortHeld { port, holders } => json!({
            "port": port,
            "holders": holders.iter().map(|h| json!({
                "pid": h.pid,
                "comm": h.comm.to_string(),
                "state": h.state.name(),
                "exiting": h.exiting.is_some(),
                "exit_signal": h.exiting.map(|(s, _)| signal::name(s)),
                "signal_ms_before": h.exiting.map(|(_, ns)| ns as f64 / 1e6),
            })).collect::<Vec<_>>(),
        }),
        What::PortTimeWait { port, sockets } => json!({"port": port, "time_wait_sockets": sockets}),
        What::PortOrphaned {
            port,
            sockets,
            state,
        } => json!({"port": port, "sockets": sockets, "state": state.name()}),
        What::PortFreed { port } => json!({"port": port}),
        What::PortInUse { port, why } => json!({"port": port, "not_looked_up": why}),
        What::AddressNotLocal { addr: a } => json!({"addr": addr(a)}),
        What::EphemeralExhausted { dst, range } => json!({
            "dst": addr(dst),
            "port_range": range.map(|(lo, hi)| [lo, hi]),
        }),
        What::TupleCollision { src_port, dst } => json!({"src_port": src_port, "dst": addr(dst)}),
        What::ConnectionRefused { dst } => json!({"dst": addr(dst)}),
        What::KilledBySigpipe { after } => json!({
            "syscall": after.map(|(s, _)| s.name()),
            "peer": after.map(|(_, p)| addr(&p)),
        }),
        What::ResetByPeer {
            syscall,
            peer,
            rst_ago_ns,
        }
        | What::PeerGone {
            syscall,
            peer,
            rst_ago_ns,
        } => json!({
            "syscall": syscall.name(),
            "peer": addr(peer),
            "rst_ms_before": rst_ago_ns.map(|ns| ns as f64 / 1e6),
        }),
        What::PortReleased {
            port,
            holder,
            holder_comm,
            after_ns,
            race,
        } => json!({
            "port": port,
            "holder_pid": holder,
            "holder_comm": holder_comm.to_string(),
            "after_ms": *after_ns as f64 / 1e6,
            "restart_race": race,
        }),
        What::BindRefused {
            addr: a,
            errno,
            cause,
            port_start,
            creds,
            unread,
        } => json!({
            "addr": addr(a),
            "errno": errno,
            "error": errno::label(*errno),
            "cause": cause.name(),
            "unprivileged_port_start": port_start,
            "uid": creds.map(|c| c.uid),
            "cap_net_bind_service": creds.map(|c| c.cap_net_bind_service),
            "not_read": unread,
        }),
        What::FdsExhausted {
            syscall,
            errno,
            usage,
        } => {
            let (open, soft, hard, allocated, max) = match usage {
                Ok(FdUsage::Process { open, soft, hard }) => {
                    (Some(open), Some(soft), Some(hard), None, None)
                }
                Ok(FdUsage::System { allocated, max }) => {
                    (None, None, None, Some(allocated), Some(max))
                }
                Err(_) => (None, None, None, None, None),
            };
            json!({
                "syscall": syscall.name(),
                "errno": errno,
                "error": errno::label(*errno),
                "open": open,
                "rlimit_soft": soft,
                "rlimit_hard": hard,
                "system_allocated": allocated,
                "system_max": max,
                "not_read": usage.err(),
            })
        }
        What::ConnectTimedOut { dst, syn_retries } => json!({
            "dst": addr(dst),
            "syn_retries": syn_retries.ok(),
            "tried_s": syn_retries.ok().map(crate::diagnose::syn_seconds),
            "not_read": syn_retries.err(),
        }),
        What::Unreachable { dst, errno, route } => json!({
            "dst": addr(dst),
            "errno": errno,
            "error": errno::label(*errno),
            "route": route.ok(),
            "not_read": route.err(),
        }),
    };
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// One object per process (worst first), then one `summary_end` object.
pub fn summary(out: &mut impl Write, procs: &[&Process], stats: &RunStats) -> io::Result<()> {
    let lost = &stats.lost;
    use serde_json::{Value, json};
    for p in procs {
        let mut counts = serde_json::Map::new();
        for ((class, family), n) in &p.counts {
            let entry = counts.entry(class.label()).or_insert_with(|| json!({}));
            if let Value::Object(m) = entry {
                m.insert((*family).to_owned(), json!(n));
            }
        }
        let exit_code = p.exit.and_then(ExitStatus::code);
        let signal = p
            .exit
            .and_then(ExitStatus::signal)
            .map(|(s, _)| signal::name(s));
        ndjson(
            out,
            &json!({
                "kind": "summary",
                "pid": p.pid,
                "comm": p.comm.to_string(),
                "errors": p.total_errors(),
                "counts": counts,
                "resets": {"received": p.resets_received, "sent": p.resets_sent, "peers": p.reset_peers},
                "sigpipe": p.sigpipe,
                "exit": p.exit.map(|e| e.to_string()),
                "exit_code": exit_code,
                "exit_signal": signal,
                "flags": p.flags,
            }),
        )?;
    }
    let by_kind: serde_json::Map<String, Value> = lost
        .iter()
        .map(|(k, n)| (k.name().to_owned(), json!(n)))
        .collect();
    let total: u64 = lost.iter().map(|(_, n)| n).sum();
    let missed: serde_json::Map<String, Value> = stats
        .missed
        .iter()
        .map(|(name, n)| ((*name).to_owned(), json!(n)))
        .collect();
    ndjson(
        out,
        &json!({"kind": "summary_end", "processes": procs.len(), "lost": total, "lossy": total > 0 || !missed.is_empty(), "lost_by_kind": by_kind, "exits_recovered": stats.exits_recovered, "missed_runs": missed, "kernel_map_entries": {"proc_counts": stats.proc_counts_entries, "watched": stats.watched_entries}, "processes_left_out": stats.evicted}),
    )
}

pub fn lost(
    out: &mut impl Write,
    clock: &Clock,
    ktime_ns: u64,
    count: u64,
    total: u64,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Lost {
        kind: &'static str,
        time: String,
        ts_ns: u64,
        count: u64,
        total: u64,
    }
    ndjson(
        out,
        &Lost {
            kind: "lost",
            time: clock::rfc3339(clock.wall_ns(ktime_ns)),
            ts_ns: ktime_ns,
            count,
            total,
        },
    )
}
