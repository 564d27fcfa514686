//! Every rule, from event sequences, with the negative cases: the shared event
//! builders and fixtures here, the tests in a file per event source, as the
//! handlers are in `diagnose/`.

mod bind;
mod connect;
mod listen;
mod process;
mod sockio;

use std::net::{Ipv4Addr, SocketAddr};

use netwatch_common::Syscall;

use super::*;
use crate::event::{
    Body, Comm, Event,
    bind::Bind,
    connect::Connect,
    listen::Listen,
    process::{Exit, ExitStatus},
    sock::{Proto, Sock, Socket, TcpState},
    sockio::SockIo,
};

const MS: u64 = 1_000_000;

fn addr(port: u16) -> Addr {
    Addr::Inet(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

fn ev(t_ms: u64, pid: u32, comm: &str, body: Body) -> Event {
    Event {
        ktime_ns: t_ms * MS,
        cgroup_id: 0,
        pid,
        tid: pid,
        comm: Comm::from_raw(comm.as_bytes()),
        body,
    }
}

fn bind(errno: i32, port: u16) -> Body {
    Body::Bind(Bind {
        errno,
        fd: 3,
        addr: addr(port),
        sock_type: 1,
    })
}

fn listen() -> Body {
    Body::Listen(Listen {
        fd: 3,
        sock: Sock::Unknown,
        syscall: netwatch_common::Syscall::Listen,
        errno: 0,
    })
}

fn exit(status: ExitStatus) -> Body {
    Body::Exit(Exit { status })
}

fn socket(sk: u64, local: u16, remote: u16, port_bound: bool) -> Sock {
    Sock::Socket(Socket {
        sk,
        proto: Proto::Tcp,
        local: addr(local),
        remote: addr(remote),
        state: TcpState(1),
        port_bound,
    })
}

/// Feed events without context; collect every diagnosis.
fn run(c: &mut Classifier, events: &[Event]) -> Vec<Diagnosis> {
    events
        .iter()
        .flat_map(|e| c.feed(e, &Context::default()))
        .collect()
}

/// A new classifier fed `events` (time in ms, body) of one process: the classifier
/// and what it said.
fn one_process(pid: u32, comm: &str, events: &[(u64, Body)]) -> (Classifier, Vec<Diagnosis>) {
    let mut c = Classifier::new();
    let events: Vec<Event> = events
        .iter()
        .map(|(t, body)| ev(*t, pid, comm, body.clone()))
        .collect();
    let d = run(&mut c, &events);
    (c, d)
}

fn names(d: &[Diagnosis]) -> Vec<&'static str> {
    d.iter().map(|d| d.what.name()).collect()
}

fn flagged(d: &[Diagnosis]) -> Vec<u32> {
    d.iter()
        .filter(|d| d.what.kind() == Kind::ExitZeroAfterBindFailure)
        .map(|d| d.pid)
        .collect()
}

fn held(state: TcpState, owners: &[(u32, &str)]) -> HeldSocket {
    HeldSocket {
        state,
        local: addr(9000),
        owners: owners
            .iter()
            .map(|(p, c)| (*p, Comm::from_raw(c.as_bytes())))
            .collect(),
    }
}

fn with_holders(sockets: Vec<HeldSocket>) -> Holders {
    Holders::Sockets(sockets)
}

fn holding(holders: &Holders) -> Context<'_> {
    Context {
        holders: Some(holders),
        ..Context::default()
    }
}

fn connect(errno: i32, sock: Sock) -> Body {
    Body::Connect(Connect {
        errno,
        fd: Some(4),
        addr: addr(8080),
        sock,
    })
}

fn sockio(syscall: Syscall, errno: i32, sock: Sock) -> Body {
    Body::SockIo(SockIo {
        syscall,
        errno,
        fd: 5,
        sock,
    })
}
