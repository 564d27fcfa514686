//! `cargo xtask storm --kind bind|connect|write|read --count N [--cpu C]`: a hidden
//! subcommand the bench runs to make N failing syscalls of one class as fast as it can,
//! through libc directly (no std wrappers on the hot path).
//!
//! Every failure's errno is checked. The setup (sockets, listeners, reset connections)
//! happens before the timed loop; the loop is timed with both the wall clock and the
//! thread's CPU clock. It prints one line:
//!
//! ```text
//! storm kind=bind count=2000000 failures=2000000 errno=98 wall_ns=1234 cpu_ns=1200
//! ```
//!
//! | kind | the failing call | how it is made to fail, repeatably |
//! |---|---|---|
//! | `bind` | `bind` | EADDRINUSE: bind an unbound socket to 127.0.0.1:P, which a listener holds |
//! | `connect` | `connect` | EADDRNOTAVAIL: a socket bound (SO_REUSEADDR) to the source port of an established connection to a listener connects to that listener: the 4-tuple exists. A failed connect leaves the socket bound, so the same call fails again |
//! | `write` | `sendto` (`send`, MSG_NOSIGNAL) | EPIPE: a connection the peer reset (SO_LINGER 0), its ECONNRESET already consumed by a recv |
//! | `read` | `recvfrom` (`recv`) | ECONNRESET: only the first read after a reset fails, so connections are made and reset (SO_LINGER 0 on the accepted side) in an untimed set-up, as many at a time as RLIMIT_NOFILE allows; the timed loop reads each once |

use std::io;
use std::mem;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// No loop here runs longer than this: a storm that takes longer is broken.
const LOOP_LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Connect,
    Write,
    Read,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Bind, Kind::Connect, Kind::Write, Kind::Read];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Connect => "connect",
            Kind::Write => "write",
            Kind::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The errno every call of the loop must fail with.
    pub fn errno(self) -> i32 {
        match self {
            Kind::Bind => libc::EADDRINUSE,
            Kind::Connect => libc::EADDRNOTAVAIL,
            Kind::Write => libc::EPIPE,
            Kind::Read => libc::ECONNRESET,
        }
    }
}

/// What one storm did, as printed on its result line.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub kind: Kind,
    pub count: u64,
    pub failures: u64,
    pub errno: i32,
    pub wall_ns: u64,
    pub cpu_ns: u64,
}

impl Outcome {
    pub fn line(&self) -> String {
        format!(
            "storm kind={} count={} failures={} errno={} wall_ns={} cpu_ns={}",
            self.kind.name(),
            self.count,
            self.failures,
            self.errno,
            self.wall_ns,
            self.cpu_ns
        )
    }

    pub fn parse(line: &str) -> Option<Outcome> {
        let rest = line.strip_prefix("storm ")?;
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        Some(Outcome {
            kind: Kind::parse(field("kind")?)?,
            count: field("count")?.parse().ok()?,
            failures: field("failures")?.parse().ok()?,
            errno: field("errno")?.parse().ok()?,
            wall_ns: field("wall_ns")?.parse().ok()?,
            cpu_ns: field("cpu_ns")?.parse().ok()?,
        })
    }
}

/// Entry point of `cargo xtask storm ARGS`.
pub fn main(args: &[String]) -> Result<()> {
    let mut kind = None;
    let mut count = None;
    let mut cpu = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--kind" => {
                let v = value()?;
                kind = Some(Kind::parse(v).with_context(|| format!("unknown --kind {v}"))?);
            }
            "--count" => count = Some(value()?.parse::<u64>().context("--count")?),
            "--cpu" => cpu = Some(value()?.parse::<usize>().context("--cpu")?),
            _ => bail!("storm: unknown argument {a}"),
        }
    }
    let kind = kind.context("storm: --kind bind|connect|write|read is required")?;
    let count = count.context("storm: --count N is required")?;
    if let Some(cpu) = cpu {
        pin_self(cpu)?;
    }
    let outcome = run(kind, count)?;
    println!("{}", outcome.line());
    Ok(())
}

pub fn run(kind: Kind, count: u64) -> Result<Outcome> {
    match kind {
        Kind::Bind => storm_bind(count),
        Kind::Connect => storm_connect(count),
        Kind::Write => storm_write(count),
        Kind::Read => storm_read(count),
    }
}

/// Pins the calling thread (and what it starts later) to one CPU.
pub fn pin_self(cpu: usize) -> Result<()> {
    set_affinity(0, cpu).with_context(|| format!("pinning to CPU {cpu}"))
}

