//! Failed sends and receives: EPIPE and ECONNRESET, with the peer and what reset it.

use netwatch_common::{Family, errno::ECONNRESET, errno::EPIPE};

use super::{Class, Classifier, Diagnosis, Said, What};
use crate::event::{Addr, Event, sockio::SockIo};

impl Classifier {
    pub(super) fn sockio(&mut self, ev: &Event, io: &SockIo, out: &mut Vec<Diagnosis>) {
        let socket = io.sock.socket().copied();
        let peer = socket.map_or(Addr::Unknown, |s| s.remote);
        let p = self.proc(ev);
        *p.counts
            .entry((Class::of(io.errno), Family::of(io.syscall).name()))
            .or_default() += 1;
        if io.errno == EPIPE {
            p.last_epipe = Some((io.syscall, peer));
        }
        if io.errno != ECONNRESET && io.errno != EPIPE {
            return;
        }
        let Some(s) = socket else { return };
        let rst = self
            .resets
            .get(&s.sk)
            .map(|&(at, _)| ev.ktime_ns.saturating_sub(at));
        let what = if io.errno == ECONNRESET {
            What::ResetByPeer {
                syscall: io.syscall,
                peer,
                rst_ago_ns: rst,
            }
        } else {
            What::PeerGone {
                syscall: io.syscall,
                peer,
                rst_ago_ns: rst,
            }
        };
        self.say(ev, Said::Socket(what.kind(), s.sk), |_| what, out);
    }
}
