//! End-to-end tests against the real kernel: they load netwatch's programs, provoke
//! real errors from real processes on loopback, and check what netwatch reports.
//! They need root and run one at a time (`cargo xtask test` does both). Every
//! assertion is about the pids these tests started: the host makes errors of its own.
//!
//! One module per source of events (`bind`, `connect`, `sockio`, `reset`, `signal`,
//! `process`) and per concern: the five field reports (`reports`), start-up and
//! attaching (`load`), bad input, a hostile host, lost output, storms and churn
//! (`robustness`), `metrics`, `cgroup` and the `filters`. The helpers more than one of them uses are
//! here; the harness is `../support`, shared with the other test binaries.

#[path = "../support/mod.rs"]
mod support;

mod bind;
mod cgroup;
mod connect;
mod filters;
mod lifecycle;
mod load;
mod metrics;
mod process;
mod reports;
mod reset;
mod robustness;
mod signal;
mod sockio;

use serde_json::Value;

use support::{Actor, Netwatch};

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the privileged tests need root: run them with `cargo xtask test`"
    );
}

/// Holds a loopback port, then, on `go`, binds it again (EADDRINUSE), binds an
/// address no interface has (EADDRNOTAVAIL), and does the same on IPv6 loopback.
const BIND_FAILURES: &str = r#"
hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen()
hold6 = socket.socket(socket.AF_INET6); hold6.bind(("::1", 0)); hold6.listen()
say(port=hold.getsockname()[1], port6=hold6.getsockname()[1])
go()
for family, addr in [(socket.AF_INET, ("127.0.0.1", hold.getsockname()[1])),
                     (socket.AF_INET, ("203.0.113.1", 8080)),
                     (socket.AF_INET6, ("::1", hold6.getsockname()[1]))]:
    s = socket.socket(family)
    try:
        s.bind(addr)
        say(err=0)
    except OSError as e:
        say(err=e.errno)
"#;

/// The prefix that runs an actor as `nobody` (65534) with the system's python (a
/// user's, such as pyenv's under /root, is not nobody's to run).
const AS_NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "env",
    "PATH=/usr/bin:/bin",
];

/// A client of the script's server: connects to the `port` it says, checks that it
/// saw this client (`peer`), and reads `n` bytes from it. The client, the server's
/// port and the client's.
fn read_from_server(server: &mut Actor, n: usize) -> (std::net::TcpStream, u16, u16) {
    let port: u16 = server.read("port").parse().unwrap();
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cport = client.local_addr().unwrap().port();
    assert_eq!(server.read("peer"), cport.to_string());
    let mut buf = vec![0u8; n];
    std::io::Read::read_exact(&mut client, &mut buf).unwrap();
    (client, port, cport)
}

/// Runs [`BIND_FAILURES`] to its end (its three failed binds made); its pid.
fn bind_failures_made() -> u32 {
    let mut actor = Actor::spawn(BIND_FAILURES);
    actor.read("port");
    actor.read("port6");
    actor.go();
    let pid = actor.pid();
    for _ in 0..3 {
        actor.read("err");
    }
    assert!(actor.wait().success());
    pid
}

fn is_bind_of(v: &Value, pid: u32, errno: i64) -> bool {
    v["kind"] == "bind" && v["pid"] == pid && v["errno"] == errno
}

/// A network namespace of the test's own, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("nw-{tag}-{}", std::process::id());
        let ip = |args: &[&str]| {
            let (status, _, err) = support::run_program("ip", args, &[]);
            assert!(status.success(), "ip {args:?}: {err}");
        };
        let _ = support::run_program("ip", &["netns", "del", &name], &[]);
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// `ip -n NS ARGS...`
    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        let (status, _, err) = support::run_program("ip", &all, &[]);
        assert!(status.success(), "ip {all:?}: {err}");
    }

    fn sysctl(&self, key_value: &str) {
        let (status, _, err) = support::run_program(
            "ip",
            &["netns", "exec", &self.name, "sysctl", "-qw", key_value],
            &[],
        );
        assert!(status.success(), "sysctl {key_value}: {err}");
    }

    fn prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = support::run_program("ip", &["netns", "del", &self.name], &[]);
    }
}

fn port_of(v: &Value, end: &str) -> Option<u64> {
    v["sock"][end]["port"].as_u64()
}

