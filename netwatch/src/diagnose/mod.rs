//! Per-process diagnosis: a state machine over the event stream, in plain Rust with
//! no kernel in it. It is fed each decoded event with a [`Context`] the daemon looked
//! up at that moment (who holds a port, the ephemeral port range), and answers with
//! [`Diagnosis`]es: the one-line explanation a senior engineer would give.
//!
//! Processes are keyed by pid and forgotten at exit (after their exit diagnosis), so
//! a reused pid starts afresh.

mod bind;
mod connect;
mod listen;
mod process;
mod reset;
mod signal;
mod sockio;
mod what;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use netwatch_common::{ErrorClass, Family, ProcCounts, Syscall};

pub use self::what::{BindRefusal, Creds, FdUsage, Kind, What, syn_seconds};
use crate::event::{Addr, Body, Comm, Event, process::ExitStatus, sock::TcpState};

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
    /// For EACCES/EPERM on bind: what decides whether the port is privileged.
    pub bind_privilege: Option<BindPrivilege>,
    /// For ETIMEDOUT on connect: the namespace's `net.ipv4.tcp_syn_retries`.
    pub syn_retries: Option<Result<u32, &'static str>>,
    /// For EHOSTUNREACH/ENETUNREACH on connect: whether the namespace has a route.
    pub route: Option<Result<bool, &'static str>>,
    /// For EMFILE/ENFILE on accept or socket: the descriptors in use.
    pub fds: Option<Result<FdUsage, &'static str>>,
}

/// What the kernel's privileged-port check looks at, read for a refused bind; each
/// part is the reason it could not be read when it could not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindPrivilege {
    /// `net.ipv4.ip_unprivileged_port_start` in the process's network namespace.
    pub port_start: Result<u16, &'static str>,
    /// From /proc/PID/status (Uid, CapEff).
    pub creds: Result<Creds, &'static str>,
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
    pub flags: BTreeSet<Kind>,
    /// Failed binds not followed by a successful listen (or datagram bind).
    /// With the reason a diagnosis found for it.
    unrecovered: Vec<(Addr, i32, Option<&'static str>)>,
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
    /// EACCES/EPERM on bind to this port.
    BindRefused(u16),
    TimedOut(Addr),
    Unreachable(Addr),
    /// EMFILE or ENFILE, once per process.
    OutOfFds(i32),
    /// A diagnosis (by kind) about one socket.
    Socket(Kind, u64),
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
        if self.flags.contains(&Kind::ExitZeroAfterBindFailure) {
            s += 1000;
        }
        if self.flags.contains(&Kind::KilledBySigpipe) {
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

    /// Flags the process with `what`, and gives it as a diagnosis of `ev`.
    fn diagnose(&mut self, ev: &Event, what: What, out: &mut Vec<Diagnosis>) {
        self.flags.insert(what.kind());
        out.push(Diagnosis {
            ktime_ns: ev.ktime_ns,
            pid: ev.pid,
            comm: self.comm,
            what,
        });
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

    /// Whether what `ev` would be explained with is already said, so that looking the
    /// host up for it would change nothing: a storm of one failure (a server spinning
    /// on EMFILE, a client retrying a dead address) looks the host up once, not once
    /// per record, and leaves the lookups' rate budget to the other failures.
    pub fn explained(&self, ev: &Event) -> bool {
        use netwatch_common::errno::{EHOSTUNREACH, ENETUNREACH, ETIMEDOUT};
        let Some(p) = self.procs.get(&ev.pid) else {
            return false;
        };
        match &ev.body {
            // The lookup also names the exit-0 flag's reason, once per address.
            Body::Bind(b) if matches!(b.errno, libc::EACCES | libc::EPERM) => {
                b.addr.port().is_some_and(|port| {
                    p.said.contains(&Said::BindRefused(port))
                        && p.unrecovered
                            .iter()
                            .any(|&(a, e, _)| (a, e) == (b.addr, b.errno))
                })
            }
            Body::Connect(c) if c.errno == ETIMEDOUT => p.said.contains(&Said::TimedOut(c.addr)),
            Body::Connect(c) if matches!(c.errno, EHOSTUNREACH | ENETUNREACH) => {
                p.said.contains(&Said::Unreachable(c.addr))
            }
            Body::Listen(l) if l.errno != 0 => p.said.contains(&Said::OutOfFds(l.errno)),
            _ => false,
        }
    }

    /// Feed one event (with what was looked up for it); returns the diagnoses it
    /// makes, in order.
    pub fn feed(&mut self, ev: &Event, ctx: &Context<'_>) -> Vec<Diagnosis> {
        let mut out = Vec::new();
        self.expire(ev.ktime_ns);
        match &ev.body {
            Body::Bind(b) => self.bind(ev, b, ctx, &mut out),
            // A listen that succeeded: the failed binds before it were recovered.
            Body::Listen(l) if l.errno == 0 => self.proc(ev).unrecovered.clear(),
            Body::Listen(l) => self.out_of_fds(ev, l, ctx, &mut out),
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
        p.diagnose(ev, what, out);
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
            .any(|p| p.flags.contains(&Kind::ExitZeroAfterBindFailure))
    }

    /// Processes currently tracked (for memory accounting).
    pub fn tracked(&self) -> usize {
        self.procs.len()
    }
}

#[cfg(test)]
mod tests;
