//! The diagnoses: what each one is called (JSON `diagnosis`, summary flags) and the
//! sentence it prints.

use std::fmt::Write as _;

use netwatch_common::Syscall;

use super::Holder;
use crate::{
    errno,
    event::{Addr, Comm, signal, sock::TcpState},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// The Daphne bug: the process exited 0 with a failed bind never recovered.
    ExitZeroAfterBindFailure {
        addr: Addr,
        errno: i32,
        /// Why the bind was refused, when a diagnosis found out (EACCES, EPERM).
        reason: Option<&'static str>,
    },
    /// EADDRINUSE: live sockets of these processes hold the port.
    PortHeld { port: u16, holders: Vec<Holder> },
    /// EADDRINUSE: only TIME_WAIT sockets (no owner) hold the port.
    PortTimeWait { port: u16, sockets: usize },
    /// EADDRINUSE: sockets with no owning process (orphaned, closing) hold the port.
    PortOrphaned {
        port: u16,
        sockets: usize,
        state: TcpState,
    },
    /// EADDRINUSE, but no socket held the port when netwatch looked.
    PortFreed { port: u16 },
    /// EADDRINUSE; who holds the port was not looked up.
    PortInUse { port: u16, why: String },
    /// EADDRNOTAVAIL on bind: no local interface has the address.
    AddressNotLocal { addr: Addr },
    /// EADDRNOTAVAIL on connect from an unbound socket.
    EphemeralExhausted {
        dst: Addr,
        range: Option<(u16, u16)>,
    },
    /// EADDRNOTAVAIL on connect from an explicitly bound source port.
    TupleCollision { src_port: u16, dst: Addr },
    /// ECONNREFUSED: nothing listens there.
    ConnectionRefused { dst: Addr },
    /// Died of SIGPIPE, after an EPIPE on this syscall to this peer.
    KilledBySigpipe { after: Option<(Syscall, Addr)> },
    /// ECONNRESET: the peer reset the connection (RST seen this long before).
    ResetByPeer {
        syscall: Syscall,
        peer: Addr,
        rst_ago_ns: Option<u64>,
    },
    /// EPIPE: writing to a connection the peer closed or reset.
    PeerGone {
        syscall: Syscall,
        peer: Addr,
        rst_ago_ns: Option<u64>,
    },
    /// A port holder exited soon after a bind failed on its port: a restart race.
    PortReleased {
        /// The holder had been asked to terminate: a restart that did not wait.
        race: bool,
        port: u16,
        holder: u32,
        holder_comm: Comm,
        after_ns: u64,
    },
    /// EACCES or EPERM on bind: a privileged port, or a policy (LSM, cgroup BPF).
    BindRefused {
        addr: Addr,
        errno: i32,
        cause: BindRefusal,
        /// `net.ipv4.ip_unprivileged_port_start` in the process's network namespace.
        port_start: Option<u16>,
        /// The process's effective uid and whether CapEff has CAP_NET_BIND_SERVICE.
        creds: Option<Creds>,
        /// What could not be read (the process had exited, rate limit...).
        unread: Option<&'static str>,
    },
    /// ETIMEDOUT on connect: the SYN was never answered.
    ConnectTimedOut {
        dst: Addr,
        /// `net.ipv4.tcp_syn_retries` in the process's network namespace, or why not.
        syn_retries: Result<u32, &'static str>,
    },
    /// EHOSTUNREACH or ENETUNREACH on connect.
    Unreachable {
        dst: Addr,
        errno: i32,
        /// Whether the process's network namespace has a route to `dst`, or why not known.
        route: Result<bool, &'static str>,
    },
    /// EMFILE or ENFILE on accept, accept4 or socket: no file descriptor left.
    FdsExhausted {
        syscall: Syscall,
        errno: i32,
        /// The process's descriptors (EMFILE) or the system's (ENFILE), or why not read.
        usage: Result<FdUsage, &'static str>,
    },
}

/// How many file descriptors were in use when a call failed for want of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdUsage {
    /// EMFILE: the process's open descriptors and its RLIMIT_NOFILE.
    Process { open: u64, soft: u64, hard: u64 },
    /// ENFILE: `fs.file-nr`'s allocated count and `fs.file-max`.
    System { allocated: u64, max: u64 },
}

