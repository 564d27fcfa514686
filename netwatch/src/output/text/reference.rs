//! The text of events as `format!` wrote it before the hand-written writer: the
//! reference the tests hold that writer to, byte for byte.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use crate::{
    cgroup::Place,
    clock::{Clock, TimeColumn},
    errno,
    event::{
        Addr, Body, Event,
        reset::Direction,
        signal,
        sock::{Proto, Sock},
    },
};

pub fn event(
    out: &mut impl Write,
    clock: &Clock,
    column: &TimeColumn,
    color: bool,
    ev: &Event,
    place: Option<&Place>,
) -> io::Result<()> {
    // The TIME column and its space, or nothing (-T none).
    let time = column
        .spell(clock, ev.ktime_ns)
        .map_or_else(String::new, |t| format!("{t:<0$} ", column.width()));
    let (what, errno, mut detail) = describe(ev);
    let errno = if color && super::errno_named(ev) {
        let pad = " ".repeat(13usize.saturating_sub(errno.len()));
        format!("\x1b[31m{errno}\x1b[0m{pad}")
    } else {
        format!("{errno:<13}")
    };
    if let Some(tag) = place_tag(place) {
        detail.push(' ');
        detail.push_str(&tag);
    }
    // Resets and asynchronous errors with no known owner: no pid rather than a wrong one.
    let (pid, tid, comm) = if !ev.owner_known() {
        ("-".to_owned(), "-".to_owned(), "?".to_owned())
    } else {
        let comm = ev.comm.escaped().column().into_owned();
        (ev.pid.to_string(), ev.tid.to_string(), comm)
    };
    writeln!(
        out,
        "{time}{pid:>7} {tid:>7} {comm:<16} {what:<10} {errno} {detail}"
    )
}

/// `local -> remote` with the protocol, for a socket the event happened on.
fn endpoints(sock: &Sock) -> String {
    match sock {
        Sock::Socket(s) if s.proto == Proto::Unix => "unix socket".into(),
        Sock::Socket(s) => format!("{} {} -> {}", s.proto.name(), s.local, s.remote),
        Sock::NotASocket => "not a socket (pipe or file)".into(),
        Sock::Unknown => "socket ?".into(),
    }
}

/// The SYSCALL, ERRNO and DETAIL columns.
pub fn describe(ev: &Event) -> (&'static str, Cow<'static, str>, String) {
    match &ev.body {
        Body::Bind(b) => ("bind", errno::label(b.errno), b.addr.to_string()),
        Body::Connect(c) => {
            let mut detail = match c.sock.socket() {
                Some(s) if s.local.port() != Some(0) && s.local != Addr::Unknown => {
                    format!("{} -> {}", s.local, c.addr)
                }
                _ => format!("-> {}", c.addr),
            };
            if c.sock.socket().is_some_and(|s| s.port_bound) {
                detail.push_str(" (source port bound)");
            }
            if c.is_async() {
                detail.push_str(" (after EINPROGRESS)");
            }
            ("connect", errno::label(c.errno), detail)
        }
        Body::SockIo(io) => (
            io.syscall.name(),
            errno::label(io.errno),
            format!("fd {} {}", io.fd, endpoints(&io.sock)),
        ),
        Body::Listen(l) => (
            l.syscall.name(),
            errno::label(l.errno),
            match &l.sock {
                _ if l.syscall == netwatch_common::Syscall::Socket => String::new(),
                Sock::Socket(s) if s.proto != Proto::Unix => {
                    format!("fd {} {} listening on {}", l.fd, s.proto.name(), s.local)
                }
                sock => format!("fd {} {}", l.fd, endpoints(sock)),
            },
        ),
        Body::Reset(r) => {
            let (dir, arrow) = match r.direction {
                Direction::Received => ("received", "<-"),
                Direction::Sent => ("sent", "->"),
            };
            let mut detail = format!("{dir} {} {arrow} {}", r.local, r.remote);
            if let Some(state) = r.state {
                detail.push_str(&format!(" {}", state.name()));
            }
            if let Some(reason) = r.reason_name() {
                detail.push_str(&format!(" reason {reason}"));
            }
            ("tcp-rst", "-".into(), detail)
        }
        Body::Signal(s) => ("signal", signal::name(s.sig), s.fate.name().into()),
        Body::Exit(e) => ("exit", "-".into(), e.status.to_string()),
        Body::Fork(f) => ("fork", "-".into(), format!("child {}", f.child_pid)),
        Body::Exec(x) => ("exec", "-".into(), super::super::exec_detail(x)),
    }
}

/// The short tag text output appends for where a process runs: its container, its
/// systemd unit, or its cgroup when that is not the root.
pub fn place_tag(place: Option<&Place>) -> Option<String> {
    let p = place?;
    if let Some(id) = &p.container {
        return Some(format!("[container {}]", &id[..12.min(id.len())]));
    }
    if let Some(unit) = &p.unit {
        return Some(format!("[unit {unit}]"));
    }
    (p.path != "/").then(|| format!("[cgroup {}]", p.path))
}
