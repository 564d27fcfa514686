//! accept and socket out of file descriptors.

use super::*;
use crate::event::process::ExitStatus as Status;

fn out_of_fds(syscall: Syscall, errno: i32) -> Body {
    Body::Listen(Listen {
        fd: 3,
        sock: Sock::Unknown,
        syscall,
        errno,
    })
}

#[test]
fn out_of_descriptors_is_explained_once_and_counted_each_time() {
    let mut c = Classifier::new();
    let usage = Ok(FdUsage::Process {
        open: 1024,
        soft: 1024,
        hard: 4096,
    });
    let ctx = Context {
        fds: Some(usage),
        ..Context::default()
    };
    let mut d = Vec::new();
    for t in 0..3 {
        let e = ev(t, 50, "server", out_of_fds(Syscall::Accept4, 24));
        // Looked up for the first record only: the rest would say nothing new.
        assert_eq!(c.explained(&e), t > 0);
        d.extend(c.feed(&e, &ctx));
    }
    assert_eq!(names(&d), ["file_descriptors_exhausted"]);
    assert_eq!(
        d[0].what.message(),
        "accept4: EMFILE: 1024 file descriptors open of its RLIMIT_NOFILE 1024 (hard 4096): \
         it cannot accept the connections waiting in its queue; raise the limit \
         (ulimit -n, LimitNOFILE=) or close what leaks"
    );
    let system = Context {
        fds: Some(Ok(FdUsage::System {
            allocated: 100,
            max: 100,
        })),
        ..Context::default()
    };
    let d = c.feed(
        &ev(4, 51, "client", out_of_fds(Syscall::Socket, 23)),
        &system,
    );
    assert_eq!(
        d[0].what.message(),
        "socket: ENFILE: the system's file table is full (100 of fs.file-max 100): it \
         cannot open a socket"
    );
    let p = c.summary().into_iter().find(|p| p.pid == 50).cloned();
    let p = p.expect("the server's summary");
    assert_eq!(p.counts.get(&(Class::Other(24), "listen")), Some(&3));
}

/// A failed accept is not the listen that recovers a failed bind.
#[test]
fn a_failed_accept_does_not_recover_a_failed_bind() {
    let accept = out_of_fds(Syscall::Accept, 24);
    let exit = exit(Status::Exited(0));
    let said = one_process(60, "daphne", &[(0, bind(98, 9000)), (1, accept), (2, exit)]).1;
    assert_eq!(flagged(&said), [60]);
}
