//! bcc-style columns: an UPPERCASE header, one line per event (an IPv4 bind takes at
//! most 92 columns). TIME is as `-T` says (`HH:MM:SS.mmm` local time by default), or
//! absent.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use super::{RunStats, class_total, color, line::Line};
use crate::{
    cgroup::Place,
    clock::{Stamps, TimeColumn},
    diagnose::{Class, Diagnosis, Process},
    errno,
    event::{
        Addr, Body, COMM_COLUMN, Event,
        reset::Direction,
        signal,
        sock::{Proto, Sock},
    },
};

#[cfg(test)]
pub(super) mod reference;

pub fn header(out: &mut impl Write, column: &TimeColumn) -> io::Result<()> {
    if let Some(heading) = column.heading() {
        write!(out, "{heading:<0$} ", column.width())?;
    }
    writeln!(
        out,
        "{:>7} {:>7} {:<16} {:<10} {:<13} DETAIL",
        "PID", "TID", "COMM", "SYSCALL", "ERRNO"
    )
}

/// The TIME column of `ktime_ns` and the space after it; nothing with `-T none`.
fn time(line: &mut Line, stamps: &mut Stamps, ktime_ns: u64) {
    if stamps.column().heading().is_none() {
        return;
    }
    let start = line.as_bytes().len();
    stamps.write_time(ktime_ns, line.bytes());
    // ASCII: bytes are columns.
    let written = line.as_bytes().len() - start;
    line.spaces(stamps.column().width().saturating_sub(written));
    line.raw(" ");
}

/// The TIME column of a line that is not an event's, as [`time`] writes it.
fn time_text(stamps: &mut Stamps, ktime_ns: u64) -> String {
    let mut line = Line::new();
    time(&mut line, stamps, ktime_ns);
    String::from_utf8_lossy(line.as_bytes()).into_owned()
}

/// One event as a line of columns, written by hand (the stream's hot path): the bytes
/// `reference.rs` formats, which the tests hold it to. `color`: the errno name of a
/// failed call in colour.
pub fn event(line: &mut Line, stamps: &mut Stamps, color: bool, ev: &Event, place: Option<&Place>) {
    time(line, stamps, ev.ktime_ns);
    // Resets and asynchronous errors with no known owner: no pid rather than a wrong one.
    if !ev.owner_known() {
        line.raw("      -       - ?               ");
    } else {
        line.right(itoa::Buffer::new().format(ev.pid), 7);
        line.raw(" ");
        line.right(itoa::Buffer::new().format(ev.tid), 7);
        line.raw(" ");
        line.left(&ev.comm.escaped().column(), COMM_COLUMN);
    }
    line.raw(" ");
    let (what, errno) = columns(ev);
    line.left(what, 10);
    line.raw(" ");
    if color && errno_named(ev) {
        line.raw(color::ERRNO);
        line.raw(&errno);
        line.raw(color::RESET);
        line.spaces(13usize.saturating_sub(errno.chars().count()));
    } else {
        line.left(&errno, 13);
    }
    line.raw(" ");
    detail(line, ev);
    if let Some(p) = place {
        place_tag(line, p);
    }
    line.raw("\n");
}

/// The SYSCALL and ERRNO columns.
fn columns(ev: &Event) -> (&'static str, Cow<'static, str>) {
    match &ev.body {
        Body::Bind(b) => ("bind", errno::label(b.errno)),
        Body::Connect(c) => ("connect", errno::label(c.errno)),
        Body::SockIo(io) => (io.syscall.name(), errno::label(io.errno)),
        Body::Listen(l) => (l.syscall.name(), errno::label(l.errno)),
        Body::Reset(_) => ("tcp-rst", "-".into()),
        Body::Signal(s) => ("signal", signal::name(s.sig)),
        Body::Exit(_) => ("exit", "-".into()),
        Body::Fork(_) => ("fork", "-".into()),
        Body::Exec(_) => ("exec", "-".into()),
    }
}

