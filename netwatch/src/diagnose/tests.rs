//! Every rule, from event sequences, with the negative cases.

use std::net::{Ipv4Addr, SocketAddr};

use netwatch_common::{ErrorClass, Family, Syscall};

use super::*;
use crate::event::{
    Body, Comm, Event,
    bind::Bind,
    connect::Connect,
    listen::Listen,
    process::{Exit, ExitStatus, Fork},
    reset::{Direction, Reset},
    signal::{Fate, Signal},
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

fn names(d: &[Diagnosis]) -> Vec<&'static str> {
    d.iter().map(|d| d.what.name()).collect()
}

fn flagged(d: &[Diagnosis]) -> Vec<u32> {
    d.iter()
        .filter(|d| d.what.kind() == Kind::ExitZeroAfterBindFailure)
        .map(|d| d.pid)
        .collect()
}

#[test]
fn exit_zero_after_a_failed_bind_is_flagged_with_the_address() {
    let mut c = Classifier::new();
    let d = run(
        &mut c,
        &[
            ev(0, 10, "daphne", bind(98, 9000)),
            ev(5, 10, "daphne", exit(ExitStatus::Exited(0))),
        ],
    );
    assert_eq!(flagged(&d), [10]);
    let flag = d
        .iter()
        .find(|d| d.what.kind() == Kind::ExitZeroAfterBindFailure)
        .unwrap();
    assert_eq!(
        flag.what.message(),
        "exited 0 after bind failure (EADDRINUSE 127.0.0.1:9000): callers will read success"
    );
    assert_eq!(flag.comm.to_string(), "daphne");
    assert!(c.any_flagged_exit_zero());
    let s = c.summary();
    assert_eq!(s[0].pid, 10);
    assert_eq!(s[0].exit, Some(ExitStatus::Exited(0)));
    assert_eq!(s[0].counts.get(&(Class::AddrInUse, "bind")), Some(&1));
}

#[test]
fn a_non_zero_exit_after_the_failure_is_not_flagged() {
    let mut c = Classifier::new();
    let d = run(
        &mut c,
        &[
            ev(0, 10, "daphne", bind(98, 9000)),
            ev(5, 10, "daphne", exit(ExitStatus::Exited(1))),
        ],
    );
    assert!(flagged(&d).is_empty());
    assert!(!c.any_flagged_exit_zero());
    // The failure itself is still in the summary.
    assert_eq!(
        c.summary()[0].counts.get(&(Class::AddrInUse, "bind")),
        Some(&1)
    );
    let d = run(
        &mut c,
        &[
            ev(0, 11, "x", bind(98, 9000)),
            ev(
                5,
                11,
                "x",
                exit(ExitStatus::Killed {
                    signal: 9,
                    core: false,
                }),
            ),
        ],
    );
    assert!(flagged(&d).is_empty());
}

#[test]
fn failing_one_port_then_listening_on_another_recovers() {
    let mut c = Classifier::new();
    let d = run(
        &mut c,
        &[
            ev(0, 10, "srv", bind(98, 9000)),
            ev(1, 10, "srv", bind(0, 9001)),
            ev(2, 10, "srv", listen()),
            ev(9, 10, "srv", exit(ExitStatus::Exited(0))),
        ],
    );
    assert!(flagged(&d).is_empty(), "{d:?}");
}

#[test]
fn a_stream_bind_alone_does_not_recover_but_a_datagram_bind_does() {
    let mut c = Classifier::new();
    let d = run(
        &mut c,
        &[
            ev(0, 10, "srv", bind(98, 9000)),
            ev(1, 10, "srv", bind(0, 9001)),
            ev(9, 10, "srv", exit(ExitStatus::Exited(0))),
        ],
    );
    assert_eq!(
        flagged(&d),
        [10],
        "bound but never listened: nothing served"
    );
    let udp = Body::Bind(Bind {
        errno: 0,
        fd: 4,
        addr: addr(9001),
        sock_type: 2,
    });
    let d = run(
        &mut c,
        &[
            ev(0, 11, "dns", bind(98, 53)),
            ev(1, 11, "dns", udp),
            ev(9, 11, "dns", exit(ExitStatus::Exited(0))),
        ],
    );
    assert!(flagged(&d).is_empty());
}