/// sched_setaffinity(pid, {cpu}); pid 0 is the calling thread. Async-signal-safe, so it
/// may run between fork and exec.
pub fn set_affinity(pid: libc::pid_t, cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is its empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    if cpu >= 8 * mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu was checked against the set's size; the set is a valid cpu_set_t of
    // the size passed.
    let r = unsafe {
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------
// Thin libc helpers (set-up only; the timed loops call libc directly).
// ---------------------------------------------------------------------------------

/// A file descriptor closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn check(r: libc::c_int, what: &str) -> Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error()).with_context(|| what.to_owned())
    } else {
        Ok(r)
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn tcp_socket() -> Result<Fd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    Ok(Fd(check(fd, "socket")?))
}

fn loopback(port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data.
    let mut a: libc::sockaddr_in = unsafe { mem::zeroed() };
    a.sin_family = libc::AF_INET as libc::sa_family_t;
    a.sin_port = port.to_be();
    a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    a
}

const SOCKADDR_IN_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

fn as_sockaddr(a: &libc::sockaddr_in) -> *const libc::sockaddr {
    (a as *const libc::sockaddr_in).cast()
}

fn bind(fd: &Fd, a: &libc::sockaddr_in) -> Result<()> {
    // SAFETY: a points to a sockaddr_in of the length given.
    let r = unsafe { libc::bind(fd.0, as_sockaddr(a), SOCKADDR_IN_LEN) };
    check(r, "bind").map(drop)
}

fn connect(fd: &Fd, a: &libc::sockaddr_in) -> Result<()> {
    // SAFETY: as in bind.
    let r = unsafe { libc::connect(fd.0, as_sockaddr(a), SOCKADDR_IN_LEN) };
    check(r, "connect").map(drop)
}

fn listen(fd: &Fd, backlog: i32) -> Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::listen(fd.0, backlog) }, "listen").map(drop)
}

fn accept(fd: &Fd) -> Result<Fd> {
    // SAFETY: null address pointers are allowed.
    let r = unsafe {
        libc::accept4(
            fd.0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    Ok(Fd(check(r, "accept")?))
}

fn local_addr(fd: &Fd) -> Result<libc::sockaddr_in> {
    // SAFETY: sockaddr_in is plain data; the length says how much the kernel may write.
    let mut a: libc::sockaddr_in = unsafe { mem::zeroed() };
    let mut len = SOCKADDR_IN_LEN;
    let r = unsafe { libc::getsockname(fd.0, (&raw mut a).cast(), &mut len) };
    check(r, "getsockname")?;
    Ok(a)
}

fn set_int_opt(fd: &Fd, level: i32, name: i32, value: i32, what: &str) -> Result<()> {
    // SAFETY: value is an int of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.0,
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    check(r, what).map(drop)
}

/// Closes `fd` with SO_LINGER {on, 0}: the kernel sends a RST instead of a FIN.
fn close_with_reset(fd: Fd) -> Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: linger is a struct linger of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    check(r, "setsockopt SO_LINGER")?;
    drop(fd);
    Ok(())
}

/// A listener on 127.0.0.1 on a port of the kernel's choosing.
fn listener(backlog: i32) -> Result<(Fd, libc::sockaddr_in)> {
    let l = tcp_socket()?;
    bind(&l, &loopback(0))?;
    listen(&l, backlog)?;
    let addr = local_addr(&l)?;
    Ok((l, addr))
}

/// Monotonic and thread-CPU clocks in ns.
fn clocks() -> (u64, u64) {
    let read = |clock| {
        // SAFETY: ts is written by the kernel.
        let mut ts: libc::timespec = unsafe { mem::zeroed() };
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    (
        read(libc::CLOCK_MONOTONIC),
        read(libc::CLOCK_THREAD_CPUTIME_ID),
    )
}

/// Runs `one` (a single failing call returning its raw result) `count` times, checks each
/// result is -1 with `want` errno, and times the whole loop. The time limit is checked
/// every 4096 calls.
fn timed_loop(
    kind: Kind,
    count: u64,
    mut one: impl FnMut(u64) -> libc::ssize_t,
) -> Result<Outcome> {
    let want = kind.errno();
    let deadline = Instant::now() + LOOP_LIMIT;
    let (w0, c0) = clocks();
    let mut failures = 0u64;
    for i in 0..count {
        let r = one(i);
        if r >= 0 {
            bail!("{}: call {i} succeeded (returned {r})", kind.name());
        }
        let e = errno();
        if e != want {
            bail!(
                "{}: call {i} failed with errno {e} ({}), expected {want}",
                kind.name(),
                io::Error::from_raw_os_error(e)
            );
        }
        failures += 1;
        if i % 4096 == 4095 && Instant::now() > deadline {
            bail!(
                "{}: still running after {LOOP_LIMIT:?} ({i} calls)",
                kind.name()
            );
        }
    }
    let (w1, c1) = clocks();
    Ok(Outcome {
        kind,
        count,
        failures,
        errno: want,
        wall_ns: w1 - w0,
        cpu_ns: c1 - c0,
    })
}

fn storm_bind(count: u64) -> Result<Outcome> {
    let (_hold, addr) = listener(16)?;
    let s = tcp_socket()?;
    let fd = s.0;
    timed_loop(Kind::Bind, count, |_| {
        // SAFETY: addr is a sockaddr_in of the length given.
        unsafe { libc::bind(fd, as_sockaddr(&addr), SOCKADDR_IN_LEN) as libc::ssize_t }
    })
}

fn storm_connect(count: u64) -> Result<Outcome> {
    let (l, to) = listener(16)?;
    // An established connection from an explicitly bound source port...
    let first = tcp_socket()?;
    set_int_opt(
        &first,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        1,
        "SO_REUSEADDR",
    )?;
    bind(&first, &loopback(0))?;
    let from = local_addr(&first)?;
    connect(&first, &to)?;
    let _accepted = accept(&l)?;
    // ... and a second socket bound to the same port: connecting it to the same
    // listener would duplicate the 4-tuple.
    let s = tcp_socket()?;
    set_int_opt(&s, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1, "SO_REUSEADDR")?;
    bind(&s, &from)?;
    let fd = s.0;
    timed_loop(Kind::Connect, count, |_| {
        // SAFETY: as in bind.
        unsafe { libc::connect(fd, as_sockaddr(&to), SOCKADDR_IN_LEN) as libc::ssize_t }
    })
}

/// Waits (bounded) for the reset to reach `c` and consumes its ECONNRESET with a recv.
fn consume_reset(c: &Fd) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 16];
    loop {
        // SAFETY: buf is writable for its length.
        let r = unsafe { libc::recv(c.0, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        let e = errno();
        if r < 0 && e == libc::ECONNRESET {
            return Ok(());
        }
        if r < 0 && e != libc::EAGAIN {
            bail!(
                "recv after the reset: {} (expected ECONNRESET)",
                io::Error::from_raw_os_error(e)
            );
        }
        if r >= 0 {
            bail!("recv after the reset returned {r} (expected ECONNRESET)");
        }
        if Instant::now() > deadline {
            bail!("no reset arrived within 5 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn storm_write(count: u64) -> Result<Outcome> {
    let (l, to) = listener(16)?;
    let c = tcp_socket()?;
    connect(&c, &to)?;
    close_with_reset(accept(&l)?)?;
    consume_reset(&c)?;
    let fd = c.0;
    let byte = *b"x";
    timed_loop(Kind::Write, count, |_| {
        // SAFETY: byte is readable for its length.
        unsafe { libc::send(fd, byte.as_ptr().cast(), 1, libc::MSG_NOSIGNAL) }
    })
}

/// Raises RLIMIT_NOFILE towards `want` (up to the hard limit, which needs
/// CAP_SYS_RESOURCE to raise); returns the soft limit now in force.
fn raise_nofile(want: u64) -> Result<u64> {
    // SAFETY: rl is written by the kernel.
    let mut rl: libc::rlimit = unsafe { mem::zeroed() };
    check(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) },
        "getrlimit",
    )?;
    if rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = want.min(rl.rlim_max);
        check(
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) },
            "setrlimit RLIMIT_NOFILE",
        )?;
    }
    Ok(rl.rlim_cur)
}

