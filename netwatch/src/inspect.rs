//! Looking at the host when a failure needs explaining: which sockets hold a port
//! (netlink sock_diag, the kernel's own socket table) and which processes have them
//! open (/proc/PID/fd), and a network namespace's ephemeral port range. Everything is
//! read inside the failing process's network namespace: a port or a sysctl means
//! nothing outside it.
//!
//! These lookups cost milliseconds, so they are rate-limited: a storm of EADDRINUSE
//! gets its holders looked up a few times a second, not a million times. The answers
//! are cached, and so is each process's namespace: a storm's events cost no syscall.

use std::{
    collections::HashMap,
    fs, io,
    mem::size_of,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use crate::{
    diagnose::{HeldSocket, Holders},
    event::{Addr, Comm, sock::TcpState},
};

/// Lookups allowed per second (the rest report "rate limit").
const LOOKUPS_PER_SECOND: u32 = 20;
/// A port's holders looked up this recently are reused, and so is a process's network
/// namespace (a pid reused within this time may be taken for the one before).
const CACHE_FOR: Duration = Duration::from_millis(200);
/// Entries kept per cache before it starts afresh.
const MAX_CACHED: usize = 1024;

pub struct Inspector {
    window: Instant,
    used: u32,
    /// pid -> the inode of its network namespace (None: gone or unreadable).
    netns: foldhash::HashMap<u32, (Instant, Option<u64>)>,
    cache: foldhash::HashMap<(u64, u16), (Instant, Holders)>,
    /// The answer while the rate limit holds.
    rate_limited: Holders,
}

impl Default for Inspector {
    fn default() -> Self {
        Self::new()
    }
}

impl Inspector {
    pub fn new() -> Self {
        Self {
            window: Instant::now(),
            used: 0,
            netns: foldhash::HashMap::default(),
            cache: foldhash::HashMap::default(),
            rate_limited: Holders::Unknown("rate limit".into()),
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.used = 0;
        }
        self.used += 1;
        self.used <= LOOKUPS_PER_SECOND
    }

    /// The inode of `pid`'s network namespace, read at most once per [`CACHE_FOR`].
    fn netns(&mut self, pid: u32, now: Instant) -> Option<u64> {
        if let Some(&(at, ns)) = self.netns.get(&pid)
            && now.duration_since(at) < CACHE_FOR
        {
            return ns;
        }
        let ns = netns_id(pid);
        if self.netns.len() >= MAX_CACHED {
            self.netns.clear();
        }
        self.netns.insert(pid, (now, ns));
        ns
    }

    /// Sockets using local `port` (TCP, or UDP for a datagram bind) in `pid`'s network
    /// namespace, with the processes that have them open.
    pub fn port_holders(&mut self, pid: u32, port: u16, udp: bool) -> &Holders {
        let now = Instant::now();
        let key = (self.netns(pid, now).unwrap_or(0), port);
        let fresh = self
            .cache
            .get(&key)
            .is_some_and(|(at, _)| now.duration_since(*at) < CACHE_FOR);
        if !fresh {
            if !self.allow(now) {
                return &self.rate_limited;
            }
            let protocol = if udp {
                libc::IPPROTO_UDP
            } else {
                libc::IPPROTO_TCP
            } as u8;
            let holders = match in_netns(pid, move || dump_port(port, protocol)) {
                Ok(Ok(sockets)) => with_owners(sockets),
                Ok(Err(e)) => Holders::Unknown(format!("sock_diag: {e}")),
                Err(e) => Holders::Unknown(e.to_string()),
            };
            if self.cache.len() >= MAX_CACHED {
                self.cache.clear();
            }
            self.cache.insert(key, (Instant::now(), holders));
        }
        &self.cache[&key].1
    }

    /// `net.ipv4.ip_local_port_range` in `pid`'s network namespace.
    /// None when the process is gone: its namespace's sysctl cannot be read then,
    /// and netwatch's own would be a guess.
    pub fn port_range(&mut self, pid: u32) -> Option<(u16, u16)> {
        let now = Instant::now();
        self.netns(pid, now)?;
        if !self.allow(now) {
            return None;
        }
        // Cached, it may have exited since: look again before entering its namespace
        // (in_netns would take ours for a gone process's).
        netns_id(pid)?;
        let text = in_netns(pid, || {
            fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        })
        .ok()?
        .ok()?;
        parse_range(&text)
    }
}

fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

/// The inode of `pid`'s network namespace (0 for "ours" when it cannot be read).
fn netns_id(pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Run `f` in `pid`'s network namespace, on a thread of its own (setns(2) with
/// CLONE_NEWNET changes only the calling thread, which then ends).
fn in_netns<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    use std::os::unix::fs::MetadataExt as _;
    let ours = netns_id(std::process::id());
    let theirs = match fs::metadata(format!("/proc/{pid}/ns/net")) {
        Ok(m) => Some(m.ino()),
        // Gone already: its namespace is most likely ours (the common case).
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // Without CAP_SYS_PTRACE the link cannot be read: looking in our own namespace
        // instead would answer about the wrong sockets.
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("reading /proc/{pid}/ns/net: {e} (needs CAP_SYS_PTRACE)"),
            ));
        }
    };
    if theirs.is_none() || theirs == ours {
        return Ok(f());
    }
    let ns = fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        // SAFETY: setns on an open namespace fd, for this thread only.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// A socket from the kernel's table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DiagSocket {
    state: u8,
    local: Addr,
    inode: u32,
}