/// Why a bind was refused with EACCES or EPERM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindRefusal {
    /// The port is below `ip_unprivileged_port_start` and CAP_NET_BIND_SERVICE is missing.
    PrivilegedPort,
    /// The port was allowed (or the errno is not the port check's): an LSM or a cgroup
    /// BPF program refused it.
    Policy,
    /// What decides could not be read.
    Unknown,
}

impl BindRefusal {
    pub const fn name(self) -> &'static str {
        match self {
            Self::PrivilegedPort => "privileged_port",
            Self::Policy => "policy",
            Self::Unknown => "unknown",
        }
    }

    /// The reason an exit-0 flag names.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::PrivilegedPort => {
                "privileged port: below net.ipv4.ip_unprivileged_port_start without CAP_NET_BIND_SERVICE"
            }
            Self::Policy => "refused by an LSM or a cgroup BPF program",
            Self::Unknown => "permission denied, cause not read",
        }
    }
}

/// A process's credentials, as far as binding needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub cap_net_bind_service: bool,
}

/// The kernel's SYN retransmission timeout: 1 s, doubling, at most 120 s (TCP_RTO_MAX);
/// how long it tries with `retries` retransmissions, in seconds.
pub fn syn_seconds(retries: u32) -> u64 {
    (0..=retries.min(255))
        .map(|i| (1u64 << i.min(7)).min(120))
        .sum()
}

fn bind_refused(
    addr: &Addr,
    errno: i32,
    cause: BindRefusal,
    port_start: Option<u16>,
    creds: Option<Creds>,
    unread: Option<&'static str>,
) -> String {
    let e = errno::label(errno);
    let port = addr.port().unwrap_or(0);
    let start = port_start.map_or_else(|| "?".to_owned(), |s| s.to_string());
    match cause {
        BindRefusal::PrivilegedPort => {
            let uid = creds.map_or_else(|| "?".to_owned(), |c| c.uid.to_string());
            format!(
                "port {port} is below net.ipv4.ip_unprivileged_port_start ({start}) and uid {uid} has no \
                 CAP_NET_BIND_SERVICE"
            )
        }
        BindRefusal::Policy => {
            let allowed = match (port_start, creds) {
                _ if errno != libc::EACCES => {
                    "the privileged-port check answers EACCES, not this".to_owned()
                }
                (Some(s), _) if port == 0 || port >= s => {
                    format!("port {port} is not below net.ipv4.ip_unprivileged_port_start ({s})")
                }
                (_, Some(c)) => format!("uid {} has CAP_NET_BIND_SERVICE", c.uid),
                _ => "the port was allowed".to_owned(),
            };
            format!(
                "bind to {addr} refused ({e}) though {allowed}: something else refused it (an LSM such as \
                 SELinux or AppArmor, or a cgroup BPF program)"
            )
        }
        BindRefusal::Unknown => format!(
            "bind to {addr} refused ({e}); cannot tell whether the port is privileged: {}",
            unread.unwrap_or("not looked up")
        ),
    }
}

fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Which diagnosis a [`What`] is: its name (JSON `diagnosis`, summary FLAGS, the
/// metrics' `diagnosis` label) without its facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    ExitZeroAfterBindFailure,
    PortHeld,
    PortTimeWait,
    PortOrphaned,
    PortFreed,
    PortInUse,
    AddressNotLocal,
    EphemeralExhausted,
    TupleCollision,
    ConnectionRefused,
    KilledBySigpipe,
    ResetByPeer,
    PeerGone,
    PortReleased,
    BindRefused,
    ConnectTimedOut,
    Unreachable,
    FdsExhausted,
}