#[test]
fn the_flag_belongs_to_the_process_that_failed_not_its_wrapper() {
    let mut c = Classifier::new();
    let d = run(
        &mut c,
        &[
            ev(0, 20, "sh", Body::Fork(Fork { child_pid: 21 })),
            ev(1, 21, "daphne", bind(98, 9000)),
            ev(2, 21, "daphne", exit(ExitStatus::Exited(0))),
            ev(3, 20, "sh", exit(ExitStatus::Exited(0))),
        ],
    );
    assert_eq!(flagged(&d), [21]);
}

#[test]
fn a_reused_pid_is_a_new_process() {
    let mut c = Classifier::new();
    let d = run(
        &mut c,
        &[
            ev(0, 30, "old", bind(98, 9000)),
            ev(1, 30, "old", exit(ExitStatus::Exited(1))),
            ev(2, 1, "init", Body::Fork(Fork { child_pid: 30 })),
            ev(3, 30, "new", exit(ExitStatus::Exited(0))),
        ],
    );
    assert!(flagged(&d).is_empty(), "{d:?}");
    // A pid whose exit was never seen and that is forked again starts afresh too.
    let d = run(
        &mut c,
        &[
            ev(0, 31, "a", bind(98, 9000)),
            ev(2, 1, "init", Body::Fork(Fork { child_pid: 31 })),
            ev(3, 31, "b", exit(ExitStatus::Exited(0))),
        ],
    );
    assert!(flagged(&d).is_empty(), "{d:?}");
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
        port_range: None,
    }
}

#[test]
fn eaddrinuse_names_every_live_holder_including_inherited_listeners() {
    let mut c = Classifier::new();
    let holders = with_holders(vec![
        held(TcpState::LISTEN, &[(40, "gunicorn"), (41, "gunicorn")]),
        held(TcpState::TIME_WAIT, &[]),
    ]);
    let ctx = holding(&holders);
    let d = c.feed(&ev(0, 50, "new", bind(98, 9000)), &ctx);
    assert_eq!(names(&d), ["port_held"]);
    assert_eq!(
        d[0].what.message(),
        "port 9000 is held by pid 40 (gunicorn, LISTEN), pid 41 (gunicorn, LISTEN)"
    );
}

#[test]
fn eaddrinuse_from_time_wait_only_says_so_and_hints_so_reuseaddr() {
    let mut c = Classifier::new();
    let holders = with_holders(vec![
        held(TcpState::TIME_WAIT, &[]),
        held(TcpState::TIME_WAIT, &[]),
    ]);
    let ctx = holding(&holders);
    let d = c.feed(&ev(0, 50, "srv", bind(98, 9000)), &ctx);
    assert_eq!(names(&d), ["port_time_wait"]);
    let m = d[0].what.message();
    assert!(
        m.contains("held only by 2 TIME_WAIT sockets (no owner)"),
        "{m}"
    );
    assert!(m.contains("SO_REUSEADDR"), "{m}");
    // Nothing left, and a lookup that was skipped.
    assert_eq!(
        names(&c.feed(
            &ev(1, 51, "a", bind(98, 9000)),
            &holding(&with_holders(vec![]))
        )),
        ["port_freed"]
    );
    let rate_limited = Holders::Unknown("rate limit".into());
    let skipped = holding(&rate_limited);
    assert_eq!(
        names(&c.feed(&ev(1, 52, "a", bind(98, 9000)), &skipped)),
        ["port_in_use"]
    );
}

#[test]
fn a_holder_asked_to_terminate_is_shown_exiting_and_its_exit_times_the_race() {
    let mut c = Classifier::new();
    let sigint = Body::Signal(Signal {
        sig: 2,
        target_tid: 60,
        target_comm: Comm::from_raw(b"server"),
        code: 0,
        fate: Fate::Caught,
    });
    c.feed(&ev(0, 60, "server", sigint), &Context::default());
    let d = c.feed(
        &ev(100, 61, "server", bind(98, 9000)),
        &holding(&with_holders(vec![held(
            TcpState::LISTEN,
            &[(60, "server")],
        )])),
    );
    assert!(
        d[0].what
            .message()
            .contains("pid 60 (server, LISTEN) exiting: got SIGINT 100 ms earlier"),
        "{:?}",
        d[0].what.message()
    );
    let d = c.feed(
        &ev(220, 60, "server", exit(ExitStatus::Exited(0))),
        &Context::default(),
    );
    let released: Vec<&Diagnosis> = d
        .iter()
        .filter(|d| d.what.name() == "port_released")
        .collect();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].pid, 61, "told to the process whose bind failed");
    assert!(
        released[0]
            .what
            .message()
            .starts_with("port 9000 released by pid 60 (server) 120 ms after the failed bind")
    );
}

