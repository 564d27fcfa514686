//! Per-process diagnosis: a state machine over the event stream, in plain Rust with
//! no kernel in it. It is fed each decoded event with a [`Context`] the daemon looked
//! up at that moment (who holds a port, the ephemeral port range), and answers with
//! [`Diagnosis`]es: the one-line explanation a senior engineer would give.
//!
//! Processes are keyed by pid and forgotten at exit (after their exit diagnosis), so
//! a reused pid starts afresh.

mod what;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use netwatch_common::{
    ErrorClass, Family, ProcCounts, Syscall,
    errno::{EADDRINUSE, EADDRNOTAVAIL, ECONNREFUSED, ECONNRESET, EPIPE},
    signal::SIGPIPE,
};

pub use self::what::What;
use crate::event::{
    Addr, Body, Comm, Event,
    bind::{Bind, SOCK_DGRAM},
    connect::Connect,
    process::ExitStatus,
    reset::{Direction, Reset},
    signal::Signal,
    sock::TcpState,
    sockio::SockIo,
};

/// A holder that exits this soon after a failed bind made the failure a race.
pub const RELEASE_WINDOW_NS: u64 = 5_000_000_000;
/// Bounds on what is kept per process and overall (churn must not grow memory).
const MAX_UNRECOVERED: usize = 16;
const MAX_PEERS: usize = 8;
const MAX_SOCKETS: usize = 65536;
/// Diagnoses remembered as given, per process.
const MAX_SAID: usize = 256;
/// Failed binds waiting for their port's holders to exit.
const MAX_PENDING: usize = 1024;
/// Exited processes kept for the summary; older ones are only counted.
const MAX_FINISHED: usize = 1024;

/// What the daemon found out about the host when an event arrived (borrowed from the
/// lookups' cache: a storm's events share one answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// For EADDRINUSE on bind: the sockets using that local port.
    pub holders: Option<&'a Holders>,
    /// For EADDRNOTAVAIL on connect: the process's `net.ipv4.ip_local_port_range`.
    pub port_range: Option<(u16, u16)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holders {
    Sockets(Vec<HeldSocket>),
    /// Not looked up (rate limit during a storm, or the lookup failed).
    Unknown(String),
}

/// A socket using a port, from the kernel's socket table (netlink sock_diag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldSocket {
    pub state: TcpState,
    pub local: Addr,
    /// Every process with the socket open (a listener inherited across fork is held
    /// by each); empty for TIME_WAIT and orphaned sockets.
    pub owners: Vec<(u32, Comm)>,
}

/// A holder as a diagnosis names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub comm: Comm,
    pub state: TcpState,
    /// The holder had been asked to terminate (signal, ns before the failed bind).
    pub exiting: Option<(i32, u64)>,
    /// The holder is the process whose bind failed (it already has the port).
    pub itself: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub ktime_ns: u64,
    pub pid: u32,
    pub comm: Comm,
    pub what: What,
}

/// Error classes, counted per process and per syscall family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    AddrInUse,
    AddrNotAvail,
    Pipe,
    ConnReset,
    Other(i32),
}

impl Class {
    /// The class of a positive errno (netwatch-common decides: [`ErrorClass::of`]).
    pub fn of(errno: i32) -> Self {
        Self::from_counted(ErrorClass::of(errno), errno)
    }

    /// A class the kernel counted; `errno` stands for the unnamed ones (0 when the
    /// kernel kept their total only).
    fn from_counted(class: ErrorClass, errno: i32) -> Self {
        match class {
            ErrorClass::AddrInUse => Self::AddrInUse,
            ErrorClass::AddrNotAvail => Self::AddrNotAvail,
            ErrorClass::Pipe => Self::Pipe,
            ErrorClass::ConnReset => Self::ConnReset,
            ErrorClass::Other => Self::Other(errno),
        }
    }

