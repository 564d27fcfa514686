//! The JSON of events as serde_json wrote it before the hand-written writer: the
//! reference the tests hold that writer to, byte for byte.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use serde::Serialize;

use super::{JsonAddr, ndjson};
use crate::{
    cgroup::Place,
    clock::{self, Clock},
    errno,
    event::{
        Addr, Body, Event, signal,
        sock::{Sock, TcpState},
    },
};

#[derive(Serialize)]
struct Record {
    kind: &'static str,
    time: String,
    ts_ns: u64,
    /// null when unknown (a reset on a socket no process was seen using).
    pid: Option<u32>,
    tid: Option<u32>,
    comm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<JsonCgroup>,
    #[serde(flatten)]
    body: JsonBody,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonBody {
    Syscall {
        syscall: &'static str,
        errno: i32,
        error: Cow<'static, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fd: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        addr: Option<JsonAddr>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sock: Option<JsonSock>,
        #[serde(skip_serializing_if = "Option::is_none")]
        after_einprogress: Option<bool>,
    },
    Reset {
        direction: &'static str,
        local: JsonAddr,
        remote: JsonAddr,
        state: Option<Cow<'static, str>>,
        reason: Option<Cow<'static, str>>,
        owner_known: bool,
    },
    Signal {
        signal: Cow<'static, str>,
        signo: i32,
        target_tid: i32,
        target_comm: String,
        fate: &'static str,
    },
    Exit {
        status: String,
        exit_code: Option<i32>,
        signal: Option<Cow<'static, str>>,
        core_dumped: bool,
    },
    Fork {
        child_pid: u32,
    },
    Exec {
        old_tid: u32,
        exe: Option<String>,
        argv: Option<Vec<String>>,
    },
}

#[derive(Serialize)]
pub struct JsonSock {
    /// "tcp", "udp", "unix", ...; "none" for a pipe or file, "unknown" when unresolved.
    proto: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<JsonAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<JsonAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<Cow<'static, str>>,
    /// bind(2) chose the local port before this call.
    #[serde(skip_serializing_if = "Option::is_none")]
    port_bound: Option<bool>,
}

impl From<&Sock> for JsonSock {
    fn from(s: &Sock) -> Self {
        match s {
            Sock::Socket(s) => Self {
                proto: s.proto.name(),
                local: Some((&s.local).into()),
                remote: Some((&s.remote).into()),
                state: Some(s.state.name()),
                port_bound: Some(s.port_bound),
            },
            Sock::NotASocket => Self {
                proto: "none".into(),
                local: None,
                remote: None,
                state: None,
                port_bound: None,
            },
            Sock::Unknown => Self {
                proto: "unknown".into(),
                local: None,
                remote: None,
                state: None,
                port_bound: None,
            },
        }
    }
}

fn body(ev: &Event) -> JsonBody {
    let syscall =
        |syscall, errno, fd, addr: Option<&Addr>, sock: Option<&Sock>, after| JsonBody::Syscall {
            syscall,
            errno,
            error: errno::label(errno),
            fd,
            addr: addr.map(Into::into),
            sock: sock.map(Into::into),
            after_einprogress: after,
        };
    match &ev.body {
        Body::Bind(b) => syscall("bind", b.errno, Some(b.fd), Some(&b.addr), None, None),
        Body::Connect(c) => syscall(
            "connect",
            c.errno,
            c.fd,
            Some(&c.addr),
            Some(&c.sock),
            Some(c.is_async()),
        ),
        Body::SockIo(io) => syscall(
            io.syscall.name(),
            io.errno,
            Some(io.fd),
            None,
            Some(&io.sock),
            None,
        ),
        Body::Listen(l) => syscall(
            l.syscall.name(),
            l.errno,
            Some(l.fd),
            None,
            Some(&l.sock),
            None,
        ),
        Body::Reset(r) => JsonBody::Reset {
            direction: r.direction.name(),
            local: (&r.local).into(),
            remote: (&r.remote).into(),
            state: r.state.map(TcpState::name),
            reason: r.reason_name(),
            owner_known: r.owner_known,
        },
        Body::Signal(s) => JsonBody::Signal {
            signal: signal::name(s.sig),
            signo: s.sig,
            target_tid: s.target_tid,
            target_comm: s.target_comm.to_string(),
            fate: s.fate.name(),
        },
        Body::Exit(e) => {
            let killed = e.status.signal();
            let (exit_code, sig) = (e.status.code(), killed.map(|(s, _)| signal::name(s)));
            let core = killed.is_some_and(|(_, c)| c);
            JsonBody::Exit {
                status: e.status.to_string(),
                exit_code,
                signal: sig,
                core_dumped: core,
            }
        }
        Body::Fork(f) => JsonBody::Fork {
            child_pid: f.child_pid,
        },
        Body::Exec(x) => JsonBody::Exec {
            old_tid: x.old_tid,
            exe: x.command.as_ref().map(|c| c.exe.clone()),
            argv: x.command.as_ref().map(|c| c.argv.clone()),
        },
    }
}

pub fn event(
    out: &mut impl Write,
    clock: &Clock,
    ev: &Event,
    place: Option<&Place>,
) -> io::Result<()> {
    let unknown = !ev.owner_known();
    let cgroup = (ev.cgroup_id != 0).then(|| JsonCgroup {
        id: ev.cgroup_id,
        path: place.map(|p| p.path.clone()),
        container: place.and_then(|p| p.container.clone()),
        unit: place.and_then(|p| p.unit.clone()),
    });
    ndjson(
        out,
        &Record {
            kind: ev.kind_name(),
            time: clock::rfc3339(clock.wall_ns(ev.ktime_ns)),
            ts_ns: ev.ktime_ns,
            pid: (!unknown).then_some(ev.pid),
            tid: (!unknown).then_some(ev.tid),
            comm: (!unknown).then(|| ev.comm.to_string()),
            cgroup,
            body: body(ev),
        },
    )
}

/// Where the process runs: its cgroup v2 id, path, and the container or systemd unit
/// the path names.
#[derive(Serialize)]
struct JsonCgroup {
    id: u64,
    /// null when the id could not be found in the hierarchy (the cgroup is gone).
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
}
