//! One ring-buffer record's way to the output: decode it, print it if it is shown,
//! look up what explaining it needs, classify it, print its diagnoses.
//!
//! This is the daemon's hot path (a failure storm brings a million records a second),
//! kept apart from the ring buffer and the event loop so that it can be driven, and
//! measured, with records made up in memory (`benches/pipeline.rs`).

use std::{collections::HashSet, io, sync::Arc};

use netwatch_common::ProcCounts;

use crate::{
    diagnose::{Classifier, Context},
    event::{self, Body, Event, bind::SOCK_DGRAM},
    inspect::Inspector,
    metrics::Metrics,
    output::Printer,
};

/// What the stream shows: failures always; with `-v` everything; otherwise the exit
/// of a process only if it had a failure shown or is one the user named (a `-p` pid,
/// CMD itself). Every other exit would be noise: on a whole host, every process; in
/// CMD's tree, every helper a shell script forks.
pub struct View {
    verbose: bool,
    /// `--summary-only`: nothing is streamed.
    quiet: bool,
    /// The `-p` pids and CMD.
    roots: HashSet<u32>,
    /// The `-p` pids that have not exited, when their exits end the trace (`-p`
    /// without `--keep-going` or CMD).
    awaited: Option<HashSet<u32>>,
    /// Processes that had a failure shown and have not exited yet (looked up for every
    /// failure: a fast hash).
    with_failures: foldhash::HashSet<u32>,
}

impl View {
    pub fn new(verbose: bool, quiet: bool, roots: impl IntoIterator<Item = u32>) -> Self {
        Self {
            verbose,
            quiet,
            roots: roots.into_iter().collect(),
            awaited: None,
            with_failures: foldhash::HashSet::default(),
        }
    }

    /// The trace ends when these processes have exited (`-p`, as `strace -p`):
    /// [`View::all_exited`] says when. Their children do not count.
    #[must_use]
    pub fn ending_with(mut self, pids: impl IntoIterator<Item = u32>) -> Self {
        self.awaited = Some(pids.into_iter().collect());
        self
    }

    /// Whether every process given to [`View::ending_with`] has exited (false if it
    /// was not called: then only a signal, CMD or `-d` ends the trace).
    pub fn all_exited(&self) -> bool {
        self.awaited.as_ref().is_some_and(HashSet::is_empty)
    }

    /// The fallback for exit records that never came: forget the awaited processes that `gone` says have exited.
    pub fn forget_exited(&mut self, gone: impl Fn(u32) -> bool) {
        if let Some(awaited) = &mut self.awaited {
            awaited.retain(|&pid| !gone(pid));
        }
    }

    /// `--summary-only`: nothing is streamed.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    fn shows(&mut self, ev: &Event) -> bool {
        let shown = if let Body::Exit(_) = ev.body {
            if let Some(awaited) = &mut self.awaited {
                awaited.remove(&ev.pid);
            }
            let had_failure = self.with_failures.remove(&ev.pid);
            let root = self.roots.remove(&ev.pid);
            self.verbose || root || had_failure
        } else if ev.is_failure() {
            if ev.pid != 0 {
                self.with_failures.insert(ev.pid);
            }
            true
        } else {
            self.verbose
        };
        shown && !self.quiet
    }
}