/// In batches as large as the descriptor limit allows: make and reset that many
/// connections (set-up, not timed), then read each once (timed).
fn storm_read(count: u64) -> Result<Outcome> {
    let limit = raise_nofile(count + 64)?;
    let batch = limit.saturating_sub(64).min(count);
    if batch == 0 {
        bail!("read: RLIMIT_NOFILE {limit} leaves no room for connections");
    }
    let (l, to) = listener(4096)?;
    let deadline = Instant::now() + LOOP_LIMIT;
    let mut total = Outcome {
        kind: Kind::Read,
        count,
        failures: 0,
        errno: Kind::Read.errno(),
        wall_ns: 0,
        cpu_ns: 0,
    };
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        let mut clients = Vec::with_capacity(usize::try_from(n)?);
        for i in 0..n {
            let c = tcp_socket()?;
            connect(&c, &to).with_context(|| format!("connection {}", done + i))?;
            close_with_reset(accept(&l)?)?;
            clients.push(c);
            if Instant::now() > deadline {
                bail!("read: still running after {LOOP_LIMIT:?}");
            }
        }
        let fds: Vec<libc::c_int> = clients.iter().map(|c| c.0).collect();
        let mut buf = [0u8; 16];
        let o = timed_loop(Kind::Read, n, |i| {
            let fd = fds[i as usize];
            // SAFETY: buf is writable for its length.
            unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) }
        })?;
        total.failures += o.failures;
        total.wall_ns += o.wall_ns;
        total.cpu_ns += o.cpu_ns;
        done += n;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_line_round_trips() {
        let o = Outcome {
            kind: Kind::Connect,
            count: 10,
            failures: 10,
            errno: 99,
            wall_ns: 1234,
            cpu_ns: 1000,
        };
        assert_eq!(Outcome::parse(&o.line()), Some(o));
        assert_eq!(Outcome::parse("storm kind=x count=1"), None);
    }

    /// Each kind fails with its errno, unprivileged, on loopback.
    #[test]
    fn every_kind_fails_as_documented() {
        for kind in Kind::ALL {
            let o = run(kind, 50).unwrap();
            assert_eq!((o.failures, o.errno), (50, kind.errno()), "{kind:?}");
        }
    }
}
