//! Unit tests of the JSON writers: each event kind's fields, by name.

use std::net::{Ipv4Addr, Ipv6Addr};

use netwatch_common::Syscall;
use serde_json::Value;

use crate::{
    clock::Clock,
    event::{
        Addr, Body, Comm, Event,
        bind::Bind,
        process::{Exit, ExitStatus},
        reset::{Direction, Reset},
        sock::{Proto, Sock, Socket, TcpState},
        sockio::SockIo,
    },
    output::{Format, Printer},
};

fn print(ev: &Event) -> Value {
    let mut p = Printer::new(Vec::new(), Format::Json, Clock::with_offset(0));
    p.event(ev).unwrap();
    let out = String::from_utf8(p.into_inner()).unwrap();
    assert_eq!(out.matches('\n').count(), 1, "one line: {out:?}");
    serde_json::from_str(&out).unwrap()
}

fn ev(body: Body) -> Event {
    Event {
        ktime_ns: 1_500_000_000,
        cgroup_id: 0,
        pid: 10,
        tid: 11,
        comm: Comm::from_raw(b"a\"b\n\xff"),
        body,
    }
}

#[test]
fn bind_event_has_every_field_named() {
    let v = print(&ev(Body::Bind(Bind {
        errno: 99,
        fd: 7,
        addr: Addr::Inet((Ipv6Addr::LOCALHOST, 8080).into()),
        sock_type: 1,
    })));
    assert_eq!(v["kind"], "bind");
    assert_eq!(v["syscall"], "bind");
    assert_eq!(v["time"], "1970-01-01T00:00:01.500000000Z");
    assert_eq!(v["ts_ns"], 1_500_000_000u64);
    assert_eq!((v["pid"].as_u64(), v["tid"].as_u64()), (Some(10), Some(11)));
    assert_eq!(v["comm"], r#"a"b\x0a\xff"#);
    assert_eq!(v["errno"], 99);
    assert_eq!(v["error"], "EADDRNOTAVAIL");
    assert_eq!(v["fd"], 7);
    assert_eq!(v["addr"]["family"], "inet6");
    assert_eq!(v["addr"]["ip"], "::1");
    assert_eq!(v["addr"]["port"], 8080);
}

#[test]
fn unreadable_address_has_only_a_family() {
    let v = print(&ev(Body::Bind(Bind {
        errno: 14,
        fd: 3,
        addr: Addr::Unknown,
        sock_type: 1,
    })));
    assert_eq!(v["error"], "EFAULT");
    assert_eq!(v["addr"], serde_json::json!({"family": "unknown"}));
}

#[test]
fn send_error_names_the_family_and_endpoints() {
    let sock = Sock::Socket(Socket {
        sk: 1,
        proto: Proto::Tcp,
        local: Addr::Inet((Ipv4Addr::LOCALHOST, 8000).into()),
        remote: Addr::Inet((Ipv4Addr::LOCALHOST, 51234).into()),
        state: TcpState(7),
        port_bound: false,
    });
    let v = print(&ev(Body::SockIo(SockIo {
        syscall: Syscall::Sendfile64,
        errno: 32,
        fd: 5,
        sock,
    })));
    assert_eq!(v["kind"], "send");
    assert_eq!(v["syscall"], "sendfile64");
    assert_eq!(v["error"], "EPIPE");
    assert_eq!(v["sock"]["proto"], "tcp");
    assert_eq!(v["sock"]["local"]["port"], 8000);
    assert_eq!(v["sock"]["remote"]["port"], 51234);
    assert_eq!(v["sock"]["state"], "CLOSE");
    let v = print(&ev(Body::SockIo(SockIo {
        syscall: Syscall::Read,
        errno: 104,
        fd: 5,
        sock: Sock::Unknown,
    })));
    assert_eq!(v["kind"], "recv");
    assert_eq!(v["sock"]["proto"], "unknown");
}

#[test]
fn reset_with_unknown_owner_has_null_pid() {
    let mut e = ev(Body::Reset(Reset {
        direction: Direction::Sent,
        sk: 0,
        local: Addr::Inet((Ipv4Addr::LOCALHOST, 1).into()),
        remote: Addr::Inet((Ipv4Addr::LOCALHOST, 2).into()),
        state: None,
        reason: Some(1),
        owner_known: false,
    }));
    e.pid = 0;
    e.tid = 0;
    let v = print(&e);
    assert_eq!(v["kind"], "reset");
    assert!(v["pid"].is_null() && v["comm"].is_null());
    assert_eq!(v["direction"], "sent");
    // Names come from the kernel's BTF at start-up; without them, the number.
    assert_eq!(v["reason"], "1");
}

#[test]
fn exit_statuses() {
    let v = print(&ev(Body::Exit(Exit {
        status: ExitStatus::Killed {
            signal: 13,
            core: false,
        },
    })));
    assert_eq!(v["status"], "killed by SIGPIPE");
    assert_eq!(v["signal"], "SIGPIPE");
    assert!(v["exit_code"].is_null());
    let v = print(&ev(Body::Exit(Exit {
        status: ExitStatus::Exited(3),
    })));
    assert_eq!(v["exit_code"], 3);
}