/// Make the kernel answer with RST when `stream` is closed (SO_LINGER 0), then close it.
fn reset(stream: std::net::TcpStream) {
    use std::os::fd::AsRawFd as _;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd and option struct.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(stream);
}

/// Connects to the test's listener on `go`, waits for the second `go` (after the
/// peer reset), then receives and sends.
fn reset_client(port: u16) -> String {
    format!(
        r#"
c = socket.socket(); c.connect(("127.0.0.1", {port}))
say(local=c.getsockname()[1])
go()
# recv waits for the peer's reset, if it has not arrived yet; bounded.
c.settimeout(20)
try:
    c.recv(10); say(recv=0)
except OSError as e:
    say(recv=e.errno)
try:
    c.send(b"x"); say(send=0)
except OSError as e:
    say(send=e.errno)
"#
    )
}

/// A client's recv and send after its peer reset the connection: ECONNRESET, then
/// EPIPE, with the 4-tuple, and the RST attributed to the client.
fn peer_reset(env: &[(&str, &str)]) -> Netwatch {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut nw = Netwatch::start_with_env(&["-j"], env);
    let mut client = Actor::spawn(&reset_client(port));
    let local: u16 = client.read("local").parse().unwrap();
    let (server_side, _) = listener.accept().unwrap();
    reset(server_side);
    client.go();
    assert_eq!(client.read("recv"), "104");
    assert_eq!(client.read("send"), "32");
    let pid = client.pid();
    assert!(client.wait().success());

    let recv = nw.wait_json("ECONNRESET recv", |v| {
        v["kind"] == "recv" && v["pid"] == pid
    });
    assert_eq!(recv["syscall"], "recvfrom");
    assert_eq!(recv["error"], "ECONNRESET");
    assert_eq!(
        (port_of(&recv, "local"), port_of(&recv, "remote")),
        (Some(local.into()), Some(port.into()))
    );
    assert_eq!(recv["sock"]["remote"]["ip"], "127.0.0.1");

    let send = nw.wait_json("EPIPE send", |v| v["kind"] == "send" && v["pid"] == pid);
    assert_eq!(send["syscall"], "sendto");
    assert_eq!(send["error"], "EPIPE");
    assert_eq!(
        (port_of(&send, "local"), port_of(&send, "remote")),
        (Some(local.into()), Some(port.into()))
    );

    // The RST arrives in softirq context: it must be the client's, not pid 0 and
    // not the test process that sent it.
    let rst = nw.wait_json("the reset received", |v| {
        v["kind"] == "reset" && v["direction"] == "received" && v["local"]["port"] == local
    });
    assert_eq!(rst["pid"], pid);
    assert_eq!(rst["comm"], "python3");
    assert_eq!(rst["owner_known"], true);
    assert_eq!(rst["remote"]["port"], port);
    let sent = nw.wait_json("the reset sent", |v| {
        v["kind"] == "reset" && v["direction"] == "sent" && v["remote"]["port"] == local
    });
    assert_eq!(sent["local"]["port"], port);
    assert_ne!(sent["pid"], pid, "the test process sent it, not the client");
    nw
}

/// Writes to a connection the peer reset, with SIGPIPE set to `disposition`.
fn sigpipe_writer(port: u16, disposition: &str) -> String {
    format!(
        r#"
import signal
signal.signal(signal.SIGPIPE, signal.{disposition})
c = socket.socket(); c.connect(("127.0.0.1", {port}))
say(local=c.getsockname()[1])
go()
# The reset is reported once as ECONNRESET (recv waits for it, bounded); every write
# after it is EPIPE.
c.settimeout(20)
try:
    c.recv(10)
except ConnectionResetError:
    pass
try:
    for i in range(20):
        c.send(b"x" * 1000); time.sleep(0.01)
except OSError as e:
    say(err=e.errno)
"#
    )
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A server that logs its bind failure and exits with `code`; with a second port,
/// it serves there instead.
fn daphne(port: u16, code: i32, fallback: Option<u16>) -> String {
    let fallback = fallback.map_or("None".to_owned(), |p| p.to_string());
    format!(
        r#"
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", {port})); s.listen()
except OSError as e:
    print("CRITICAL", e, file=sys.stderr)
    if {fallback} is not None:
        s = socket.socket(); s.bind(("127.0.0.1", {fallback})); s.listen()
    sys.exit({code})
"#
    )
}