    /// The name counts are shown under; `Other(0)` stands for errors of other errnos
    /// whose records were lost (the kernel counts them without their errno).
    pub fn label(self) -> String {
        match self {
            Self::Other(0) => "other".to_owned(),
            c => crate::errno::label(c.errno()).into_owned(),
        }
    }

    pub fn errno(self) -> i32 {
        match self {
            Self::AddrInUse => ErrorClass::AddrInUse.errno(),
            Self::AddrNotAvail => ErrorClass::AddrNotAvail.errno(),
            Self::Pipe => ErrorClass::Pipe.errno(),
            Self::ConnReset => ErrorClass::ConnReset.errno(),
            Self::Other(e) => e,
        }
    }
}

/// Everything known about one process, and what the summary shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub comm: Comm,
    /// Errors by class and syscall family.
    pub counts: BTreeMap<(Class, &'static str), u64>,
    pub resets_received: u64,
    pub resets_sent: u64,
    pub reset_peers: BTreeSet<String>,
    pub sigpipe: BTreeMap<&'static str, u64>,
    pub exit: Option<ExitStatus>,
    /// Names of the diagnoses that flag this process (`exit_zero_after_bind_failure`...).
    pub flags: BTreeSet<&'static str>,
    /// Failed binds not followed by a successful listen (or datagram bind).
    unrecovered: Vec<(Addr, i32)>,
    /// The last EPIPE: syscall and peer, for a SIGPIPE death.
    last_epipe: Option<(Syscall, Addr)>,
    /// Diagnoses already given, so a storm of one error explains it once.
    said: foldhash::HashSet<Said>,
}

/// What a diagnosis was about, to give it once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Said {
    /// EADDRINUSE on this port.
    InUse(u16),
    /// EADDRNOTAVAIL on bind to this address.
    NotLocal(Addr),
    /// EADDRNOTAVAIL on connect from this explicitly bound port to this destination.
    Collision(u16, Addr),
    /// EADDRNOTAVAIL on connect from an unbound socket to this destination.
    Exhausted(Addr),
    Refused(Addr),
    /// A diagnosis (by name) about one socket.
    Socket(&'static str, u64),
}

impl Process {
    /// How bad it looks, for sorting the summary (higher first).
    pub fn severity(&self) -> u32 {
        let count = |c: Class| {
            self.counts
                .iter()
                .filter(|((k, _), _)| *k == c)
                .map(|(_, n)| *n)
                .sum::<u64>()
        };
        let mut s = 0;
        if self.flags.contains(What::EXIT_ZERO_AFTER_BIND_FAILURE) {
            s += 1000;
        }
        if self.flags.contains(What::KILLED_BY_SIGPIPE) {
            s += 500;
        }
        if count(Class::AddrInUse) + count(Class::AddrNotAvail) > 0 {
            s += 100;
        }
        if count(Class::Pipe) + count(Class::ConnReset) > 0 || self.resets_received > 0 {
            s += 50;
        }
        if self
            .counts
            .keys()
            .any(|(c, _)| matches!(c, Class::Other(_)))
        {
            s += 10;
        }
        s
    }

    pub fn total_errors(&self) -> u64 {
        self.counts.values().sum()
    }

    fn noteworthy(&self) -> bool {
        !self.counts.is_empty()
            || self.resets_received + self.resets_sent > 0
            || !self.sigpipe.is_empty()
    }
}

/// A failed bind whose port holders were alive: if one exits soon, say so.
#[derive(Debug)]
struct PendingRelease {
    failed_pid: u32,
    failed_comm: Comm,
    port: u16,
    at_ns: u64,
    holder: u32,
    /// The holder had been asked to terminate when the bind failed.
    holder_exiting: bool,
}

