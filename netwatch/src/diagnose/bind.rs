//! Failed binds: who holds the port (a live listener, TIME_WAIT, a holder on its
//! way out), an address no interface has, and the failures a later listen recovers.

use netwatch_common::{Family, errno::EADDRINUSE, errno::EADDRNOTAVAIL};

use super::{
    BindPrivilege, BindRefusal, Class, Classifier, Context, Diagnosis, HeldSocket, Holder, Holders,
    MAX_PENDING, MAX_UNRECOVERED, PendingRelease, Said, What,
};
use crate::event::{
    Event,
    bind::{Bind, SOCK_DGRAM},
    sock::TcpState,
};
use crate::sockaddr::Addr;

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
        // A refused bind of a port (not of a Unix socket's path: file permissions).
        let refused = (matches!(b.errno, libc::EACCES | libc::EPERM) && b.addr.port().is_some())
            .then(|| refused(b.addr, b.errno, ctx.bind_privilege));
        let p = self.proc(ev);
        *p.counts
            .entry((Class::of(b.errno), Family::Bind.name()))
            .or_default() += 1;
        if p.unrecovered.len() < MAX_UNRECOVERED
            && !p
                .unrecovered
                .iter()
                .any(|&(a, e, _)| (a, e) == (b.addr, b.errno))
        {
            let reason = refused.as_ref().and_then(|w| match w {
                What::BindRefused { cause, .. } => Some(cause.reason()),
                _ => None,
            });
            p.unrecovered.push((b.addr, b.errno, reason));
        }
        if let Some(what) = refused {
            let port = b.addr.port().unwrap_or(0);
            self.say(ev, Said::BindRefused(port), |_| what, out);
            return;
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
}

/// Why a bind of `addr` failed with EACCES or EPERM, from what was read. The kernel
/// refuses a port below `ip_unprivileged_port_start` to a process without
/// CAP_NET_BIND_SERVICE with EACCES (net/ipv4/af_inet.c __inet_bind); anything else is
/// a policy: an LSM hook, or a cgroup BPF bind program (EPERM).
fn refused(addr: Addr, errno: i32, read: Option<BindPrivilege>) -> What {
    let port = addr.port().unwrap_or(0);
    let (port_start, creds) = match read {
        Some(r) => (r.port_start, r.creds),
        None => (Err("not looked up"), Err("not looked up")),
    };
    let cause = if errno != libc::EACCES {
        BindRefusal::Policy
    } else {
        match (port_start, creds) {
            (Ok(start), _) if port == 0 || port >= start => BindRefusal::Policy,
            (Ok(_), Ok(c)) if c.cap_net_bind_service => BindRefusal::Policy,
            (Ok(_), Ok(_)) => BindRefusal::PrivilegedPort,
            _ => BindRefusal::Unknown,
        }
    };
    let unread = match (port_start, creds) {
        (Err(why), _) => Some(why),
        (_, Err(why)) if cause == BindRefusal::Unknown => Some(why),
        _ => None,
    };
    What::BindRefused {
        addr,
        errno,
        cause,
        port_start: port_start.ok(),
        creds: creds.ok(),
        unread,
    }
}

impl Classifier {
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
