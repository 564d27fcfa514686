//! The hand-written event writers against the reference implementations (serde_json,
//! `format!`) they replaced: the same bytes for every kind of event, with hostile
//! names, every address family, known and unknown names and numbers.

use std::net::{Ipv4Addr, Ipv6Addr};

use netwatch_common::Syscall;

use super::{json, line::Line, text};
use crate::{
    cgroup::{self, Place},
    cli::TimeFormat,
    clock::{Clock, Stamps, TimeColumn},
    event::{
        Addr, Body, Comm, Event,
        bind::Bind,
        connect::Connect,
        listen::Listen,
        process::{Exec, Exit, ExitStatus, Fork},
        reset::{Direction, Reset},
        signal::{Fate, Signal},
        sock::{Proto, Sock, Socket, TcpState},
        sockio::SockIo,
    },
};

const COMMS: [&[u8]; 6] = [
    b"python3",
    b"",
    b"a\"b\\c\n\x1b[31m\xff",
    b"\x7f \t\x01\x1f\"\\/",
    &[0xff; 16],
    b"sixteen_bytes_xx",
];

fn addrs() -> Vec<Addr> {
    vec![
        Addr::Inet((Ipv4Addr::LOCALHOST, 9000).into()),
        Addr::Inet((Ipv4Addr::UNSPECIFIED, 0).into()),
        Addr::Inet((Ipv4Addr::new(203, 0, 113, 255), 65535).into()),
        Addr::Inet((Ipv6Addr::LOCALHOST, 443).into()),
        Addr::Inet(
            (
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0xff00, 0x42, 0x8329),
                1,
            )
                .into(),
        ),
        Addr::Inet((Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped(), 80).into()),
        Addr::Unix,
        Addr::Other { family: 17 },
        Addr::Unknown,
    ]
}

fn socks() -> Vec<Sock> {
    let mut socks = vec![Sock::NotASocket, Sock::Unknown];
    let protos = [
        Proto::Tcp,
        Proto::Udp,
        Proto::Unix,
        Proto::Other {
            family: 2,
            sock_type: 3,
            protocol: 255,
        },
    ];
    for (i, proto) in protos.into_iter().enumerate() {
        for local in addrs() {
            socks.push(Sock::Socket(Socket {
                sk: 0xffff_8880_0000_0000 + i as u64,
                proto,
                local,
                remote: addrs()[i],
                state: TcpState([1, 7, 10, 42][i]),
                port_bound: i % 2 == 0,
            }));
        }
    }
    socks
}

fn bodies() -> Vec<Body> {
    let mut bodies = Vec::new();
    for (i, addr) in addrs().into_iter().enumerate() {
        for errno in [98, 99, 0, 14, 4096, -1] {
            bodies.push(Body::Bind(Bind {
                errno,
                fd: 3 + i as i32,
                addr,
                sock_type: 1,
            }));
        }
    }
    for (i, sock) in socks().into_iter().enumerate() {
        let addr = addrs()[i % addrs().len()];
        let fd = (i % 3 != 0).then_some(i as i32);
        bodies.push(Body::Connect(Connect {
            errno: [111, 99, 0, 113][i % 4],
            fd,
            addr,
            sock,
        }));
        let syscall = [
            Syscall::Sendto,
            Syscall::Read,
            Syscall::Sendfile64,
            Syscall::Recvmmsg,
        ][i % 4];
        bodies.push(Body::SockIo(SockIo {
            syscall,
            errno: [32, 104, 11, 200][i % 4],
            fd: i as i32,
            sock,
        }));
        bodies.push(Body::Listen(Listen {
            fd: 7,
            sock,
            syscall: Syscall::Listen,
            errno: 0,
        }));
        bodies.push(Body::Listen(Listen {
            fd: [3, -1][i % 2],
            sock,
            syscall: [Syscall::Accept4, Syscall::Socket][i % 2],
            errno: [24, 23][i % 2],
        }));
    }
    for (i, local) in addrs().into_iter().enumerate() {
        bodies.push(Body::Reset(Reset {
            direction: [Direction::Received, Direction::Sent][i % 2],
            sk: i as u64,
            local,
            remote: addrs()[(i + 3) % addrs().len()],
            state: [Some(TcpState::ESTABLISHED), None, Some(TcpState(99))][i % 3],
            reason: [None, Some(1), Some(77)][i % 3],
            owner_known: i % 2 == 0,
        }));
    }
    for (i, comm) in COMMS.into_iter().enumerate() {
        bodies.push(Body::Signal(Signal {
            sig: [13, 15, 99, 0, 2, 9][i],
            target_tid: i as i32 * 1000,
            target_comm: Comm::from_raw(comm),
            code: 0,
            fate: [
                Fate::Ignored,
                Fate::Caught,
                Fate::Fatal,
                Fate::Delivered,
                Fate::NotQueued,
                Fate::Fatal,
            ][i],
        }));
    }
    for status in [
        ExitStatus::Exited(0),
        ExitStatus::Exited(3),
        ExitStatus::Exited(-1),
        ExitStatus::Killed {
            signal: 13,
            core: false,
        },
        ExitStatus::Killed {
            signal: 11,
            core: true,
        },
        ExitStatus::Killed {
            signal: 77,
            core: false,
        },
        ExitStatus::Unknown,
    ] {
        bodies.push(Body::Exit(Exit { status }));
    }
    bodies.push(Body::Fork(Fork {
        child_pid: 4_194_304,
    }));
    bodies.push(Body::Exec(Exec {
        old_tid: 17,
        command: None,
    }));
    bodies.push(Body::Exec(Exec {
        old_tid: 18,
        command: Some(crate::event::process::Command {
            exe: "/usr/bin/sleep".into(),
            argv: vec!["sleep".into(), "1".into(), "\\x1b[2J".into()],
        }),
    }));
    bodies
}