#[derive(Debug, Default)]
pub struct Classifier {
    procs: foldhash::HashMap<u32, Process>,
    /// Processes that exited, kept for the summary (bounded; only noteworthy ones).
    finished: VecDeque<Process>,
    /// Resets received, by socket: to explain a later ECONNRESET on that socket.
    resets: HashMap<u64, (u64, Addr)>,
    /// Termination signals (SIGINT, SIGTERM...) by target pid: holders on their way out.
    terminating: HashMap<u32, (i32, u64)>,
    pending: Vec<PendingRelease>,
    /// See [`Classifier::evicted`].
    evicted: u64,
}

impl Classifier {
    pub fn new() -> Self {
        Self::default()
    }

    fn proc(&mut self, ev: &Event) -> &mut Process {
        let p = self.procs.entry(ev.pid).or_insert_with(|| Process {
            pid: ev.pid,
            ..Process::default()
        });
        if !ev.comm.as_bytes().is_empty() {
            p.comm = ev.comm;
        }
        p
    }

    /// Feed one event (with what was looked up for it); returns the diagnoses it
    /// makes, in order.
    pub fn feed(&mut self, ev: &Event, ctx: &Context<'_>) -> Vec<Diagnosis> {
        let mut out = Vec::new();
        self.expire(ev.ktime_ns);
        match &ev.body {
            Body::Bind(b) => self.bind(ev, b, ctx, &mut out),
            Body::Listen(_) => self.proc(ev).unrecovered.clear(),
            Body::Connect(c) => self.connect(ev, c, ctx, &mut out),
            Body::SockIo(io) => self.sockio(ev, io, &mut out),
            Body::Reset(r) => self.reset(ev, r),
            Body::Signal(s) => self.signal(ev, s),
            Body::Exit(e) => self.exit(ev, e.status, &mut out),
            Body::Fork(f) => {
                // A pid seen again as a new child is a new process.
                if let Some(old) = self.procs.remove(&f.child_pid) {
                    self.finish(old);
                }
            }
            Body::Exec(_) => {}
        }
        out
    }

    /// Give the diagnosis `what` makes, unless this process was already told about
    /// `key` (a storm of one error is explained once, and costs nothing after that).
    fn say(
        &mut self,
        ev: &Event,
        key: Said,
        what: impl FnOnce(&mut Self) -> What,
        out: &mut Vec<Diagnosis>,
    ) {
        let p = self.proc(ev);
        if p.said.len() >= MAX_SAID || p.said.contains(&key) {
            return;
        }
        let what = what(self);
        let p = self.proc(ev);
        p.said.insert(key);
        p.flags.insert(what.name());
        out.push(Diagnosis {
            ktime_ns: ev.ktime_ns,
            pid: ev.pid,
            comm: p.comm,
            what,
        });
    }

