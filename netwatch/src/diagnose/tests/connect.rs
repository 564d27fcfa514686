//! Failed connects: ephemeral port exhaustion and a 4-tuple collision.

use super::*;

#[test]
fn eaddrnotavail_on_connect_is_exhaustion_unless_the_source_port_was_bound() {
    let mut c = Classifier::new();
    let ctx = Context {
        port_range: Some((40000, 40001)),
        ..Context::default()
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

/// A connect that failed with `errno`, to `dst`, reported on the socket after
/// EINPROGRESS when `fd` is None.
fn connect_to(errno: i32, dst: &str, fd: Option<i32>) -> Body {
    Body::Connect(Connect {
        errno,
        fd,
        addr: Addr::Inet(dst.parse().unwrap()),
        sock: Sock::Unknown,
    })
}

#[test]
fn etimedout_on_connect_says_how_long_the_kernel_tried() {
    let mut c = Classifier::new();
    let ctx = Context {
        syn_retries: Some(Ok(1)),
        ..Context::default()
    };
    // Reported asynchronously (after EINPROGRESS) or by the syscall: the same.
    let d = c.feed(
        &ev(0, 7, "client", connect_to(110, "10.200.0.2:80", None)),
        &ctx,
    );
    assert_eq!(names(&d), ["connect_timed_out"]);
    assert_eq!(
        d[0].what.message(),
        "connect to 10.200.0.2:80 timed out: the SYN was never answered; net.ipv4.tcp_syn_retries is 1 in \
         the process's network namespace, so the kernel tried for about 3 s (unless the socket set \
         TCP_SYNCNT or TCP_USER_TIMEOUT)"
    );
    // Once per destination.
    let d = c.feed(
        &ev(1, 7, "client", connect_to(110, "10.200.0.2:80", Some(3))),
        &ctx,
    );
    assert!(d.is_empty(), "{d:?}");
    let ctx = Context {
        syn_retries: Some(Err("the process had exited")),
        ..Context::default()
    };
    let d = c.feed(
        &ev(2, 8, "client", connect_to(110, "10.200.0.3:80", Some(3))),
        &ctx,
    );
    assert!(
        d[0].what
            .message()
            .ends_with("(net.ipv4.tcp_syn_retries not read: the process had exited)"),
        "{d:?}"
    );
}

#[test]
fn unreachable_says_whether_the_namespace_has_a_route() {
    let mut c = Classifier::new();
    let no_route = Context {
        route: Some(Ok(false)),
        ..Context::default()
    };
    let d = c.feed(
        &ev(0, 7, "client", connect_to(101, "10.99.0.1:80", Some(3))),
        &no_route,
    );
    assert_eq!(names(&d), ["destination_unreachable"]);
    assert_eq!(
        d[0].what.message(),
        "no route to 10.99.0.1 in the process's network namespace (ENETUNREACH)"
    );
    let routed = Context {
        route: Some(Ok(true)),
        ..Context::default()
    };
    let d = c.feed(
        &ev(1, 7, "client", connect_to(113, "10.200.0.9:80", None)),
        &routed,
    );
    assert_eq!(names(&d), ["destination_unreachable"]);
    assert!(
        d[0].what
            .message()
            .starts_with("EHOSTUNREACH connecting to 10.200.0.9:80: a route exists: the host or a router answered unreachable"),
        "{d:?}"
    );
    let d = c.feed(
        &ev(2, 7, "client", connect_to(101, "[fd00::1]:80", Some(3))),
        &Context::default(),
    );
    assert!(
        d[0].what
            .message()
            .ends_with("(routes not read: not looked up)"),
        "{d:?}"
    );
}

#[test]
fn econnrefused_and_other_errors_keep_their_own_diagnosis() {
    let mut c = Classifier::new();
    let ctx = Context {
        syn_retries: Some(Ok(1)),
        route: Some(Ok(false)),
        ..Context::default()
    };
    let d = c.feed(
        &ev(0, 7, "client", connect_to(111, "127.0.0.1:1", Some(3))),
        &ctx,
    );
    assert_eq!(names(&d), ["connection_refused"]);
    // EINPROGRESS, ECONNRESET, EINTR: no diagnosis.
    for errno in [115, 104, 4] {
        let d = c.feed(
            &ev(1, 8, "client", connect_to(errno, "10.0.0.1:80", Some(3))),
            &ctx,
        );
        assert!(d.is_empty(), "{errno}: {d:?}");
    }
}
