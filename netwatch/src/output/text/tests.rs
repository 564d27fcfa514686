use std::net::Ipv4Addr;

use crate::{
    cli::TimeFormat,
    clock::{Clock, TimeColumn},
    diagnose::{Diagnosis, What},
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
        "01:02:03.000    1234    1235 python3\\x1b[2J   bind       EADDRINUSE    127.0.0.1:9000"
    );
    assert!(!text.contains('\x1b'));
    assert!(lines[1].len() <= 90);
}

/// A name whose escapes run past the column is cut with a `+`, and the columns
/// after it stay where they are; listeners show where they listen.
#[test]
fn long_names_keep_the_columns_and_listeners_say_where() {
    let mut p = Printer::new(Vec::new(), Format::Text, Clock::with_offset(0));
    let mut ev = bind_failure();
    ev.comm = Comm::from_raw(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f");
    p.event(&ev).unwrap();
    p.event(&bind_failure()).unwrap();
    let text = String::from_utf8(p.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains(" \\x01\\x02\\x03+    bind "),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0].find(" bind "), lines[1].find(" bind "), "{text}");

    use netwatch_common::{AF_INET, SOCK_RESOLVED, SockAddr, SockInfo};
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&[0, 0, 0, 0]);
    let sock = crate::event::sock::Sock::from_wire(&SockInfo {
        sk: 1,
        local: SockAddr {
            addr,
            family: AF_INET,
            port: 8080,
        },
        remote: SockAddr::default(),
        family: AF_INET,
        sock_type: 1,
        protocol: 6,
        state: 10,
        userlocks: 0,
        flags: SOCK_RESOLVED,
        _pad: 0,
    });
    let mut p = Printer::new(Vec::new(), Format::Text, Clock::with_offset(0));
    let mut listen = bind_failure();
    listen.body = Body::Listen(crate::event::listen::Listen {
        fd: 3,
        sock,
        syscall: netwatch_common::Syscall::Listen,
        errno: 0,
    });
    p.event(&listen).unwrap();
    let text = String::from_utf8(p.into_inner()).unwrap();
    assert!(
        text.contains("fd 3 tcp listening on 0.0.0.0:8080"),
        "{text}"
    );
    assert!(!text.contains("->"), "{text}");
}

fn bind_failure() -> Event {
    Event {
        ktime_ns: 3_723_004_000_000,
        cgroup_id: 0,
        pid: 1234,
        tid: 1234,
        comm: Comm::from_raw(b"python3"),
        body: Body::Bind(Bind {
            errno: 99,
            fd: 3,
            addr: Addr::Inet((Ipv4Addr::new(203, 0, 113, 1), 80).into()),
            sock_type: 1,
        }),
    }
}

/// The header and a line under `-T format`, colour off.
fn with_time(format: TimeFormat) -> Vec<String> {
    let origin = 3_722_000_000_000;
    let column = TimeColumn::new(format, jiff::tz::TimeZone::UTC, origin);
    let mut p = Printer::new(Vec::new(), Format::Text, Clock::with_offset(0)).with_time(column);
    p.header().unwrap();
    p.event(&bind_failure()).unwrap();
    p.lost(origin, 3, 7).unwrap();
    let text = String::from_utf8(p.into_inner()).unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn time_formats_keep_the_columns_aligned() {
    let none = with_time(TimeFormat::None);
    assert_eq!(
        none[0],
        "    PID     TID COMM             SYSCALL    ERRNO         DETAIL"
    );
    assert_eq!(
        none[1],
        "   1234    1234 python3          bind       EADDRNOTAVAIL 203.0.113.1:80"
    );
    assert_eq!(none[2], "lost 3 events (ring buffer full; 7 lost in all)");
    for (format, heading, time) in [
        (TimeFormat::Utc, "TIME        ", "01:02:03.004"),
        (TimeFormat::Relative, "TIME(s)   ", "1.004     "),
        (
            TimeFormat::Iso,
            "TIME                         ",
            "1970-01-01T01:02:03.004+00:00",
        ),
    ] {
        let lines = with_time(format);
        assert_eq!(lines[0], format!("{heading} {}", none[0]), "{format:?}");
        assert_eq!(lines[1], format!("{time} {}", none[1]), "{format:?}");
    }
    assert_eq!(
        with_time(TimeFormat::Relative)[2],
        "0.000      lost 3 events (ring buffer full; 7 lost in all)"
    );
}

#[test]
fn colour_marks_the_errno_and_nothing_else_of_an_event() {
    let mut p = Printer::new(Vec::new(), Format::Text, Clock::with_offset(0)).with_color(true);
    p.header().unwrap();
    p.event(&bind_failure()).unwrap();
    let text = String::from_utf8(p.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines[0].contains('\x1b'), "{:?}", lines[0]);
    assert_eq!(
        lines[1],
        "01:02:03.004    1234    1234 python3          bind       \x1b[31mEADDRNOTAVAIL\x1b[0m 203.0.113.1:80"
    );
}

#[test]
fn diagnosis_lines_follow_the_time_format_and_the_colour() {
    let d = Diagnosis {
        ktime_ns: 3_723_004_000_000,
        pid: 1234,
        comm: Comm::from_raw(b"python3"),
        what: What::ConnectionRefused {
            dst: Addr::Inet((Ipv4Addr::LOCALHOST, 9).into()),
        },
    };
    let message = d.what.message();
    let line = |format, color| {
        let column = TimeColumn::new(format, jiff::tz::TimeZone::UTC, 0);
        let mut p = Printer::new(Vec::new(), Format::Text, Clock::with_offset(0))
            .with_time(column)
            .with_color(color);
        p.diagnosis(&d).unwrap();
        String::from_utf8(p.into_inner()).unwrap()
    };
    assert_eq!(
        line(TimeFormat::Utc, false),
        format!("01:02:03.004    1234       - python3          !          {message}\n")
    );
    assert_eq!(
        line(TimeFormat::None, true),
        format!("   1234       - python3          \x1b[33m!          {message}\x1b[0m\n")
    );
}