/// What the classifier needs looked up for this event, looked up now, while the
/// processes and sockets involved still exist.
fn context<'a>(inspector: &'a mut Inspector, ev: &Event) -> Context<'a> {
    use netwatch_common::errno::{EADDRINUSE, EADDRNOTAVAIL, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT};
    let mut ctx = Context::default();
    match &ev.body {
        Body::Bind(b) if b.errno == EADDRINUSE => {
            if let Some(port) = b.addr.port() {
                ctx.holders = Some(inspector.port_holders(ev.pid, port, b.sock_type == SOCK_DGRAM));
            }
        }
        Body::Bind(b)
            if matches!(b.errno, libc::EACCES | libc::EPERM) && b.addr.port().is_some() =>
        {
            ctx.bind_privilege = Some(inspector.bind_privilege(ev.pid));
        }
        Body::Connect(c) if c.errno == ETIMEDOUT && c.addr.port().is_some() => {
            ctx.syn_retries = Some(inspector.syn_retries(ev.pid));
        }
        Body::Connect(c)
            if matches!(c.errno, EHOSTUNREACH | ENETUNREACH) && c.addr.port().is_some() =>
        {
            ctx.route = Some(inspector.has_route(ev.pid, &c.addr));
        }
        Body::Listen(l) if l.errno != 0 => {
            ctx.fds = Some(inspector.fd_usage(ev.pid, l.errno));
        }
        Body::Connect(c)
            if c.errno == EADDRNOTAVAIL && !c.sock.socket().is_some_and(|s| s.port_bound) =>
        {
            ctx.port_range = inspector.port_range(ev.pid);
        }
        _ => {}
    }
    ctx
}

pub struct Pipeline<W: io::Write> {
    pub out: Printer<W>,
    pub view: View,
    pub classifier: Classifier,
    pub metrics: Option<Arc<Metrics>>,
    inspector: Inspector,
    /// Records that could not be decoded (the first is logged).
    decode_errors: u64,
}

impl<W: io::Write> Pipeline<W> {
    pub fn new(out: Printer<W>, view: View, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            out,
            view,
            classifier: Classifier::new(),
            inspector: Inspector::new(),
            metrics,
            decode_errors: 0,
        }
    }

    /// Handle one record. `exit_counts` hands over the kernel's counts of the lost
    /// failures of a process that exited (and forgets them), if it has any.
    pub fn record(
        &mut self,
        bytes: &[u8],
        exit_counts: impl FnOnce(u32) -> Option<ProcCounts>,
    ) -> io::Result<()> {
        let mut ev = match event::decode(bytes) {
            Ok(ev) => ev,
            Err(e) => {
                self.decode_errors += 1;
                if self.decode_errors == 1 {
                    tracing::warn!("undecodable record skipped: {e}");
                }
                return Ok(());
            }
        };
        if let Some(m) = &self.metrics {
            m.event(&ev);
        }
        let mut result = Ok(());
        if self.view.shows(&ev) {
            // What an exec ran, read now: a short-lived process may already be gone.
            if let Body::Exec(x) = &mut ev.body {
                x.command = crate::procfs::command(ev.pid);
            }
            result = self.out.event(&ev);
        }
        if let Body::Exit(_) = ev.body
            && let Some(counts) = exit_counts(ev.pid)
        {
            self.classifier.lost_counts(ev.pid, &counts, || ev.comm);
        }
        let ctx = if self.classifier.explained(&ev) {
            Context::default()
        } else {
            context(&mut self.inspector, &ev)
        };
        for d in self.classifier.feed(&ev, &ctx) {
            if let Some(m) = &self.metrics {
                m.diagnosis(&d);
            }
            if result.is_ok() && !self.view.quiet {
                result = self.out.diagnosis(&d);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        Comm,
        process::{Exit, ExitStatus},
    };

    fn exit_of(pid: u32) -> Event {
        Event {
            ktime_ns: 1,
            cgroup_id: 0,
            pid,
            tid: pid,
            comm: Comm::from_raw(b"sh"),
            body: Body::Exit(Exit {
                status: ExitStatus::Exited(0),
            }),
        }
    }

    #[test]
    fn the_trace_ends_when_every_awaited_process_has_exited() {
        let mut view = View::new(false, false, [10, 11]).ending_with([10, 11]);
        assert!(!view.all_exited());
        assert!(view.shows(&exit_of(10)), "a root's exit is shown");
        // A child of a root (followed by the kernel) does not count.
        view.shows(&exit_of(12));
        assert!(!view.all_exited());
        // 11's exit record was lost: /proc says it is gone.
        view.forget_exited(|pid| pid == 11);
        assert!(view.all_exited());

        let mut view = View::new(false, false, [10]);
        view.shows(&exit_of(10));
        assert!(!view.all_exited(), "--keep-going, CMD: never by itself");
    }
}