impl Kind {
    /// Every kind, in declaration order: the series the metrics expose at 0 before
    /// the first diagnosis of each kind.
    pub const ALL: [Self; 18] = [
        Self::ExitZeroAfterBindFailure,
        Self::PortHeld,
        Self::PortTimeWait,
        Self::PortOrphaned,
        Self::PortFreed,
        Self::PortInUse,
        Self::AddressNotLocal,
        Self::EphemeralExhausted,
        Self::TupleCollision,
        Self::ConnectionRefused,
        Self::KilledBySigpipe,
        Self::ResetByPeer,
        Self::PeerGone,
        Self::PortReleased,
        Self::BindRefused,
        Self::ConnectTimedOut,
        Self::Unreachable,
        Self::FdsExhausted,
    ];

    /// The stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ExitZeroAfterBindFailure => "exit_zero_after_bind_failure",
            Self::PortHeld => "port_held",
            Self::PortTimeWait => "port_time_wait",
            Self::PortOrphaned => "port_orphaned",
            Self::PortFreed => "port_freed",
            Self::PortInUse => "port_in_use",
            Self::AddressNotLocal => "address_not_local",
            Self::EphemeralExhausted => "ephemeral_ports_exhausted",
            Self::TupleCollision => "tuple_collision",
            Self::ConnectionRefused => "connection_refused",
            Self::KilledBySigpipe => "killed_by_sigpipe",
            Self::ResetByPeer => "reset_by_peer",
            Self::PeerGone => "peer_gone",
            Self::PortReleased => "port_released",
            Self::BindRefused => "bind_refused",
            Self::ConnectTimedOut => "connect_timed_out",
            Self::Unreachable => "destination_unreachable",
            Self::FdsExhausted => "file_descriptors_exhausted",
        }
    }
}

/// Flags are listed by name.
impl Ord for Kind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl What {
    pub fn kind(&self) -> Kind {
        match self {
            Self::ExitZeroAfterBindFailure { .. } => Kind::ExitZeroAfterBindFailure,
            Self::PortHeld { .. } => Kind::PortHeld,
            Self::PortTimeWait { .. } => Kind::PortTimeWait,
            Self::PortOrphaned { .. } => Kind::PortOrphaned,
            Self::PortFreed { .. } => Kind::PortFreed,
            Self::PortInUse { .. } => Kind::PortInUse,
            Self::AddressNotLocal { .. } => Kind::AddressNotLocal,
            Self::EphemeralExhausted { .. } => Kind::EphemeralExhausted,
            Self::TupleCollision { .. } => Kind::TupleCollision,
            Self::ConnectionRefused { .. } => Kind::ConnectionRefused,
            Self::KilledBySigpipe { .. } => Kind::KilledBySigpipe,
            Self::ResetByPeer { .. } => Kind::ResetByPeer,
            Self::PeerGone { .. } => Kind::PeerGone,
            Self::PortReleased { .. } => Kind::PortReleased,
            Self::BindRefused { .. } => Kind::BindRefused,
            Self::ConnectTimedOut { .. } => Kind::ConnectTimedOut,
            Self::Unreachable { .. } => Kind::Unreachable,
            Self::FdsExhausted { .. } => Kind::FdsExhausted,
        }
    }