#[test]
fn a_holder_exiting_long_after_is_not_a_race() {
    let mut c = Classifier::new();
    c.feed(
        &ev(0, 61, "new", bind(98, 9000)),
        &holding(&with_holders(vec![held(TcpState::LISTEN, &[(60, "old")])])),
    );
    c.feed(&ev(6_000, 99, "other", bind(98, 1)), &Context::default());
    let d = c.feed(
        &ev(6_100, 60, "old", exit(ExitStatus::Exited(0))),
        &Context::default(),
    );
    assert!(names(&d).iter().all(|n| *n != "port_released"), "{d:?}");
}

#[test]
fn eaddrnotavail_on_bind_is_a_non_local_address() {
    let mut c = Classifier::new();
    let b = Body::Bind(Bind {
        errno: 99,
        fd: 3,
        addr: Addr::Inet((Ipv4Addr::new(203, 0, 113, 1), 80).into()),
        sock_type: 1,
    });
    let d = c.feed(&ev(0, 5, "x", b), &Context::default());
    assert_eq!(
        d[0].what.message(),
        "address not local: no interface has 203.0.113.1"
    );
}

fn connect(errno: i32, sock: Sock) -> Body {
    Body::Connect(Connect {
        errno,
        fd: Some(4),
        addr: addr(8080),
        sock,
    })
}

#[test]
fn eaddrnotavail_on_connect_is_exhaustion_unless_the_source_port_was_bound() {
    let mut c = Classifier::new();
    let ctx = Context {
        holders: None,
        port_range: Some((40000, 40001)),
    };
    let d = c.feed(
        &ev(0, 7, "client", connect(99, socket(1, 0, 8080, false))),
        &ctx,
    );
    assert_eq!(names(&d), ["ephemeral_ports_exhausted"]);
    assert_eq!(
        d[0].what.message(),
        "ephemeral ports exhausted towards 127.0.0.1:8080 (net.ipv4.ip_local_port_range 40000-40001: 2 ports); other destinations still work"
    );
    let d = c.feed(
        &ev(1, 8, "trippy", connect(99, socket(2, 33434, 8080, true))),
        &ctx,
    );
    assert_eq!(names(&d), ["tuple_collision"]);
    assert!(
        d[0].what
            .message()
            .starts_with("4-tuple in use: source port 33434 is explicitly bound")
    );
    assert_eq!(
        c.summary()
            .iter()
            .find(|p| p.pid == 8)
            .unwrap()
            .counts
            .get(&(Class::AddrNotAvail, "connect")),
        Some(&1)
    );
}

fn sockio(syscall: Syscall, errno: i32, sock: Sock) -> Body {
    Body::SockIo(SockIo {
        syscall,
        errno,
        fd: 5,
        sock,
    })
}

#[test]
fn sigpipe_death_names_the_epipe_before_it() {
    let mut c = Classifier::new();
    let fatal = Body::Signal(Signal {
        sig: 13,
        target_tid: 70,
        target_comm: Comm::from_raw(b"drogon"),
        code: 0x80,
        fate: Fate::Fatal,
    });
    let d = run(
        &mut c,
        &[
            ev(
                0,
                70,
                "drogon",
                sockio(Syscall::Sendfile64, 32, socket(9, 8000, 51234, false)),
            ),
            ev(0, 70, "drogon", fatal),
            ev(
                1,
                70,
                "drogon",
                exit(ExitStatus::Killed {
                    signal: 13,
                    core: false,
                }),
            ),
        ],
    );
    let death = d
        .iter()
        .find(|d| d.what.kind() == Kind::KilledBySigpipe)
        .unwrap();
    assert_eq!(
        death.what.message(),
        "killed by SIGPIPE after EPIPE on sendfile64 to 127.0.0.1:51234"
    );
    let p = &c.summary()[0];
    assert_eq!(p.counts.get(&(Class::Pipe, "sendfile")), Some(&1));
    assert_eq!(p.sigpipe.get("fatal"), Some(&1));
    assert!(p.flags.contains(&Kind::KilledBySigpipe));
}