/// Whether ERRNO holds the errno of a failed call (what `--color` colours), not `OK`,
/// a signal's name or `-`.
pub(super) fn errno_named(ev: &Event) -> bool {
    match &ev.body {
        Body::Bind(b) => b.errno != 0,
        Body::Connect(c) => c.errno != 0,
        Body::SockIo(io) => io.errno != 0,
        Body::Listen(l) => l.errno != 0,
        _ => false,
    }
}

/// The DETAIL column.
fn detail(line: &mut Line, ev: &Event) {
    match &ev.body {
        Body::Bind(b) => line.addr(&b.addr),
        Body::Connect(c) => {
            match c.sock.socket() {
                Some(s) if s.local.port() != Some(0) && s.local != Addr::Unknown => {
                    line.addr(&s.local);
                    line.raw(" -> ");
                }
                _ => line.raw("-> "),
            }
            line.addr(&c.addr);
            if c.sock.socket().is_some_and(|s| s.port_bound) {
                line.raw(" (source port bound)");
            }
            if c.is_async() {
                line.raw(" (after EINPROGRESS)");
            }
        }
        Body::SockIo(io) => fd_endpoints(line, io.fd, &io.sock),
        // socket(2) has no descriptor yet: nothing to say beyond its errno.
        Body::Listen(l) if l.syscall == netwatch_common::Syscall::Socket => {}
        Body::Listen(l) => match &l.sock {
            // A listener has no peer: where it listens.
            Sock::Socket(s) if s.proto != Proto::Unix => {
                line.raw("fd ");
                line.int(l.fd);
                line.raw(" ");
                line.raw(&s.proto.name());
                line.raw(" listening on ");
                line.addr(&s.local);
            }
            sock => fd_endpoints(line, l.fd, sock),
        },
        Body::Reset(r) => {
            let (dir, arrow) = match r.direction {
                Direction::Received => ("received ", " <- "),
                Direction::Sent => ("sent ", " -> "),
            };
            line.raw(dir);
            line.addr(&r.local);
            line.raw(arrow);
            line.addr(&r.remote);
            if let Some(state) = r.state {
                line.raw(" ");
                line.raw(&state.name());
            }
            if let Some(reason) = r.reason_name() {
                line.raw(" reason ");
                line.raw(&reason);
            }
        }
        Body::Signal(s) => line.raw(s.fate.name()),
        Body::Exit(e) => line.fmt(format_args!("{}", e.status)),
        Body::Fork(f) => {
            line.raw("child ");
            line.int(f.child_pid);
        }
        Body::Exec(x) => line.raw(&super::exec_detail(x)),
    }
}

/// `fd N` and the socket the event happened on: `local -> remote` with the protocol.
fn fd_endpoints(line: &mut Line, fd: i32, sock: &Sock) {
    line.raw("fd ");
    line.int(fd);
    match sock {
        Sock::Socket(s) if s.proto == Proto::Unix => line.raw(" unix socket"),
        Sock::Socket(s) => {
            line.raw(" ");
            line.raw(&s.proto.name());
            line.raw(" ");
            line.addr(&s.local);
            line.raw(" -> ");
            line.addr(&s.remote);
        }
        Sock::NotASocket => line.raw(" not a socket (pipe or file)"),
        Sock::Unknown => line.raw(" socket ?"),
    }
}

/// Where a process runs, appended to DETAIL: its container, its systemd unit, or its
/// cgroup when that is not the root.
fn place_tag(line: &mut Line, p: &Place) {
    if let Some(id) = &p.container {
        line.raw(" [container ");
        line.raw(id.get(..12).unwrap_or(id));
        line.raw("]");
    } else if let Some(unit) = &p.unit {
        line.raw(" [unit ");
        line.raw(unit);
        line.raw("]");
    } else if p.path != "/" {
        line.raw(" [cgroup ");
        line.raw(&p.path);
        line.raw("]");
    }
}

