//! Failed connects: ephemeral port exhaustion and a 4-tuple collision.

use super::*;

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
