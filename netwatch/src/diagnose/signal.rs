//! SIGPIPE: its fate (ignored, caught, fatal), for the exit diagnosis.

use netwatch_common::signal::SIGPIPE;

use super::{Classifier, MAX_SOCKETS};
use crate::event::{Event, signal::Signal};

impl Classifier {
    pub(super) fn signal(&mut self, ev: &Event, s: &Signal) {
        if s.sig == SIGPIPE {
            *self.proc(ev).sigpipe.entry(s.fate.name()).or_default() += 1;
        } else {
            if self.terminating.len() >= MAX_SOCKETS {
                self.terminating.clear();
            }
            self.terminating
                .entry(ev.pid)
                .or_insert((s.sig, ev.ktime_ns));
        }
    }
}