    /// Stable name (JSON `diagnosis`, summary FLAGS): its [`Kind`]'s.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The one-line explanation.
    pub fn message(&self) -> String {
        match self {
            Self::ExitZeroAfterBindFailure {
                addr,
                errno,
                reason,
            } => {
                let reason = reason.map(|r| format!(": {r}")).unwrap_or_default();
                format!(
                    "exited 0 after bind failure ({} {addr}{reason}): callers will read success",
                    errno::label(*errno)
                )
            }
            Self::PortHeld { port, holders } => {
                let mut m = format!("port {port} is held by ");
                for (i, h) in holders.iter().enumerate() {
                    if i > 0 {
                        m.push_str(", ");
                    }
                    let _ = write!(m, "pid {} ({}, {})", h.pid, h.comm, h.state.name());
                    if h.itself {
                        m.push_str(" itself: the process already holds this port");
                    }
                    if let Some((sig, ago)) = h.exiting {
                        let _ =
                            write!(m, " exiting: got {} {} earlier", signal::name(sig), ms(ago));
                    }
                }
                m
            }
            Self::PortTimeWait { port, sockets } => format!(
                "port {port} is held only by {sockets} TIME_WAIT socket{} (no owner): earlier connections are \
                 closing; SO_REUSEADDR lets the bind succeed",
                if *sockets == 1 { "" } else { "s" }
            ),
            Self::PortOrphaned {
                port,
                sockets,
                state,
            } => format!(
                "port {port} is held by {sockets} socket(s) no process owns ({}): wait for them to close",
                state.name()
            ),
            Self::PortFreed { port } => {
                format!(
                    "port {port} was in use, but no socket held it when netwatch looked: released just after"
                )
            }
            Self::PortInUse { port, why } => {
                format!("port {port} is in use (holder not looked up: {why})")
            }
            Self::AddressNotLocal { addr } => {
                let ip = match addr {
                    Addr::Inet(sa) => sa.ip().to_string(),
                    other => other.to_string(),
                };
                format!("address not local: no interface has {ip}")
            }
            Self::EphemeralExhausted { dst, range } => {
                let mut m = format!("ephemeral ports exhausted towards {dst}");
                if let Some((lo, hi)) = range {
                    let _ = write!(
                        m,
                        " (net.ipv4.ip_local_port_range {lo}-{hi}: {} ports)",
                        u32::from(*hi) - u32::from(*lo) + 1
                    );
                }
                m.push_str("; other destinations still work");
                m
            }
            Self::TupleCollision { src_port, dst } => format!(
                "4-tuple in use: source port {src_port} is explicitly bound and a connection from it to {dst} \
                 still exists (TIME_WAIT collision), not port exhaustion"
            ),
            Self::ConnectionRefused { dst } => {
                format!("nothing listens on {dst} (connection refused)")
            }
            Self::KilledBySigpipe {
                after: Some((syscall, peer)),
            } => {
                format!(
                    "killed by SIGPIPE after EPIPE on {} to {peer}",
                    syscall.name()
                )
            }
            Self::KilledBySigpipe { after: None } => "killed by SIGPIPE".to_owned(),
            Self::ResetByPeer {
                syscall,
                peer,
                rst_ago_ns,
            } => match rst_ago_ns {
                Some(ago) => format!(
                    "{}: connection reset by peer {peer} (RST received {} earlier)",
                    syscall.name(),
                    ms(*ago)
                ),
                None => format!("{}: connection reset by peer {peer}", syscall.name()),
            },
            Self::PeerGone {
                syscall,
                peer,
                rst_ago_ns,
            } => match rst_ago_ns {
                Some(ago) => format!(
                    "{}: writing to a connection {peer} reset {} earlier (EPIPE; SIGPIPE unless ignored)",
                    syscall.name(),
                    ms(*ago)
                ),
                None => format!(
                    "{}: writing to a connection {peer} already closed (EPIPE; SIGPIPE unless ignored)",
                    syscall.name()
                ),
            },
            Self::PortReleased {
                port,
                holder,
                holder_comm,
                after_ns,
                race: true,
            } => format!(
                "port {port} released by pid {holder} ({holder_comm}) {} after the failed bind: a restart race \
                 (stop the old instance, wait for it to exit, then start the new one)",
                ms(*after_ns)
            ),
            Self::PortReleased {
                port,
                holder,
                holder_comm,
                after_ns,
                race: false,
            } => format!(
                "port {port} released by pid {holder} ({holder_comm}) {} after the failed bind: retrying then would have worked",
                ms(*after_ns)
            ),
            Self::BindRefused {
                addr,
                errno,
                cause,
                port_start,
                creds,
                unread,
            } => bind_refused(addr, *errno, *cause, *port_start, *creds, *unread),
            Self::FdsExhausted {
                syscall,
                errno,
                usage,
            } => {
                let what = match syscall {
                    Syscall::Socket => "cannot open a socket",
                    _ => "cannot accept the connections waiting in its queue",
                };
                let name = syscall.name();
                let label = errno::label(*errno);
                match usage {
                    Ok(FdUsage::Process { open, soft, hard }) => format!(
                        "{name}: {label}: {open} file descriptors open of its RLIMIT_NOFILE {soft} \
                         (hard {hard}): it {what}; raise the limit (ulimit -n, LimitNOFILE=) or \
                         close what leaks"
                    ),
                    Ok(FdUsage::System { allocated, max }) => format!(
                        "{name}: {label}: the system's file table is full ({allocated} of \
                         fs.file-max {max}): it {what}"
                    ),
                    Err(why) => {
                        format!("{name}: {label}: no file descriptor left: it {what} ({why})")
                    }
                }
            }
            Self::ConnectTimedOut { dst, syn_retries } => match syn_retries {
                Ok(n) => format!(
                    "connect to {dst} timed out: the SYN was never answered; net.ipv4.tcp_syn_retries is {n} in \
                     the process's network namespace, so the kernel tried for about {} s (unless the socket set \
                     TCP_SYNCNT or TCP_USER_TIMEOUT)",
                    syn_seconds(*n)
                ),
                Err(why) => format!(
                    "connect to {dst} timed out: the SYN was never answered (net.ipv4.tcp_syn_retries not read: {why})"
                ),
            },
            Self::Unreachable { dst, errno, route } => {
                let ip = match dst {
                    Addr::Inet(sa) => sa.ip().to_string(),
                    other => other.to_string(),
                };
                let e = errno::label(*errno);
                match route {
                    Ok(false) => {
                        format!("no route to {ip} in the process's network namespace ({e})")
                    }
                    Ok(true) => format!(
                        "{e} connecting to {dst}: a route exists: the host or a router answered unreachable \
                         (or no neighbour answered ARP/NDP)"
                    ),
                    Err(why) => format!("{e} connecting to {dst} (routes not read: {why})"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn names_lists_every_variant_in_order() {
        let addr = Addr::Inet((Ipv4Addr::LOCALHOST, 80).into());
        // One of each variant, in declaration order.
        let all = [
            What::ExitZeroAfterBindFailure {
                addr,
                errno: 98,
                reason: None,
            },
            What::PortHeld {
                port: 80,
                holders: Vec::new(),
            },
            What::PortTimeWait {
                port: 80,
                sockets: 1,
            },
            What::PortOrphaned {
                port: 80,
                sockets: 1,
                state: TcpState(7),
            },
            What::PortFreed { port: 80 },
            What::PortInUse {
                port: 80,
                why: String::new(),
            },
            What::AddressNotLocal { addr },
            What::EphemeralExhausted {
                dst: addr,
                range: None,
            },
            What::TupleCollision {
                src_port: 80,
                dst: addr,
            },
            What::ConnectionRefused { dst: addr },
            What::KilledBySigpipe { after: None },
            What::ResetByPeer {
                syscall: Syscall::Connect,
                peer: addr,
                rst_ago_ns: None,
            },
            What::PeerGone {
                syscall: Syscall::Connect,
                peer: addr,
                rst_ago_ns: None,
            },
            What::PortReleased {
                race: false,
                port: 80,
                holder: 1,
                holder_comm: Comm::from_raw(b"x"),
                after_ns: 0,
            },
            What::BindRefused {
                addr,
                errno: 13,
                cause: BindRefusal::Unknown,
                port_start: None,
                creds: None,
                unread: None,
            },
            What::ConnectTimedOut {
                dst: addr,
                syn_retries: Ok(1),
            },
            What::Unreachable {
                dst: addr,
                errno: 101,
                route: Ok(false),
            },
            What::FdsExhausted {
                syscall: Syscall::Accept,
                errno: 24,
                usage: Err("x"),
            },
        ];
        let kinds: Vec<Kind> = all.iter().map(What::kind).collect();
        assert_eq!(kinds, Kind::ALL);
    }

    #[test]
    fn syn_retries_take_about_two_to_the_n_plus_one_minus_one_seconds() {
        assert_eq!(syn_seconds(0), 1);
        assert_eq!(syn_seconds(1), 3);
        assert_eq!(syn_seconds(6), 127);
        // The timeout stops doubling at 120 s.
        assert_eq!(syn_seconds(7), 247);
        assert_eq!(syn_seconds(u32::MAX), 127 + 120 * 249);
    }
}