/// Places a cgroup id may resolve to (None: the cgroup is gone).
fn places() -> Vec<Option<Place>> {
    let id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
    vec![
        None,
        Some(cgroup::place("/")),
        Some(cgroup::place("/system.slice/nginx.service")),
        Some(cgroup::place(&format!("/system.slice/docker-{id}.scope"))),
        Some(cgroup::place("/user.slice/odd \"name\"\\\n\u{1}é.slice")),
    ]
}

/// Every body, with each comm, pid known or not, with and without a cgroup.
fn events() -> Vec<(Event, Option<Place>)> {
    let mut out = Vec::new();
    let places = places();
    for (i, body) in bodies().into_iter().enumerate() {
        for (j, comm) in COMMS.into_iter().enumerate() {
            let n = i * COMMS.len() + j;
            let pid = [4242, 0, 1, u32::MAX][n % 4];
            let ev = Event {
                ktime_ns: 1_000_000_000 * n as u64 + [0, 1, 999_999_999, 500][n % 4],
                cgroup_id: [0, 1, 77, u64::MAX][(n / 4) % 4],
                pid,
                tid: pid.wrapping_add(n as u32 % 2),
                comm: Comm::from_raw(comm),
                body: body.clone(),
            };
            let place = if ev.cgroup_id == 0 {
                None
            } else {
                places[n % places.len()].clone()
            };
            out.push((ev, place));
        }
    }
    out
}

fn clock() -> Clock {
    Clock::with_offset(1_795_412_844_123_456_789)
}

#[test]
fn json_events_are_the_bytes_serde_json_wrote() {
    assert!(events().len() > 1000, "{}", events().len());
    same_bytes(|| Stamps::new(clock()), json::event, json::reference::event);
}

/// Every `-T` format, in a zone with a half-hour offset and one whose offset changes
/// during the test events (the European spring change falls among their stamps), with
/// colour and without.
#[test]
fn text_events_are_the_bytes_format_wrote() {
    use jiff::tz::TimeZone;
    let zones = [
        TimeZone::posix("IST-5:30").unwrap(),
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
    ];
    // The events are a second apart: the change comes after the 600th.
    let change = Clock::with_offset(1_774_746_000_000_000_000 - 600_000_000_000);
    for format in [
        TimeFormat::Local,
        TimeFormat::Utc,
        TimeFormat::Iso,
        TimeFormat::Relative,
        TimeFormat::None,
    ] {
        for zone in &zones {
            for clock in [clock(), change] {
                // Relative: some events before the origin.
                let column = TimeColumn::new(format, zone.clone(), 2_500_000_000);
                for color in [false, true] {
                    let col = column.clone();
                    same_bytes_at(
                        clock,
                        || Stamps::with_column(clock, col.clone()),
                        |line, stamps, ev, place| text::event(line, stamps, color, ev, place),
                        |out, clock, ev, place| {
                            text::reference::event(out, clock, &column, color, ev, place)
                        },
                    );
                }
            }
        }
    }
}

/// `printer` writes every test event as `reference` does, byte for byte.
fn same_bytes(
    stamps: impl Fn() -> Stamps,
    printer: impl Fn(&mut Line, &mut Stamps, &Event, Option<&Place>),
    reference: impl Fn(&mut Vec<u8>, &Clock, &Event, Option<&Place>) -> std::io::Result<()>,
) {
    same_bytes_at(clock(), stamps, printer, reference);
}

fn same_bytes_at(
    clock: Clock,
    stamps: impl Fn() -> Stamps,
    printer: impl Fn(&mut Line, &mut Stamps, &Event, Option<&Place>),
    reference: impl Fn(&mut Vec<u8>, &Clock, &Event, Option<&Place>) -> std::io::Result<()>,
) {
    let mut stamps = stamps();
    let mut line = Line::new();
    for (ev, place) in &events() {
        let mut want = Vec::new();
        reference(&mut want, &clock, ev, place.as_ref()).unwrap();
        line.clear();
        printer(&mut line, &mut stamps, ev, place.as_ref());
        assert_eq!(
            String::from_utf8_lossy(line.as_bytes()),
            String::from_utf8_lossy(&want),
            "{ev:?} {place:?}"
        );
        assert_eq!(line.as_bytes(), want);
    }
}
