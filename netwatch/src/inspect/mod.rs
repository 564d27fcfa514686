//! Looking at the host when a failure needs explaining: which sockets hold a port
//! (netlink sock_diag, the kernel's own socket table) and which processes have them
//! open (/proc/PID/fd), and a network namespace's ephemeral port range. Everything is
//! read inside the failing process's network namespace: a port or a sysctl means
//! nothing outside it.
//!
//! These lookups cost milliseconds, so they are rate-limited: a storm of EADDRINUSE
//! gets its holders looked up a few times a second, not a million times. The answers
//! are cached, and so is each process's namespace: a storm's events cost no syscall.

mod route;
mod sock_diag;

use std::{
    collections::HashMap,
    fs, io,
    os::fd::AsRawFd as _,
    time::{Duration, Instant},
};

use self::sock_diag::{DiagSocket, dump_port};
use crate::{
    diagnose::{BindPrivilege, FdUsage, HeldSocket, Holders},
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
        parse_range(&netns_sysctl(pid, "/proc/sys/net/ipv4/ip_local_port_range").ok()?)
    }

    /// What the kernel's privileged-port check looks at for `pid`: its namespace's
    /// `net.ipv4.ip_unprivileged_port_start` and its CAP_NET_BIND_SERVICE.
    pub fn bind_privilege(&mut self, pid: u32) -> BindPrivilege {
        const GONE: &str = "the process had exited before its namespace's \
            net.ipv4.ip_unprivileged_port_start and its capabilities could be read";
        let now = Instant::now();
        let unread = |why| BindPrivilege {
            port_start: Err(why),
            creds: Err(why),
        };
        if self.netns(pid, now).is_none() {
            return unread(GONE);
        }
        if !self.allow(now) {
            return unread("rate limit");
        }
        let creds = crate::procfs::bind_creds(pid).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                GONE
            } else {
                "its /proc/PID/status could not be read"
            }
        });
        let port_start = netns_sysctl(pid, "/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .map_err(|gone| {
                if gone {
                    GONE
                } else {
                    "net.ipv4.ip_unprivileged_port_start could not be read in its namespace"
                }
            })
            .and_then(|t| {
                t.trim()
                    .parse::<u16>()
                    .map_err(|_| "net.ipv4.ip_unprivileged_port_start is not a port number")
            });
        BindPrivilege { port_start, creds }
    }

    /// The descriptors in use when a call failed with `errno` for want of one: the
    /// process's (EMFILE) or the system's (ENFILE).
    pub fn fd_usage(&mut self, pid: u32, errno: i32) -> Result<FdUsage, &'static str> {
        if !self.allow(Instant::now()) {
            return Err("rate limit");
        }
        if errno == netwatch_common::errno::ENFILE {
            let nr = fs::read_to_string("/proc/sys/fs/file-nr").map_err(|_| "unreadable")?;
            let n: Vec<u64> = nr
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            return match n[..] {
                [allocated, _, max] => Ok(FdUsage::System { allocated, max }),
                _ => Err("fs.file-nr not understood"),
            };
        }
        crate::procfs::fd_usage(pid)
            .map(|(open, soft, hard)| FdUsage::Process { open, soft, hard })
            .ok_or("the process had exited")
    }

    /// `net.ipv4.tcp_syn_retries` in `pid`'s network namespace.
    pub fn syn_retries(&mut self, pid: u32) -> Result<u32, &'static str> {
        const GONE: &str = "the process had exited";
        let now = Instant::now();
        self.netns(pid, now).ok_or(GONE)?;
        if !self.allow(now) {
            return Err("rate limit");
        }
        netns_sysctl(pid, "/proc/sys/net/ipv4/tcp_syn_retries")
            .map_err(|gone| if gone { GONE } else { "unreadable" })?
            .trim()
            .parse()
            .map_err(|_| "not a number")
    }

    /// Whether `pid`'s network namespace has a route to `dst` (its main table for IPv4).
    pub fn has_route(&mut self, pid: u32, dst: &Addr) -> Result<bool, &'static str> {
        let Addr::Inet(sa) = dst else {
            return Err("not an IP destination");
        };
        if !self.allow(Instant::now()) {
            return Err("rate limit");
        }
        let (file, ip) = route::table_for(pid, sa.ip());
        let table = fs::read_to_string(file).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                "the process had exited"
            } else {
                "its routing table could not be read"
            }
        })?;
        Ok(match ip {
            std::net::IpAddr::V4(v4) => route::ipv4_has_route(&table, v4),
            std::net::IpAddr::V6(v6) => route::ipv6_has_route(&table, v6),
        })
    }
}

/// A sysctl file (`/proc/sys/...`) read in `pid`'s network namespace; the error says
/// whether the process is gone (true) or the file could not be read (false).
fn netns_sysctl(pid: u32, path: &'static str) -> Result<String, bool> {
    // Cached, it may have exited since: look again before entering its namespace
    // (in_netns would take ours for a gone process's).
    netns_id(pid).ok_or(true)?;
    in_netns(pid, move || fs::read_to_string(path))
        .map_err(|_| false)?
        .map_err(|_| false)
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
