//! bcc-style columns: an UPPERCASE header, one line per event, fits 80 columns for
//! IPv4.

use std::io::{self, Write};

use super::errno_label;
use crate::{
    clock::{self, Clock},
    event::{Body, Event},
};

pub fn header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<8} {:>7} {:>7} {:<16} {:<8} {:<13} DETAIL",
        "TIME", "PID", "TID", "COMM", "SYSCALL", "ERRNO"
    )
}

pub fn event(out: &mut impl Write, clock: &Clock, ev: &Event) -> io::Result<()> {
    let time = clock::hms(clock.wall_ns(ev.ktime_ns));
    let (syscall, errno, detail) = match &ev.body {
        Body::Bind(b) => ("bind", errno_label(b.errno), b.addr.to_string()),
    };
    writeln!(
        out,
        "{time:<8} {:>7} {:>7} {:<16} {syscall:<8} {errno:<13} {detail}",
        ev.pid,
        ev.tid,
        ev.comm.to_string()
    )
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
            pid: 1234,
            tid: 1235,
            comm: Comm::from_raw(b"python3\x1b[2J"),
            body: Body::Bind(Bind {
                errno: 98,
                fd: 3,
                addr: Addr::Inet((Ipv4Addr::LOCALHOST, 9000).into()),
            }),
        })
        .unwrap();
        let text = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("TIME     "), "{}", lines[0]);
        assert_eq!(
            lines[1],
            "01:02:03    1234    1235 python3\\x1b[2J   bind     EADDRINUSE    127.0.0.1:9000"
        );
        assert!(!text.contains('\x1b'));
        assert!(lines[1].len() <= 80);
    }
}
