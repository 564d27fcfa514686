//! Exits: the Daphne flag, wrappers and reused pids, death by SIGPIPE, the port
//! released by an exiting holder (the restart race), the summary, lost counts.

use netwatch_common::{ErrorClass, Family};

use super::*;
use crate::event::{
    process::Fork,
    signal::{Fate, Signal},
};

#[test]
fn exit_zero_after_a_failed_bind_is_flagged_with_the_address() {
    let (c, d) = one_process(
        10,
        "daphne",
        &[(0, bind(98, 9000)), (5, exit(ExitStatus::Exited(0)))],
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
    let (mut c, d) = one_process(
        10,
        "daphne",
        &[(0, bind(98, 9000)), (5, exit(ExitStatus::Exited(1)))],
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