    fn bind(&mut self, ev: &Event, b: &Bind, ctx: &Context<'_>, out: &mut Vec<Diagnosis>) {
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

    fn connect(&mut self, ev: &Event, c: &Connect, ctx: &Context<'_>, out: &mut Vec<Diagnosis>) {
        if c.errno == 0 {
            return;
        }
        *self
            .proc(ev)
            .counts
            .entry((Class::of(c.errno), Family::Connect.name()))
            .or_default() += 1;
        match c.errno {
            EADDRNOTAVAIL => {
                // Linux returns EADDRNOTAVAIL both when no ephemeral port is left for
                // this destination and when an explicitly bound source port would
                // recreate a 4-tuple still in use (TIME_WAIT): tell them apart by the
                // bind (net/ipv4/inet_hashtables.c __inet_hash_connect / __inet_check_established).
                let bound = c.sock.socket().filter(|s| s.port_bound);
                let (key, what) = match bound {
                    Some(s) => {
                        let src_port = s.local.port().unwrap_or(0);
                        (
                            Said::Collision(src_port, c.addr),
                            What::TupleCollision {
                                src_port,
                                dst: c.addr,
                            },
                        )
                    }
                    None => (
                        Said::Exhausted(c.addr),
                        What::EphemeralExhausted {
                            dst: c.addr,
                            range: ctx.port_range,
                        },
                    ),
                };
                self.say(ev, key, |_| what, out);
            }
            ECONNREFUSED if c.addr.port().is_some() => {
                let what = What::ConnectionRefused { dst: c.addr };
                self.say(ev, Said::Refused(c.addr), |_| what, out);
            }
            _ => {}
        }
    }

    fn sockio(&mut self, ev: &Event, io: &SockIo, out: &mut Vec<Diagnosis>) {
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
        self.say(ev, Said::Socket(what.name(), s.sk), |_| what, out);
    }

    fn reset(&mut self, ev: &Event, r: &Reset) {
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

    fn signal(&mut self, ev: &Event, s: &Signal) {
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

    fn exit(&mut self, ev: &Event, status: ExitStatus, out: &mut Vec<Diagnosis>) {
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
                p.flags.insert(what.name());
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
        let what = match status {
            ExitStatus::Exited(0) => p
                .unrecovered
                .first()
                .map(|&(addr, errno)| What::ExitZeroAfterBindFailure { addr, errno }),
            ExitStatus::Killed {
                signal: SIGPIPE, ..
            } => Some(What::KilledBySigpipe {
                after: p.last_epipe,
            }),
            _ => None,
        };
        if let Some(what) = what {
            p.flags.insert(what.name());
            out.push(Diagnosis {
                ktime_ns: ev.ktime_ns,
                pid: ev.pid,
                comm: p.comm,
                what,
            });
        }
        self.finish(p);
    }

    fn finish(&mut self, mut p: Process) {
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

    /// Exited processes left out of the summary to bound memory (oldest first).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forget pending releases older than the window.
    fn expire(&mut self, now_ns: u64) {
        self.pending
            .retain(|r| now_ns.saturating_sub(r.at_ns) <= RELEASE_WINDOW_NS);
    }

    /// Add the failures of `pid` whose records the ring buffer could not take (the
    /// kernel counts them per process: netwatch-common's ProcCounts) to the counts
    /// taken from the stream, which makes them exact. Call before feeding its exit.
    pub fn lost_counts(&mut self, pid: u32, lost: &ProcCounts, comm: impl FnOnce() -> Comm) {
        let p = match self.procs.get_mut(&pid) {
            Some(p) => p,
            None => self.procs.entry(pid).or_insert_with(|| Process {
                pid,
                comm: comm(),
                ..Process::default()
            }),
        };
        for family in &Family::ALL[..Family::COUNTED] {
            for class in ErrorClass::NAMED.into_iter().chain([ErrorClass::Other]) {
                let n = lost.n[ProcCounts::index(class, *family)];
                if n > 0 {
                    // Other errnos: the kernel keeps their total only (errno 0).
                    let class = Class::from_counted(class, 0);
                    *p.counts.entry((class, family.name())).or_default() += n;
                }
            }
        }
    }

    /// Every process with something to report, worst first.
    pub fn summary(&self) -> Vec<&Process> {
        let mut all: Vec<&Process> = self
            .finished
            .iter()
            .chain(
                self.procs
                    .values()
                    .filter(|p| p.noteworthy() || !p.flags.is_empty()),
            )
            .collect();
        all.sort_by(|a, b| {
            b.severity()
                .cmp(&a.severity())
                .then(b.total_errors().cmp(&a.total_errors()))
                .then(a.pid.cmp(&b.pid))
        });
        all
    }

    /// Whether any process exited 0 after an unrecovered bind failure.
    pub fn any_flagged_exit_zero(&self) -> bool {
        self.summary()
            .iter()
            .any(|p| p.flags.contains(What::EXIT_ZERO_AFTER_BIND_FAILURE))
    }

    /// Processes currently tracked (for memory accounting).
    pub fn tracked(&self) -> usize {
        self.procs.len()
    }
}

#[cfg(test)]
mod tests;
