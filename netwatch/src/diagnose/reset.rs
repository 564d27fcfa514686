//! TCP resets, received and sent, kept per process for the summary and the
//! explanations of the EPIPE or ECONNRESET that follow.

use super::{Classifier, MAX_PEERS, MAX_SOCKETS};
use crate::event::{Event, reset::Direction, reset::Reset};

impl Classifier {
    pub(super) fn reset(&mut self, ev: &Event, r: &Reset) {
        if r.direction == Direction::Received && r.sk != 0 {
            if self.resets.len() >= MAX_SOCKETS {
                self.resets.clear();
            }
            self.resets.insert(r.sk, (ev.ktime_ns, r.remote));
        }
        if !r.owner_known {
            return;
        }
        let p = self.proc(ev);
        match r.direction {
            Direction::Received => p.resets_received += 1,
            Direction::Sent => p.resets_sent += 1,
        }
        if p.reset_peers.len() < MAX_PEERS {
            p.reset_peers.insert(r.remote.to_string());
        }
    }
}