// include/uapi/linux/sock_diag.h, inet_diag.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;

#[repr(C)]
#[derive(Clone, Copy)]
struct NlMsgHdr {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagSockId {
    sport: [u8; 2],
    dport: [u8; 2],
    src: [u8; 16],
    dst: [u8; 16],
    ifindex: u32,
    cookie: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: InetDiagSockId,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagMsg {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    id: InetDiagSockId,
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
}

/// Every socket of `protocol` (IPv4 and IPv6) whose local port is `port`.
fn dump_port(port: u16, protocol: u8) -> io::Result<Vec<DiagSocket>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        dump(family, protocol, &mut |m: &InetDiagMsg| {
            if u16::from_be_bytes(m.id.sport) == port {
                let local = match m.family as i32 {
                    libc::AF_INET => {
                        let ip = std::net::Ipv4Addr::new(
                            m.id.src[0],
                            m.id.src[1],
                            m.id.src[2],
                            m.id.src[3],
                        );
                        Addr::Inet((ip, port).into())
                    }
                    _ => Addr::Inet((std::net::Ipv6Addr::from(m.id.src), port).into()),
                };
                out.push(DiagSocket {
                    state: m.state,
                    local,
                    inode: m.inode,
                });
            }
        })?;
    }
    Ok(out)
}

fn dump(family: u8, protocol: u8, f: &mut dyn FnMut(&InetDiagMsg)) -> io::Result<()> {
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    #[repr(C)]
    struct Request {
        hdr: NlMsgHdr,
        req: InetDiagReqV2,
    }
    let req = Request {
        hdr: NlMsgHdr {
            len: size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
            seq: 1,
            pid: 0,
        },
        req: InetDiagReqV2 {
            family,
            protocol,
            ext: 0,
            pad: 0,
            states: u32::MAX,
            id: InetDiagSockId {
                sport: [0; 2],
                dport: [0; 2],
                src: [0; 16],
                dst: [0; 16],
                ifindex: 0,
                cookie: [0; 2],
            },
        },
    };
    // SAFETY: sending the bytes of a repr(C) struct.
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            (&raw const req).cast(),
            size_of::<Request>(),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receiving into our buffer.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse_batch(&buf[..n as usize], f)? {
            return Ok(());
        }
    }
}

/// One `recv` of a sock_diag dump: calls `f` for each socket message; true once the
/// dump is done. An `NLMSG_ERROR` carrying 0 is an acknowledgement, not an error.
fn parse_batch(mut data: &[u8], f: &mut dyn FnMut(&InetDiagMsg)) -> io::Result<bool> {
    while data.len() >= size_of::<NlMsgHdr>() {
        // SAFETY: length checked; read_unaligned of a plain struct.
        let hdr: NlMsgHdr = unsafe { data.as_ptr().cast::<NlMsgHdr>().read_unaligned() };
        let len = hdr.len as usize;
        if len < size_of::<NlMsgHdr>() || len > data.len() {
            return Err(io::Error::other("truncated netlink message"));
        }
        match hdr.kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let Some(b) = data.get(16..20) else {
                    return Err(io::Error::other("truncated netlink error message"));
                };
                let errno = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
            }
            _ => {
                let body = &data[size_of::<NlMsgHdr>()..len];
                if body.len() >= size_of::<InetDiagMsg>() {
                    // SAFETY: length checked; read_unaligned of a plain struct.
                    let m: InetDiagMsg =
                        unsafe { body.as_ptr().cast::<InetDiagMsg>().read_unaligned() };
                    f(&m);
                }
            }
        }
        // Messages are 4-byte aligned (NLMSG_ALIGN).
        let next = (len + 3) & !3;
        data = data.get(next..).unwrap_or_default();
    }
    Ok(false)
}

