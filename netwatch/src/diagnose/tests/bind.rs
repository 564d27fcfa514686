//! Failed binds: the port's holders, TIME_WAIT, a non-local address, a storm, and
//! the listen (or datagram bind) that recovers a failure.

use super::*;

#[test]
fn failing_one_port_then_listening_on_another_recovers() {
    let (_, d) = one_process(
        10,
        "srv",
        &[
            (0, bind(98, 9000)),
            (1, bind(0, 9001)),
            (2, listen()),
            (9, exit(ExitStatus::Exited(0))),
        ],
    );
    assert!(flagged(&d).is_empty(), "{d:?}");
}

#[test]
fn a_stream_bind_alone_does_not_recover_but_a_datagram_bind_does() {
    let (mut c, d) = one_process(
        10,
        "srv",
        &[
            (0, bind(98, 9000)),
            (1, bind(0, 9001)),
            (9, exit(ExitStatus::Exited(0))),
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

fn privilege(port_start: u16, uid: u32, cap: bool) -> Context<'static> {
    Context {
        bind_privilege: Some(BindPrivilege {
            port_start: Ok(port_start),
            creds: Ok(Creds {
                uid,
                cap_net_bind_service: cap,
            }),
        }),
        ..Context::default()
    }
}

#[test]
fn eacces_below_the_unprivileged_port_start_without_the_capability_says_so() {
    let mut c = Classifier::new();
    let d = c.feed(
        &ev(0, 7, "nginx", bind(13, 80)),
        &privilege(1024, 65534, false),
    );
    assert_eq!(names(&d), ["bind_refused"]);
    assert_eq!(
        d[0].what.message(),
        "port 80 is below net.ipv4.ip_unprivileged_port_start (1024) and uid 65534 has no CAP_NET_BIND_SERVICE"
    );
    let What::BindRefused { cause, .. } = d[0].what else {
        panic!()
    };
    assert_eq!(cause, BindRefusal::PrivilegedPort);
    // The exit-0 flag names the reason.
    let d = c.feed(
        &ev(1, 7, "nginx", exit(ExitStatus::Exited(0))),
        &Context::default(),
    );
    assert_eq!(flagged(&d), [7]);
    assert_eq!(
        d[0].what.message(),
        "exited 0 after bind failure (EACCES 127.0.0.1:80: privileged port: below \
         net.ipv4.ip_unprivileged_port_start without CAP_NET_BIND_SERVICE): callers will read success"
    );
}

#[test]
fn a_refused_bind_the_port_check_allowed_is_a_policy() {
    for (errno, port, ctx, why) in [
        (
            13,
            8080,
            privilege(1024, 1000, false),
            "port 8080 is not below net.ipv4.ip_unprivileged_port_start (1024)",
        ),
        (
            13,
            80,
            privilege(1024, 0, true),
            "uid 0 has CAP_NET_BIND_SERVICE",
        ),
        (
            13,
            80,
            privilege(0, 1000, false),
            "port 80 is not below net.ipv4.ip_unprivileged_port_start (0)",
        ),
        // EPERM: a cgroup BPF program (the port check answers EACCES).
        (
            1,
            80,
            privilege(1024, 1000, false),
            "the privileged-port check answers EACCES, not this",
        ),
    ] {
        let mut c = Classifier::new();
        let d = c.feed(&ev(0, 7, "srv", bind(errno, port)), &ctx);
        assert_eq!(names(&d), ["bind_refused"]);
        let m = d[0].what.message();
        assert!(m.contains(why), "{m}");
        assert!(m.ends_with("something else refused it (an LSM such as SELinux or AppArmor, or a cgroup BPF program)"), "{m}");
    }
}

#[test]
fn a_refused_bind_of_a_gone_process_says_what_could_not_be_read() {
    let mut c = Classifier::new();
    let gone = "the process had exited before its namespace's net.ipv4.ip_unprivileged_port_start and its capabilities could be read";
    let ctx = Context {
        bind_privilege: Some(BindPrivilege {
            port_start: Err(gone),
            creds: Err(gone),
        }),
        ..Context::default()
    };
    let d = c.feed(&ev(0, 7, "srv", bind(13, 80)), &ctx);
    assert_eq!(
        d[0].what.message(),
        format!(
            "bind to 127.0.0.1:80 refused (EACCES); cannot tell whether the port is privileged: {gone}"
        )
    );
    // The port start known, the capabilities not: a port above it is still a policy.
    let ctx = Context {
        bind_privilege: Some(BindPrivilege {
            port_start: Ok(1024),
            creds: Err("the process had exited"),
        }),
        ..Context::default()
    };
    let d = c.feed(&ev(1, 8, "srv", bind(13, 8080)), &ctx);
    let What::BindRefused { cause, .. } = d[0].what else {
        panic!()
    };
    assert_eq!(cause, BindRefusal::Policy);
    let d = c.feed(&ev(2, 9, "srv", bind(13, 80)), &ctx);
    assert!(
        d[0].what.message().ends_with(": the process had exited"),
        "{d:?}"
    );
}

#[test]
fn a_bind_to_port_80_that_fails_otherwise_is_not_a_refusal() {
    let mut c = Classifier::new();
    let ctx = privilege(1024, 65534, false);
    // EADDRINUSE keeps its own diagnosis, EADDRNOTAVAIL too.
    let d = c.feed(&ev(0, 7, "srv", bind(98, 80)), &ctx);
    assert_eq!(names(&d), ["port_in_use"]);
    let d = c.feed(&ev(1, 7, "srv", bind(99, 81)), &ctx);
    assert_eq!(names(&d), ["address_not_local"]);
    // EACCES on a Unix socket is a file permission: not this.
    let d = c.feed(
        &ev(
            2,
            8,
            "srv",
            Body::Bind(Bind {
                errno: 13,
                fd: 3,
                addr: Addr::Unix,
                sock_type: 1,
            }),
        ),
        &ctx,
    );
    assert!(d.is_empty(), "{d:?}");
    // The exit-0 message of a non-refusal is unchanged.
    let d = c.feed(
        &ev(3, 7, "srv", exit(ExitStatus::Exited(0))),
        &Context::default(),
    );
    assert_eq!(
        d[0].what.message(),
        "exited 0 after bind failure (EADDRINUSE 127.0.0.1:80): callers will read success"
    );
}
