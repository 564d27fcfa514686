//! bcc-style columns: an UPPERCASE header, one line per event, fits 80 columns for
//! IPv4.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use super::{RunStats, class_total, errno_label, place_tag};
use crate::{
    cgroup::Place,
    clock::{self, Clock},
    diagnose::{Class, Diagnosis, Process},
    event::{
        Addr, Body, Event,
        reset::Direction,
        signal,
        sock::{Proto, Sock},
    },
};

pub fn header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<8} {:>7} {:>7} {:<16} {:<10} {:<13} DETAIL",
        "TIME", "PID", "TID", "COMM", "SYSCALL", "ERRNO"
    )
}

pub fn event(
    out: &mut impl Write,
    clock: &Clock,
    ev: &Event,
    place: Option<&Place>,
) -> io::Result<()> {
    let time = clock::hms(clock.wall_ns(ev.ktime_ns));
    let (what, errno, mut detail) = describe(ev);
    if let Some(tag) = place_tag(place) {
        detail.push(' ');
        detail.push_str(&tag);
    }
    // Resets and asynchronous errors with no known owner: no pid rather than a wrong one.
    let (pid, tid, comm) = if ev.pid == 0 && !matches!(ev.body, Body::Exit(_)) {
        ("-".to_owned(), "-".to_owned(), "?".to_owned())
    } else {
        (ev.pid.to_string(), ev.tid.to_string(), ev.comm.to_string())
    };
    writeln!(
        out,
        "{time:<8} {pid:>7} {tid:>7} {comm:<16} {what:<10} {errno:<13} {detail}"
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
        Body::Bind(b) => ("bind", errno_label(b.errno), b.addr.to_string()),
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
            ("connect", errno_label(c.errno), detail)
        }
        Body::SockIo(io) => (
            io.syscall.name(),
            errno_label(io.errno),
            format!("fd {} {}", io.fd, endpoints(&io.sock)),
        ),
        Body::Listen(l) => (
            "listen",
            "OK".into(),
            format!("fd {} {}", l.fd, endpoints(&l.sock)),
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
        Body::Exec(_) => ("exec", "-".into(), String::new()),
    }
}

/// A diagnosis: `!` in the SYSCALL column, the explanation after it.
pub fn diagnosis(out: &mut impl Write, clock: &Clock, d: &Diagnosis) -> io::Result<()> {
    let time = clock::hms(clock.wall_ns(d.ktime_ns));
    writeln!(
        out,
        "{time:<8} {:>7} {:>7} {:<16} {:<10} {}",
        d.pid,
        "-",
        d.comm.to_string(),
        "!",
        d.what.message()
    )
}

pub fn summary(out: &mut impl Write, procs: &[&Process], stats: &RunStats) -> io::Result<()> {
    let lost: u64 = stats.lost.iter().map(|(_, n)| n).sum();
    writeln!(out)?;
    if procs.is_empty() {
        writeln!(out, "SUMMARY: no socket errors seen")?;
    } else {
        writeln!(
            out,
            "{:>7} {:<16} {:>5} {:>8} {:>5} {:>9} {:>5} {:>10} {:>7} {:<18} FLAGS",
            "PID",
            "COMM",
            "INUSE",
            "NOTAVAIL",
            "EPIPE",
            "CONNRESET",
            "OTHER",
            "RST IN/OUT",
            "SIGPIPE",
            "EXIT"
        )?;
        for p in procs {
            let n = |c: Class| class_total(p, |k| k == c);
            let other = class_total(p, |k| matches!(k, Class::Other(_)));
            let sigpipe: u64 = p.sigpipe.values().sum();
            let exit = p
                .exit
                .map_or_else(|| "running".to_owned(), |e| e.to_string());
            let flags: Vec<&str> = p.flags.iter().copied().collect();
            writeln!(
                out,
                "{:>7} {:<16} {:>5} {:>8} {:>5} {:>9} {:>5} {:>10} {:>7} {:<18} {}",
                p.pid,
                p.comm.to_string(),
                n(Class::AddrInUse),
                n(Class::AddrNotAvail),
                n(Class::Pipe),
                n(Class::ConnReset),
                other,
                format!("{}/{}", p.resets_received, p.resets_sent),
                sigpipe,
                exit,
                if flags.is_empty() {
                    "-".to_owned()
                } else {
                    flags.join(",")
                }
            )?;
        }
    }
    if lost > 0 {
        writeln!(
            out,
            "lossy: {lost} events were lost (ring buffer full); counts above miss them"
        )?;
    }
    Ok(())
}

pub fn lost(
    out: &mut impl Write,
    clock: &Clock,
    ktime_ns: u64,
    count: u64,
    total: u64,
) -> io::Result<()> {
    let time = clock::hms(clock.wall_ns(ktime_ns));
    writeln!(
        out,
        "{time:<8} lost {count} events (ring buffer full; {total} lost in all)"
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::{
        clock::Clock,
        event::{Addr, Body, Comm, Event, bind::Bind},
        output::{Format, Printer},
    };

    #[test]
    fn one_line_per_event_under_the_header() {
        let mut p = Printer::new(Vec::new(), Format::Text, Clock::with_offset(0));
        p.header().unwrap();
        p.event(&Event {
            ktime_ns: 3_723_000_000_000, // 01:02:03 after the epoch
            cgroup_id: 0,
            pid: 1234,
            tid: 1235,
            comm: Comm::from_raw(b"python3\x1b[2J"),
            body: Body::Bind(Bind {
                errno: 98,
                fd: 3,
                addr: Addr::Inet((Ipv4Addr::LOCALHOST, 9000).into()),
                sock_type: 1,
            }),
        })
        .unwrap();
        let text = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("TIME     "), "{}", lines[0]);
        assert_eq!(
            lines[1],
            "01:02:03    1234    1235 python3\\x1b[2J   bind       EADDRINUSE    127.0.0.1:9000"
        );
        assert!(!text.contains('\x1b'));
        assert!(lines[1].len() <= 82);
    }
}