/// Attach owners: every process with an fd on each socket's inode.
fn with_owners(sockets: Vec<DiagSocket>) -> Holders {
    let wanted: Vec<u32> = sockets
        .iter()
        .map(|s| s.inode)
        .filter(|&i| i != 0)
        .collect();
    let (owners, unreadable) = if wanted.is_empty() {
        (HashMap::new(), 0)
    } else {
        inode_owners(&wanted)
    };
    // A socket with an inode has an owner: if it was not found while some processes'
    // fds could not be read, "no owner" would be a guess.
    if unreadable > 0 && wanted.iter().any(|i| !owners.contains_key(i)) {
        return Holders::Unknown(format!(
            "the fds of {unreadable} processes could not be read (needs CAP_DAC_READ_SEARCH or CAP_SYS_PTRACE)"
        ));
    }
    Holders::Sockets(
        sockets
            .into_iter()
            .map(|s| HeldSocket {
                state: TcpState(i32::from(s.state)),
                local: s.local,
                owners: owners.get(&s.inode).cloned().unwrap_or_default(),
            })
            .collect(),
    )
}

/// Scan /proc/*/fd for `socket:[inode]` links to the wanted inodes.
/// Also returns how many processes' fds could not be read (permission).
fn inode_owners(wanted: &[u32]) -> (HashMap<u32, Vec<(u32, Comm)>>, usize) {
    let mut owners: HashMap<u32, Vec<(u32, Comm)>> = HashMap::new();
    let mut unreadable = 0;
    let Ok(procs) = fs::read_dir("/proc") else {
        return (owners, 0);
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let fds = match fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(e) => {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    unreadable += 1;
                }
                continue;
            }
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            if wanted.contains(&inode) {
                let list = owners.entry(inode).or_default();
                if !list.iter().any(|(p, _)| *p == pid) {
                    let comm = fs::read(entry.path().join("comm")).unwrap_or_default();
                    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
                    list.push((pid, Comm::from_raw(comm)));
                }
            }
        }
    }
    (owners, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message: header, then `body`, padded to 4 bytes.
    fn nlmsg(kind: u16, body: &[u8]) -> Vec<u8> {
        let len = size_of::<NlMsgHdr>() + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]); // flags, seq, pid
        m.extend_from_slice(body);
        m.resize(len.next_multiple_of(4), 0);
        m
    }

    /// `struct nlmsgerr`: the error, then the request's header.
    fn nlmsg_error(errno: i32) -> Vec<u8> {
        let mut body = errno.to_ne_bytes().to_vec();
        body.extend_from_slice(&[0; 16]);
        nlmsg(NLMSG_ERROR, &body)
    }

    #[test]
    fn a_netlink_ack_is_not_an_error() {
        let mut seen = 0;
        let mut batch = nlmsg_error(0);
        batch.extend(nlmsg(NLMSG_DONE, &[0; 4]));
        assert!(parse_batch(&batch, &mut |_| seen += 1).unwrap());
        assert_eq!(seen, 0);

        let err = parse_batch(&nlmsg_error(-libc::EPERM), &mut |_| {}).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let truncated = &nlmsg(NLMSG_ERROR, &[])[..];
        assert!(parse_batch(truncated, &mut |_| {}).is_err());
        // Not done yet: the dump goes on in the next recv.
        assert!(!parse_batch(&nlmsg(SOCK_DIAG_BY_FAMILY, &[0; 8]), &mut |_| {}).unwrap());
    }

    #[test]
    fn parses_the_port_range_sysctl() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("40000 40001"), Some((40000, 40001)));
        assert_eq!(parse_range("x"), None);
    }

    /// Reading the kernel's socket table needs no privilege for one's own sockets.
    #[test]
    fn finds_the_listener_this_test_holds_and_its_owner() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut inspector = Inspector::new();
        let Holders::Sockets(sockets) = inspector
            .port_holders(std::process::id(), port, false)
            .clone()
        else {
            panic!("lookup failed")
        };
        assert_eq!(sockets.len(), 1, "{sockets:?}");
        assert_eq!(sockets[0].state, TcpState::LISTEN);
        assert_eq!(sockets[0].local.to_string(), format!("127.0.0.1:{port}"));
        assert!(
            sockets[0]
                .owners
                .iter()
                .any(|(pid, _)| *pid == std::process::id()),
            "{sockets:?}"
        );
    }
}
