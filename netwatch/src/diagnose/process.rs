//! Process exit: the exit-0-after-bind-failure flag, the death by SIGPIPE, and
//! the hand-over of the process to the summary.

use netwatch_common::signal::SIGPIPE;

use super::{Classifier, Diagnosis, MAX_FINISHED, Process, What};
use crate::event::{Event, process::ExitStatus};

impl Classifier {
    pub(super) fn exit(&mut self, ev: &Event, status: ExitStatus, out: &mut Vec<Diagnosis>) {
        self.terminating.remove(&ev.pid);
        // Hot reload: the holder of a port someone just failed to bind lets go.
        let mut released = Vec::new();
        self.pending.retain(|r| {
            if r.holder == ev.pid {
                released.push((
                    r.failed_pid,
                    r.failed_comm,
                    r.port,
                    ev.ktime_ns.saturating_sub(r.at_ns),
                    r.holder_exiting,
                ));
                false
            } else {
                true
            }
        });
        for (failed_pid, failed_comm, port, after_ns, race) in released {
            let what = What::PortReleased {
                port,
                holder: ev.pid,
                holder_comm: ev.comm,
                after_ns,
                race,
            };
            // The failed process may have exited already: flag it where it is.
            let failed = self.procs.get_mut(&failed_pid);
            let failed =
                failed.or_else(|| self.finished.iter_mut().rev().find(|p| p.pid == failed_pid));
            if let Some(p) = failed {
                p.flags.insert(what.kind());
            }
            out.push(Diagnosis {
                ktime_ns: ev.ktime_ns,
                pid: failed_pid,
                comm: failed_comm,
                what,
            });
        }

        let Some(mut p) = self.procs.remove(&ev.pid) else {
            return;
        };
        if !ev.comm.as_bytes().is_empty() {
            p.comm = ev.comm;
        }
        p.exit = Some(status);
        let what =
            match status {
                ExitStatus::Exited(0) => p.unrecovered.first().map(|&(addr, errno, reason)| {
                    What::ExitZeroAfterBindFailure {
                        addr,
                        errno,
                        reason,
                    }
                }),
                ExitStatus::Killed {
                    signal: SIGPIPE, ..
                } => Some(What::KilledBySigpipe {
                    after: p.last_epipe,
                }),
                _ => None,
            };
        if let Some(what) = what {
            p.diagnose(ev, what, out);
        }
        self.finish(p);
    }

    pub(super) fn finish(&mut self, mut p: Process) {
        if !p.noteworthy() && p.flags.is_empty() {
            return;
        }
        // What only served diagnosing a live process.
        p.said = foldhash::HashSet::default();
        p.unrecovered = Vec::new();
        p.last_epipe = None;
        if self.finished.len() >= MAX_FINISHED {
            self.finished.pop_front();
            self.evicted += 1;
        }
        self.finished.push_back(p);
    }
}
