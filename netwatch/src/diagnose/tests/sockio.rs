//! Failed sends and receives, with the resets and ignored SIGPIPEs behind them.

use super::*;
use crate::event::{
    reset::{Direction, Reset},
    signal::{Fate, Signal},
};

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