#[test]
fn ignored_sigpipes_are_counted_and_nothing_dies() {
    let mut c = Classifier::new();
    let ign = || {
        Body::Signal(Signal {
            sig: 13,
            target_tid: 71,
            target_comm: Comm::default(),
            code: 0x80,
            fate: Fate::Ignored,
        })
    };
    let d = run(
        &mut c,
        &[
            ev(
                0,
                71,
                "srv",
                sockio(Syscall::Write, 32, socket(9, 8000, 1, false)),
            ),
            ev(0, 71, "srv", ign()),
            ev(
                1,
                71,
                "srv",
                sockio(Syscall::Writev, 32, socket(9, 8000, 1, false)),
            ),
            ev(1, 71, "srv", ign()),
            ev(2, 71, "srv", exit(ExitStatus::Exited(0))),
        ],
    );
    assert!(d.iter().all(|d| d.what.kind() != Kind::KilledBySigpipe));
    let p = &c.summary()[0];
    assert_eq!(p.sigpipe.get("ignored"), Some(&2));
    assert_eq!(p.counts.get(&(Class::Pipe, "send")), Some(&2));
}

#[test]
fn econnreset_is_tied_to_the_reset_received_on_that_socket() {
    let mut c = Classifier::new();
    let rst = Body::Reset(Reset {
        direction: Direction::Received,
        sk: 9,
        local: addr(8000),
        remote: addr(51234),
        state: Some(TcpState(1)),
        reason: None,
        owner_known: true,
    });
    let d = run(
        &mut c,
        &[
            ev(0, 80, "ws", rst),
            ev(
                3,
                80,
                "ws",
                sockio(Syscall::Recvfrom, 104, socket(9, 8000, 51234, false)),
            ),
        ],
    );
    assert_eq!(names(&d), ["reset_by_peer"]);
    assert_eq!(
        d[0].what.message(),
        "recvfrom: connection reset by peer 127.0.0.1:51234 (RST received 3.0 ms earlier)"
    );
    let p = &c.summary()[0];
    assert_eq!(p.resets_received, 1);
    assert!(p.reset_peers.contains("127.0.0.1:51234"));
    assert_eq!(p.counts.get(&(Class::ConnReset, "recv")), Some(&1));
    // Another socket's ECONNRESET is not tied to that reset.
    let d = c.feed(
        &ev(
            4,
            80,
            "ws",
            sockio(Syscall::Read, 104, socket(10, 8000, 51235, false)),
        ),
        &Context::default(),
    );
    assert_eq!(
        d[0].what.message(),
        "read: connection reset by peer 127.0.0.1:51235"
    );
}

#[test]
fn a_reset_with_no_known_owner_is_counted_for_nobody() {
    let mut c = Classifier::new();
    let rst = Body::Reset(Reset {
        direction: Direction::Sent,
        sk: 0,
        local: addr(1),
        remote: addr(2),
        state: None,
        reason: None,
        owner_known: false,
    });
    run(&mut c, &[ev(0, 0, "", rst)]);
    assert!(c.summary().is_empty());
}

#[test]
fn a_storm_of_one_error_is_explained_once_and_counted_exactly() {
    let mut c = Classifier::new();
    let mut diagnoses = 0;
    for i in 0..10_000 {
        diagnoses += c
            .feed(&ev(i, 90, "storm", bind(98, 9000)), &Context::default())
            .len();
    }
    assert_eq!(diagnoses, 1);
    assert_eq!(
        c.summary()[0].counts.get(&(Class::AddrInUse, "bind")),
        Some(&10_000)
    );
    assert_eq!(c.tracked(), 1);
}

#[test]
fn summary_puts_the_flagged_process_first() {
    let mut c = Classifier::new();
    run(
        &mut c,
        &[
            ev(0, 1, "noisy", sockio(Syscall::Read, 104, Sock::Unknown)),
            ev(0, 1, "noisy", sockio(Syscall::Read, 104, Sock::Unknown)),
            ev(0, 2, "daphne", bind(98, 9000)),
            ev(1, 2, "daphne", exit(ExitStatus::Exited(0))),
            ev(1, 3, "quiet", exit(ExitStatus::Exited(0))),
        ],
    );
    let pids: Vec<u32> = c.summary().iter().map(|p| p.pid).collect();
    assert_eq!(
        pids,
        [2, 1],
        "flagged first; a process with nothing to report is left out"
    );
}

