//! Failed binds: the port's holders, TIME_WAIT, a non-local address, a storm, and
//! the listen (or datagram bind) that recovers a failure.

use super::*;

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
