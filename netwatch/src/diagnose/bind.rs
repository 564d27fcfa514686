//! Failed binds: who holds the port (a live listener, TIME_WAIT, a holder on its
//! way out), an address no interface has, and the failures a later listen recovers.

use netwatch_common::{Family, errno::EADDRINUSE, errno::EADDRNOTAVAIL};

use super::{
    Class, Classifier, Context, Diagnosis, HeldSocket, Holder, Holders, MAX_PENDING,
    MAX_UNRECOVERED, PendingRelease, Said, What,
};
use crate::event::{
    Event,
    bind::{Bind, SOCK_DGRAM},
    sock::TcpState,
};

impl Classifier {
    pub(super) fn bind(
        &mut self,
        ev: &Event,
        b: &Bind,
        ctx: &Context<'_>,
        out: &mut Vec<Diagnosis>,
    ) {
        if b.errno == 0 {
            // A datagram socket serves as soon as it is bound; a stream socket once
            // it listens (see Body::Listen).
            if b.sock_type == SOCK_DGRAM {
                self.proc(ev).unrecovered.clear();
            }
            return;
        }
        let p = self.proc(ev);
        *p.counts
            .entry((Class::of(b.errno), Family::Bind.name()))
            .or_default() += 1;
        if p.unrecovered.len() < MAX_UNRECOVERED && !p.unrecovered.contains(&(b.addr, b.errno)) {
            p.unrecovered.push((b.addr, b.errno));
        }
        match b.errno {
            EADDRINUSE => {
                let port = b.addr.port().unwrap_or(0);
                if let Some(Holders::Sockets(sockets)) = ctx.holders {
                    self.await_release(ev, port, sockets);
                }
                let what = |c: &mut Self| c.port_in_use(ev, port, ctx);
                self.say(ev, Said::InUse(port), what, out);
            }
            EADDRNOTAVAIL => {
                let what = |_: &mut Self| What::AddressNotLocal { addr: b.addr };
                self.say(ev, Said::NotLocal(b.addr), what, out);
            }
            _ => {}
        }
    }

    /// Remember that `ev`'s bind failed while other processes held the port: if one
    /// of them exits soon, that is worth saying. Once per failed process, port and
    /// holder while the first is pending (a storm does not queue one per failure).
    fn await_release(&mut self, ev: &Event, port: u16, sockets: &[HeldSocket]) {
        for (pid, _) in sockets.iter().flat_map(|s| &s.owners) {
            let waiting = self
                .pending
                .iter()
                .any(|r| r.failed_pid == ev.pid && r.port == port && r.holder == *pid);
            if *pid == ev.pid || waiting || self.pending.len() >= MAX_PENDING {
                continue;
            }
            self.pending.push(PendingRelease {
                failed_pid: ev.pid,
                failed_comm: ev.comm,
                port,
                at_ns: ev.ktime_ns,
                holder: *pid,
                holder_exiting: self.terminating.contains_key(pid),
            });
        }
    }

    fn port_in_use(&self, ev: &Event, port: u16, ctx: &Context<'_>) -> What {
        let sockets = match ctx.holders {
            Some(Holders::Sockets(s)) => s,
            Some(Holders::Unknown(why)) => {
                return What::PortInUse {
                    port,
                    why: why.clone(),
                };
            }
            None => {
                return What::PortInUse {
                    port,
                    why: "not looked up".into(),
                };
            }
        };
        let mut holders: Vec<Holder> = Vec::new();
        for s in sockets {
            for (pid, comm) in &s.owners {
                if holders.iter().any(|h| h.pid == *pid) {
                    continue;
                }
                let exiting = self
                    .terminating
                    .get(pid)
                    .map(|&(sig, at)| (sig, ev.ktime_ns.saturating_sub(at)));
                holders.push(Holder {
                    pid: *pid,
                    comm: *comm,
                    state: s.state,
                    exiting,
                    itself: *pid == ev.pid,
                });
            }
        }
        if !holders.is_empty() {
            return What::PortHeld { port, holders };
        }
        let time_wait = sockets
            .iter()
            .filter(|s| s.state == TcpState::TIME_WAIT)
            .count();
        match (time_wait, sockets.len()) {
            (0, 0) => What::PortFreed { port },
            (tw, n) if tw == n => What::PortTimeWait { port, sockets: tw },
            (_, n) => What::PortOrphaned {
                port,
                sockets: n,
                state: sockets[0].state,
            },
        }
    }
}