#[test]
fn a_process_binding_a_port_it_already_holds_is_told_so() {
    let mut c = Classifier::new();
    let d = c.feed(
        &ev(0, 40, "srv", bind(98, 9000)),
        &holding(&with_holders(vec![held(TcpState::LISTEN, &[(40, "srv")])])),
    );
    assert_eq!(
        d[0].what.message(),
        "port 9000 is held by pid 40 (srv, LISTEN) itself: the process already holds this port"
    );
    // Its own exit is no restart race.
    let d = c.feed(
        &ev(10, 40, "srv", exit(ExitStatus::Exited(1))),
        &Context::default(),
    );
    assert!(names(&d).iter().all(|n| *n != "port_released"), "{d:?}");
}

#[test]
fn a_holder_that_was_not_exiting_releasing_the_port_is_no_race() {
    let mut c = Classifier::new();
    c.feed(
        &ev(0, 61, "new", bind(98, 9000)),
        &holding(&with_holders(vec![held(TcpState::LISTEN, &[(60, "old")])])),
    );
    c.feed(
        &ev(1, 61, "new", exit(ExitStatus::Exited(1))),
        &Context::default(),
    );
    let d = c.feed(
        &ev(300, 60, "old", exit(ExitStatus::Exited(0))),
        &Context::default(),
    );
    assert_eq!(names(&d), ["port_released"]);
    assert!(
        d[0].what
            .message()
            .ends_with("after the failed bind: retrying then would have worked"),
        "{}",
        d[0].what.message()
    );
    // The failed process had exited already: its summary still carries the flag.
    let failed = c.summary().into_iter().find(|p| p.pid == 61).unwrap();
    assert!(failed.flags.contains(&Kind::PortReleased));
}

#[test]
fn a_storm_on_a_port_another_process_holds_is_released_once() {
    let mut c = Classifier::new();
    let holders = with_holders(vec![held(TcpState::LISTEN, &[(60, "old")])]);
    let mut diagnoses = Vec::new();
    for i in 0..10_000 {
        diagnoses.extend(c.feed(&ev(i / 100, 61, "new", bind(98, 9000)), &holding(&holders)));
    }
    assert_eq!(names(&diagnoses), ["port_held"]);
    assert_eq!(c.pending.len(), 1, "one wait per process, port and holder");
    let d = c.feed(
        &ev(150, 60, "old", exit(ExitStatus::Exited(0))),
        &Context::default(),
    );
    assert_eq!(names(&d), ["port_released"]);
    assert!(
        d[0].what
            .message()
            .starts_with("port 9000 released by pid 60 (old) 150 ms after the failed bind"),
        "timed from the first failure: {}",
        d[0].what.message()
    );
}

#[test]
fn lost_failures_counted_in_the_kernel_are_added_to_the_stream_counts() {
    let mut c = Classifier::new();
    run(
        &mut c,
        &[
            ev(0, 10, "daphne", bind(98, 9000)),
            ev(1, 10, "daphne", bind(98, 9000)),
            ev(2, 10, "daphne", bind(13, 80)),
        ],
    );
    // Three more EADDRINUSE binds and one EACCES bind, and a lost EPIPE on send.
    let mut lost = ProcCounts::ZERO;
    lost.n[ProcCounts::index(ErrorClass::of(98), Family::Bind)] = 3;
    lost.n[ProcCounts::index(ErrorClass::of(13), Family::Bind)] = 1;
    lost.n[ProcCounts::index(ErrorClass::of(32), Family::Send)] = 7;
    c.lost_counts(10, &lost, || Comm::from_raw(b"unused"));
    let p = &c.summary()[0];
    assert_eq!(p.counts.get(&(Class::AddrInUse, "bind")), Some(&5));
    assert_eq!(p.counts.get(&(Class::Other(13), "bind")), Some(&1));
    assert_eq!(p.counts.get(&(Class::Other(0), "bind")), Some(&1));
    assert_eq!(p.counts.get(&(Class::Pipe, "send")), Some(&7));
    assert_eq!(p.total_errors(), 14);
    assert_eq!(p.comm.to_string(), "daphne");
}