/// A diagnosis: `!` in the SYSCALL column, the explanation after it (in colour with
/// `color`, from the `!` on).
pub fn diagnosis(
    out: &mut impl Write,
    stamps: &mut Stamps,
    color: bool,
    d: &Diagnosis,
) -> io::Result<()> {
    let time = time_text(stamps, d.ktime_ns);
    let (start, end) = if color {
        (color::DIAGNOSIS, color::RESET)
    } else {
        ("", "")
    };
    writeln!(
        out,
        "{time}{:>7} {:>7} {:<16} {start}{:<10} {}{end}",
        d.pid,
        "-",
        d.comm.escaped().column(),
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
            let flags: Vec<&str> = p.flags.iter().map(|k| k.name()).collect();
            writeln!(
                out,
                "{:>7} {:<16} {:>5} {:>8} {:>5} {:>9} {:>5} {:>10} {:>7} {:<18} {}",
                p.pid,
                p.comm.escaped().column(),
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
        losses(out, stats, lost)?;
    }
    if !stats.missed.is_empty() {
        let missed: u64 = stats.missed.iter().map(|(_, n)| n).sum();
        let programs: Vec<String> = stats
            .missed
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        writeln!(
            out,
            "lossy: the kernel skipped {missed} runs of netwatch's programs ({}) while another BPF program ran on the same CPU; failures in them are not counted",
            programs.join(", ")
        )?;
    }
    Ok(())
}

/// What the lost records take from the summary, and what they do not.
fn losses(out: &mut impl Write, stats: &RunStats, lost: u64) -> io::Result<()> {
    use netwatch_common::EventKind as K;
    let of = |kinds: &[K]| -> u64 {
        stats
            .lost
            .iter()
            .filter(|(k, _)| kinds.contains(k))
            .map(|(_, n)| n)
            .sum()
    };
    let by_kind: Vec<String> = stats
        .lost
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    writeln!(
        out,
        "lossy: {lost} records were lost (ring buffer full: {})",
        by_kind.join(", ")
    )?;
    let mut exact = vec!["the error counts (the kernel counts failures whose records it lost)"];
    let mut incomplete = Vec::new();
    if stats.so_far {
        exact[0] = "the error counts of the processes that exited (the kernel counts failures whose records it lost)";
        incomplete.push(
            "the error counts of running processes (their lost failures are added when they exit, and at the end)",
        );
    }
    if of(&[K::Bind, K::Connect, K::SockIo]) > 0 {
        incomplete.push("the diagnoses of the lost failures");
    }
    let exits = of(&[K::Exit]);
    if exits > 0 && stats.exits_recovered >= exits {
        exact.push("EXIT (the kernel kept the lost exit records)");
    } else if exits > 0 {
        incomplete.push("EXIT of some processes");
    }
    if of(&[K::Signal]) > 0 {
        incomplete.push("SIGPIPE");
    }
    if of(&[K::Reset]) > 0 {
        incomplete.push("RST IN/OUT");
    }
    if of(&[K::Listen]) > 0 {
        incomplete.push("recoveries by a later listen (FLAGS)");
    }
    if of(&[K::Fork, K::Exec]) > 0 {
        incomplete.push("forks and execs (children and new names)");
    }
    writeln!(out, "  exact: {}", exact.join("; "))?;
    if !incomplete.is_empty() {
        writeln!(out, "  incomplete: {}", incomplete.join("; "))?;
    }
    Ok(())
}

pub fn lost(
    out: &mut impl Write,
    stamps: &mut Stamps,
    ktime_ns: u64,
    count: u64,
    total: u64,
) -> io::Result<()> {
    let time = time_text(stamps, ktime_ns);
    writeln!(
        out,
        "{time}lost {count} events (ring buffer full; {total} lost in all)"
    )
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod loss_tests;
