//! End-to-end tests against the real kernel: they load netwatch's programs, provoke
//! real errors from real processes on loopback, and check what netwatch reports.
//! They need root and run one at a time (`cargo xtask test` does both). Every
//! assertion is about the pids these tests started: the host makes errors of its own.

mod support;

use std::{fs, time::Duration};

use serde_json::Value;
use support::{Actor, Netwatch, run};

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

fn is_bind_of(v: &Value, pid: u32, errno: i64) -> bool {
    v["kind"] == "bind" && v["pid"] == pid && v["errno"] == errno
}

#[test]
fn json_reports_each_failed_bind_with_pid_errno_address_and_port() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn(BIND_FAILURES);
    let port: u16 = actor.read("port").parse().unwrap();
    let port6: u16 = actor.read("port6").parse().unwrap();
    actor.go();
    assert_eq!(actor.read("err"), "98");
    assert_eq!(actor.read("err"), "99");
    assert_eq!(actor.read("err"), "98");
    let pid = actor.pid();
    assert!(actor.wait().success());

    let inuse = nw.wait_json("the EADDRINUSE bind", |v| {
        is_bind_of(v, pid, 98) && v["addr"]["family"] == "inet"
    });
    assert_eq!(inuse["comm"], "python3");
    assert_eq!(inuse["tid"], pid, "single-threaded: tid == pid");
    assert_eq!(inuse["syscall"], "bind");
    assert_eq!(inuse["error"], "EADDRINUSE");
    assert_eq!(inuse["addr"]["ip"], "127.0.0.1");
    assert_eq!(inuse["addr"]["port"], port);
    assert!(inuse["fd"].as_i64().unwrap() >= 3);
    assert!(inuse["time"].as_str().unwrap().ends_with('Z'));

    let notavail = nw.wait_json("the EADDRNOTAVAIL bind", |v| is_bind_of(v, pid, 99));
    assert_eq!(notavail["error"], "EADDRNOTAVAIL");
    assert_eq!(notavail["addr"]["ip"], "203.0.113.1");
    assert_eq!(notavail["addr"]["port"], 8080);

    let inuse6 = nw.wait_json("the IPv6 EADDRINUSE bind", |v| {
        is_bind_of(v, pid, 98) && v["addr"]["family"] == "inet6"
    });
    assert_eq!(inuse6["addr"]["ip"], "::1");
    assert_eq!(inuse6["addr"]["port"], port6);

    let (status, _, stderr) = nw.stop();
    assert!(
        status.success(),
        "Ctrl-C must exit 0: {status:?}, stderr: {stderr}"
    );
}

#[test]
fn pid_filter_shows_the_watched_process_only() {
    require_root();
    let mut watched = Actor::spawn(BIND_FAILURES);
    let mut other = Actor::spawn(BIND_FAILURES);
    let (wpid, opid) = (watched.pid(), other.pid());
    let mut nw = Netwatch::start(&["-j", "-p", &wpid.to_string()]);
    for a in [&mut watched, &mut other] {
        a.read("port");
        a.read("port6");
        a.go();
        for _ in 0..3 {
            a.read("err");
        }
    }
    assert!(watched.wait().success());
    assert!(other.wait().success());

    nw.wait_json("the watched process's EADDRINUSE", |v| {
        is_bind_of(v, wpid, 98)
    });
    nw.wait_json("the watched process's EADDRNOTAVAIL", |v| {
        is_bind_of(v, wpid, 99)
    });
    // Both processes are done; stopping drains everything the kernel recorded.
    let (status, seen, _) = nw.stop();
    assert!(status.success());
    let leaked: Vec<&String> = seen
        .iter()
        .filter(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| !v["pid"].is_null() && v["pid"] != wpid)
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "events from unwatched processes (other pid {opid}): {leaked:?}"
    );
}

#[test]
fn text_output_has_a_header_and_one_line_per_failure() {
    require_root();
    let mut nw = Netwatch::start(&[]);
    let mut actor = Actor::spawn(BIND_FAILURES);
    let port = actor.read("port");
    actor.read("port6");
    actor.go();
    let pid = actor.pid();
    assert!(actor.wait().success());
    let line = nw.wait_line("the EADDRINUSE line", |l| {
        l.split_whitespace().nth(1) == Some(&pid.to_string()) && l.contains("EADDRINUSE")
    });
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols[1..],
        [
            &pid.to_string(),
            &pid.to_string(),
            "python3",
            "bind",
            "EADDRINUSE",
            &format!("127.0.0.1:{port}")
        ]
    );
    let (status, seen, _) = nw.stop_with(libc::SIGTERM);
    assert!(status.success(), "SIGTERM must exit 0: {status:?}");
    let header: Vec<&str> = seen[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["TIME", "PID", "TID", "COMM", "SYSCALL", "ERRNO", "DETAIL"]
    );
}

#[test]
fn without_privileges_it_names_the_missing_capabilities() {
    require_root();
    // Drop to an unprivileged user: no capabilities at all.
    let (status, out, err) = support::run_program(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            support::NETWATCH,
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "stdout: {out} stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("netwatch: missing capability CAP_BPF and CAP_PERFMON"),
        "{err}"
    );
    assert!(err.contains("sudo netwatch"), "{err}");
}

/// A tracefs view of the running kernel without `syscalls:sys_exit_bind`: every
/// other tracepoint directory is a symlink to the real one.
struct TracefsWithout {
    dir: std::path::PathBuf,
}

impl TracefsWithout {
    fn new(missing_category: &str, missing: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("netwatch-test-tracefs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let real = std::path::Path::new("/sys/kernel/tracing/events");
        for category in fs::read_dir(real).unwrap().flatten() {
            if !category.file_type().unwrap().is_dir() {
                continue;
            }
            let cat = category.file_name();
            fs::create_dir_all(dir.join("events").join(&cat)).unwrap();
            for tp in fs::read_dir(category.path()).unwrap().flatten() {
                if cat == missing_category && tp.file_name() == missing {
                    continue;
                }
                std::os::unix::fs::symlink(
                    tp.path(),
                    dir.join("events").join(&cat).join(tp.file_name()),
                )
                .unwrap();
            }
        }
        Self { dir }
    }
}

impl Drop for TracefsWithout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_missing_tracepoint_disables_only_its_source_with_a_warning() {
    require_root();
    let fake = TracefsWithout::new("signal", "signal_generate");
    let mut nw =
        Netwatch::start_with_env(&["-j"], &[("NETWATCH_TRACEFS", fake.dir.to_str().unwrap())]);
    // A SIGPIPE death: the EPIPE and the exit still arrive, the signal cannot.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut dies = Actor::spawn(&sigpipe_writer(port, "SIG_DFL"));
    dies.read("local");
    let (peer, _) = listener.accept().unwrap();
    reset(peer);
    dies.go();
    let pid = dies.pid();
    dies.wait();
    nw.wait_json("the EPIPE", |v| v["kind"] == "send" && v["pid"] == pid);
    nw.wait_json("the SIGPIPE death", |v| {
        v["kind"] == "exit" && v["pid"] == pid
    });
    nw.sync();
    assert!(
        nw.json_seen().iter().all(|v| v["kind"] != "signal"),
        "{:?}",
        nw.seen()
    );
    let (status, _, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(
        warnings,
        [
            "netwatch: warning: signal: tracepoint signal:signal_generate does not exist on this kernel"
        ],
        "{stderr}"
    );
}

/// On every kernel CI boots (this host's, Debian's 6.1 and 6.12), every source
/// attaches and nothing is switched off: no warning at all.
#[test]
fn on_this_kernel_every_source_attaches_without_a_warning() {
    require_root();
    let (status, stdout, stderr) =
        support::run_program(support::NETWATCH, &["-j", "--", "true"], &[]);
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let ready = stderr
        .lines()
        .find(|l| l.contains("ready: tracing"))
        .unwrap_or_else(|| panic!("no ready line: {stderr}"));
    for source in [
        "bind", "listen", "connect", "sockio", "reset", "signal", "process",
    ] {
        assert!(
            ready.contains(&format!("{source},"))
                || ready.contains(&format!("{source} ("))
                || ready.contains(&format!("{source})")),
            "{source} not attached: {ready}"
        );
    }
    assert!(stdout.contains(r#""kind":"summary_end""#), "{stdout}");
}

const CONNECT_REFUSED: &str = r#"
s = socket.socket()
try:
    s.connect(("127.0.0.1", 1))
    say(connect=0)
except OSError as e:
    say(connect=e.errno)
"#;

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

#[test]
fn connect_failures_exhaustion_in_a_netns_and_refused() {
    require_root();
    let ns = Netns::new("exhaust");
    // Two ephemeral ports: the third connection to one destination finds none.
    ns.sysctl("net.ipv4.ip_local_port_range=40000 40001");
    let mut nw = Netwatch::start(&["-j"]);
    let mut exhaust = Actor::spawn_in(
        &ns.prefix(),
        r#"
srv = socket.socket(); srv.bind(("127.0.0.1", 8080)); srv.listen(16)
held = []
go()
for i in range(10):
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", 8080)); held.append(c)
    except OSError as e:
        say(connect=e.errno, held=len(held))
        break
"#,
    );
    exhaust.go();
    assert_eq!(
        exhaust.read("connect"),
        "99",
        "EADDRNOTAVAIL once the range is used up"
    );
    assert_eq!(exhaust.read("held"), "2");
    let epid = exhaust.pid();
    assert!(exhaust.wait().success());

    // A unix-domain connect to a missing path first: not a network failure, not shown,
    // so the first connect event of this pid is the refused one.
    let mut refused = Actor::spawn(&format!(
        r#"
u = socket.socket(socket.AF_UNIX)
try:
    u.connect("/nonexistent/netwatch-test.sock")
except OSError as e:
    say(unix=e.errno)
{CONNECT_REFUSED}"#
    ));
    assert_eq!(refused.read("unix"), "2", "ENOENT");
    assert_eq!(refused.read("connect"), "111");
    let rpid = refused.pid();
    assert!(refused.wait().success());

    let v = nw.wait_json("EADDRNOTAVAIL connect", |v| {
        v["kind"] == "connect" && v["pid"] == epid
    });
    assert_eq!(v["error"], "EADDRNOTAVAIL");
    assert_eq!(v["comm"], "python3");
    assert_eq!(v["addr"]["ip"], "127.0.0.1");
    assert_eq!(v["addr"]["port"], 8080);
    assert_eq!(v["sock"]["proto"], "tcp");
    assert_eq!(
        v["sock"]["port_bound"], false,
        "not explicitly bound: exhaustion, not a collision"
    );
    assert_eq!(v["after_einprogress"], false);

    let v = nw.wait_json("ECONNREFUSED connect", |v| {
        v["kind"] == "connect" && v["pid"] == rpid
    });
    assert_eq!(v["error"], "ECONNREFUSED");
    assert_eq!(v["syscall"], "connect");
    assert_eq!(v["addr"]["port"], 1);
    nw.finish();
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

#[test]
fn peer_reset_gives_econnreset_then_epipe_and_the_reset_goes_to_the_socket_owner() {
    require_root();
    peer_reset(&[]).finish();
}

/// What the kernels before 6.3 (no `sock_send_length`) see: socket I/O traced at the
/// syscall exits, forced on this kernel.
#[test]
fn socket_io_at_the_syscall_exits_reports_the_same_errors() {
    require_root();
    let exits = [("NETWATCH_SOCKIO", "exits")];
    let sockio_at_exits = |stderr: &str| {
        assert!(
            stderr.contains("sockio (at syscall exits)"),
            "the ready line names the path: {stderr}"
        );
    };
    let (status, _, stderr) = peer_reset(&exits).stop();
    assert!(status.success(), "{stderr}");
    sockio_at_exits(&stderr);
    let (status, _, stderr) = pipe_epipe(&exits).stop();
    assert!(status.success(), "{stderr}");
    sockio_at_exits(&stderr);
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

#[test]
fn epipe_on_a_pipe_is_reported_once_per_call() {
    require_root();
    pipe_epipe(&[]).finish();
}

/// write and writev to a pipe without readers, SIGPIPE ignored: one EPIPE each.
fn pipe_epipe(env: &[(&str, &str)]) -> Netwatch {
    let mut nw = Netwatch::start_with_env(&["-j"], env);
    let mut writer = Actor::spawn(
        r#"
import signal
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
r, w = os.pipe()
os.close(r)
say(fd=w)
for call in (lambda: os.write(w, b"x"), lambda: os.writev(w, [b"x"])):
    try:
        call()
        say(err=0)
    except OSError as e:
        say(err=e.errno)
"#,
    );
    let fd = writer.read("fd");
    assert_eq!(writer.read("err"), "32");
    assert_eq!(writer.read("err"), "32");
    let pid = writer.pid();
    assert!(writer.wait().success());
    nw.wait_json("the writer's exit", |v| {
        v["kind"] == "exit" && v["pid"] == pid
    });
    nw.sync();
    let sends: Vec<Value> = nw
        .json_seen()
        .into_iter()
        .filter(|v| v["kind"] == "send" && v["pid"] == pid)
        .collect();
    let calls: Vec<&str> = sends.iter().filter_map(|v| v["syscall"].as_str()).collect();
    assert_eq!(calls, ["write", "writev"], "{sends:?}");
    for v in &sends {
        assert_eq!(v["error"], "EPIPE");
        assert_eq!(v["fd"].to_string(), fd);
        assert_eq!(v["sock"]["proto"], "none", "a pipe, not a socket: {v}");
    }
    nw
}

#[test]
fn sendfile_to_a_client_that_left_mid_transfer_is_epipe() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    let mut server = Actor::spawn(
        r#"
import tempfile
f = tempfile.TemporaryFile(); f.write(b"x" * (32 << 20)); f.flush()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
say(port=srv.getsockname()[1])
a, peer = srv.accept()
say(peer=peer[1])
sent = 0
try:
    while sent < (32 << 20):
        n = os.sendfile(a.fileno(), f.fileno(), sent, 1 << 20)
        if n == 0:
            break
        sent += n
    say(err=0)
except OSError as e:
    say(err=e.errno)
"#,
    );
    let port: u16 = server.read("port").parse().unwrap();
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cport = client.local_addr().unwrap().port();
    assert_eq!(server.read("peer"), cport.to_string());
    let mut buf = [0u8; 65536];
    std::io::Read::read_exact(&mut client, &mut buf).unwrap();
    reset(client);
    let err = server.read("err");
    assert!(
        err == "32" || err == "104",
        "sendfile ended with errno {err}"
    );
    let pid = server.pid();
    assert!(server.wait().success());

    let v = nw.wait_json("the sendfile64 error", |v| {
        v["kind"] == "send" && v["pid"] == pid
    });
    assert_eq!(v["syscall"], "sendfile64");
    assert_eq!(v["errno"].to_string(), err);
    assert_eq!(
        (port_of(&v, "local"), port_of(&v, "remote")),
        (Some(port.into()), Some(cport.into()))
    );
    nw.finish();
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

#[test]
fn sigpipe_ignored_keeps_running_and_sigpipe_default_kills() {
    require_root();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut nw = Netwatch::start(&["-j"]);
    let mut ignores = Actor::spawn(&sigpipe_writer(port, "SIG_IGN"));
    let mut dies = Actor::spawn(&sigpipe_writer(port, "SIG_DFL"));
    for a in [&mut ignores, &mut dies] {
        a.read("local");
        let (peer, _) = listener.accept().unwrap();
        reset(peer);
    }
    ignores.go();
    dies.go();
    assert_eq!(ignores.read("err"), "32");
    let (ipid, dpid) = (ignores.pid(), dies.pid());
    assert!(ignores.wait().success());
    let status = dies.wait();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");

    let sig = nw.wait_json("ignored SIGPIPE", |v| {
        v["kind"] == "signal" && v["pid"] == ipid
    });
    assert_eq!(
        (sig["signal"].as_str(), sig["fate"].as_str()),
        (Some("SIGPIPE"), Some("ignored"))
    );
    let exit = nw.wait_json("the ignoring process's exit", |v| {
        v["kind"] == "exit" && v["pid"] == ipid
    });
    assert_eq!(exit["status"], "exit 0");

    let sig = nw.wait_json("fatal SIGPIPE", |v| {
        v["kind"] == "signal" && v["pid"] == dpid
    });
    assert_eq!(sig["fate"], "fatal");
    nw.wait_json("the EPIPE before it", |v| {
        v["kind"] == "send" && v["pid"] == dpid && v["error"] == "EPIPE"
    });
    let exit = nw.wait_json("the SIGPIPE death", |v| {
        v["kind"] == "exit" && v["pid"] == dpid
    });
    assert_eq!(exit["status"], "killed by SIGPIPE");
    assert_eq!(exit["signal"], "SIGPIPE");
    nw.finish();
}

#[test]
fn exit_status_is_reported_once_per_thread_group() {
    require_root();
    let mut three = Actor::spawn("go()\nos._exit(3)");
    let mut killed = Actor::spawn("go()\ntime.sleep(30)");
    let mut zero = Actor::spawn(
        r#"
import threading
go()
ts = [threading.Thread(target=time.sleep, args=(0.05,)) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
"#,
    );
    let pids = [three.pid(), killed.pid(), zero.pid()];
    let args: Vec<String> = pids
        .iter()
        .flat_map(|p| ["-p".to_owned(), p.to_string()])
        .collect();
    let mut nw = Netwatch::start(
        &["-j"]
            .into_iter()
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>(),
    );
    three.go();
    killed.go();
    zero.go();
    assert_eq!(three.wait().code(), Some(3));
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(pids[1] as i32, libc::SIGKILL) };
    killed.wait();
    assert!(zero.wait().success());

    for (pid, status) in pids.iter().zip(["exit 3", "killed by SIGKILL", "exit 0"]) {
        let v = nw.wait_json(status, |v| v["kind"] == "exit" && v["pid"] == *pid);
        assert_eq!(v["status"], status);
    }
    // Stopping drains everything the kernel recorded.
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    for pid in pids {
        let n = seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "exit" && v["pid"] == pid)
            .count();
        assert_eq!(n, 1, "pid {pid}: one exit per process, not per thread");
    }
}

/// Holds a loopback port, and on `go` forks a child that binds it (EADDRINUSE).
const FORKS_A_FAILING_CHILD: &str = r#"
hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen()
port = hold.getsockname()[1]
go()
child = os.fork()
if child == 0:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        pass
    os._exit(0)
say(child=child)
os.waitpid(child, 0)
"#;

#[test]
fn pid_filter_follows_children_forked_after_start() {
    require_root();
    let mut parent = Actor::spawn(FORKS_A_FAILING_CHILD);
    let mut nw = Netwatch::start(&["-j", "-p", &parent.pid().to_string()]);
    parent.go();
    let child: u32 = parent.read("child").parse().unwrap();
    assert!(parent.wait().success());
    let v = nw.wait_json("the child's EADDRINUSE", |v| {
        v["kind"] == "bind" && v["pid"] == child
    });
    assert_eq!(v["error"], "EADDRINUSE");
    nw.finish();
}

#[test]
fn command_mode_sees_early_errors_and_returns_the_command_status() {
    require_root();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    // The failing bind is the first thing the command does.
    let script = format!(
        "import socket, sys\ns = socket.socket()\ntry:\n    s.bind(('127.0.0.1', {port}))\nexcept OSError:\n    sys.exit(7)"
    );
    let (status, out, err) = run(&["-j", "--", "python3", "-c", &script], &[]);
    assert_eq!(status.code(), Some(7), "CMD's status; stderr: {err}");
    let events: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let bind = events
        .iter()
        .find(|v| v["kind"] == "bind" && v["addr"]["port"] == port)
        .unwrap_or_else(|| panic!("no bind event in {out}"));
    assert_eq!(bind["error"], "EADDRINUSE");
    assert_eq!(bind["comm"], "python3");
    let exit = events
        .iter()
        .find(|v| v["kind"] == "exit" && v["pid"] == bind["pid"]);
    assert_eq!(
        exit.map(|v| v["status"].clone()),
        Some("exit 7".into()),
        "{out}"
    );

    let (status, _, err) = run(&["--", "sh", "-c", "kill -KILL $$"], &[]);
    assert_eq!(status.code(), Some(128 + 9), "{err}");
}

/// netwatch with piped stdout and stderr, once ready: the child (stdout still in it,
/// for the test to close), and stderr's lines as they come.
fn spawn_ready(args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(support::NETWATCH)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning netwatch");
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = rx.recv_timeout(support::TIMEOUT);
    assert!(
        ready
            .as_deref()
            .is_ok_and(|l| l.starts_with("netwatch: ready")),
        "not ready: {ready:?}"
    );
    (child, rx)
}

/// Waits up to the test timeout for `path` to exist, then fails the bind of
/// `daphne` (the port is held) and exits 0.
fn daphne_after(path: &std::path::Path, port: u16) -> String {
    format!(
        "import os, time\n\
         deadline = time.monotonic() + {}\n\
         while not os.path.exists({path:?}) and time.monotonic() < deadline:\n    time.sleep(0.01)\n{}",
        support::TIMEOUT.as_secs(),
        daphne(port, 0, None)
    )
}

#[test]
fn losing_the_output_keeps_tracing_the_command_and_its_exit_status() {
    require_root();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();

    // `netwatch --check -- CMD | head -0`: the reader leaves before CMD's failed bind;
    // the check still sees it.
    let go = std::env::temp_dir().join(format!("netwatch-test-go-{}", std::process::id()));
    let _ = fs::remove_file(&go);
    let script = daphne_after(&go, port);
    let (mut child, stderr) = spawn_ready(&["-j", "--check", "--", "python3", "-c", &script]);
    drop(child.stdout.take());
    fs::write(&go, "").unwrap();
    let status = support::wait_bounded(&mut child);
    fs::remove_file(&go).unwrap();
    let err: Vec<String> = stderr.try_iter().collect();
    assert_eq!(status.code(), Some(86), "{err:?}");
    let said: Vec<&String> = err
        .iter()
        .filter(|l| l.contains("the stream stops here"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {err:?}");
    assert!(
        said[0].starts_with("netwatch: warning: writing to stdout: Broken pipe"),
        "{err:?}"
    );

    // A full disk: the same, and CMD's own status otherwise.
    let script = daphne(port, 0, None);
    let daphne_under = |flags: &[&str]| {
        let args: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["--", "python3", "-c", &script])
            .collect();
        run(&args, &[])
    };
    let (status, _, err) = daphne_under(&["-o", "/dev/full", "--check"]);
    assert_eq!(status.code(), Some(86), "{err}");
    let said = err.matches("writing to /dev/full: No space left on device");
    assert_eq!(said.count(), 1, "{err}");
    let (status, _, err) = run(&["-o", "/dev/full", "--", "sh", "-c", "exit 3"], &[]);
    assert_eq!(status.code(), Some(3), "{err}");
    // Nothing printed at all: the status is the whole report.
    let (status, out, err) = daphne_under(&["--quiet", "--check"]);
    assert_eq!(status.code(), Some(86), "{err}");
    assert!(out.is_empty(), "{out}");
}

#[test]
fn a_reader_that_left_ends_a_quiet_trace() {
    require_root();
    // Nothing to report: the only watched process sleeps.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let (mut child, _stderr) = spawn_ready(&["-p", &sleeper.id().to_string()]);
    drop(child.stdout.take());
    let status = support::wait_bounded(&mut child);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_thread_id_traces_its_process_and_repeats_count_once() {
    require_root();
    let mut actor = Actor::spawn(
        r#"
import threading
def fail():
    go()
    s = socket.socket()
    try:
        s.bind(("203.0.113.1", 1))
    except OSError as e:
        say(err=e.errno)
t = threading.Thread(target=fail); t.start()
say(tid=t.native_id)
t.join()
"#,
    );
    let tid = actor.read("tid");
    let pid = actor.pid().to_string();
    assert_ne!(tid, pid);
    let mut nw = Netwatch::start(&["-j", "-p", &tid, "-p", &pid, "-p", &tid]);
    assert!(
        nw.ready_line()
            .contains(&format!("tracing pid {pid} and their children")),
        "one process, once: {}",
        nw.ready_line()
    );
    actor.go();
    assert_eq!(actor.read("err"), "99");
    let v = nw.wait_json("the thread's failed bind", |v| {
        v["kind"] == "bind" && v["pid"] == actor.pid()
    });
    assert_eq!(v["tid"].to_string(), tid, "{v}");
    assert!(actor.wait().success());
    let (_, _, err) = nw.stop();
    assert!(
        err.contains(&format!(
            "netwatch: -p {tid} is a thread of process {pid} (python3): tracing process {pid}"
        )),
        "{err}"
    );
}

#[test]
fn command_that_cannot_start_exits_127_or_126() {
    require_root();
    let (status, _, err) = run(&["--", "/nonexistent/netwatch-test-cmd"], &[]);
    assert_eq!(status.code(), Some(127), "{err}");
    assert!(
        err.contains("netwatch: /nonexistent/netwatch-test-cmd: command not found"),
        "{err}"
    );
    // A hostile name reaches the terminal escaped, never as control characters.
    let (status, _, err) = run(&["--", "/nonexistent/\x1b[2Jnetwatch\nline"], &[]);
    assert_eq!(status.code(), Some(127), "{err}");
    assert!(
        err.contains("netwatch: /nonexistent/\\x1b[2Jnetwatch\\x0aline: command not found"),
        "{err:?}"
    );
    assert!(!err.contains('\x1b'), "{err:?}");
    // A file without execute permission.
    let path = std::env::temp_dir().join(format!("netwatch-test-noexec-{}", std::process::id()));
    fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
    let (status, _, err) = run(&["--", path.to_str().unwrap()], &[]);
    fs::remove_file(&path).unwrap();
    assert_eq!(status.code(), Some(126), "{err}");
    assert!(err.contains("permission denied (not executable)"), "{err}");
}

#[test]
fn errors_of_a_non_main_thread_belong_to_the_process_with_the_thread_id() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn(
        r#"
import threading
hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen()
go()
def work():
    say(tid=threading.get_native_id())
    s = socket.socket()
    try:
        s.bind(hold.getsockname())
    except OSError as e:
        say(err=e.errno)
t = threading.Thread(target=work); t.start(); t.join()
"#,
    );
    actor.go();
    let tid: u32 = actor.read("tid").parse().unwrap();
    assert_eq!(actor.read("err"), "98");
    let pid = actor.pid();
    assert_ne!(tid, pid);
    assert!(actor.wait().success());
    let v = nw.wait_json("the thread's bind", |v| {
        v["kind"] == "bind" && v["tid"] == tid
    });
    assert_eq!(v["pid"], pid);
    nw.finish();
}

// ---------------------------------------------------------------------------------
// The five field reports (../shared/SCENARIOS.md), each reproduced with real
// processes and asserted on netwatch's diagnosis.
// ---------------------------------------------------------------------------------

fn diagnoses(events: &[Value], pid: u32) -> Vec<&Value> {
    events
        .iter()
        .filter(|v| v["kind"] == "diagnosis" && v["pid"] == pid)
        .collect()
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

fn our_comm() -> String {
    let comm = fs::read_to_string("/proc/self/comm").unwrap();
    comm.trim_end().to_owned()
}

#[test]
fn report_1_daphne_exit_zero_after_bind_failure_is_flagged_and_check_fails() {
    require_root();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();

    let (status, out, err) = run(
        &[
            "-j",
            "--check",
            "--",
            "python3",
            "-c",
            &daphne(port, 0, None),
        ],
        &[],
    );
    assert_eq!(
        status.code(),
        Some(86),
        "--check's documented code; stderr: {err}"
    );
    let events = json_lines(&out);
    let bind = events
        .iter()
        .find(|v| v["kind"] == "bind" && v["addr"]["port"] == port)
        .expect("the failed bind");
    let pid = bind["pid"].as_u64().unwrap() as u32;
    let d = diagnoses(&events, pid);
    let held_by = d
        .iter()
        .find(|v| v["diagnosis"] == "port_held")
        .expect("the holder is named");
    assert_eq!(held_by["holders"][0]["pid"], std::process::id());
    assert_eq!(held_by["holders"][0]["comm"], our_comm());
    assert_eq!(held_by["holders"][0]["state"], "LISTEN");
    let flag = d
        .iter()
        .find(|v| v["diagnosis"] == "exit_zero_after_bind_failure")
        .expect("flagged");
    assert_eq!(
        flag["message"],
        format!(
            "exited 0 after bind failure (EADDRINUSE 127.0.0.1:{port}): callers will read success"
        )
    );
    let summary = events
        .iter()
        .find(|v| v["kind"] == "summary" && v["pid"] == pid)
        .expect("in the summary");
    assert_eq!(summary["counts"]["EADDRINUSE"]["bind"], 1);
    assert_eq!(summary["exit_code"], 0);
    assert!(
        summary["flags"]
            .as_array()
            .unwrap()
            .contains(&"exit_zero_after_bind_failure".into())
    );
    assert!(err.contains("check failed"), "{err}");

    // Exiting 1 after the same failure: shown, not flagged; --check passes CMD's status on.
    let (status, out, _) = run(
        &[
            "-j",
            "--check",
            "--",
            "python3",
            "-c",
            &daphne(port, 1, None),
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1));
    let events = json_lines(&out);
    assert!(
        events
            .iter()
            .any(|v| v["kind"] == "bind" && v["error"] == "EADDRINUSE")
    );
    assert!(!out.contains("exit_zero_after_bind_failure"), "{out}");

    // Failing one port, then serving on another: not flagged.
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = spare.local_addr().unwrap().port();
    drop(spare);
    let (status, out, _) = run(
        &[
            "-j",
            "--check",
            "--",
            "python3",
            "-c",
            &daphne(port, 0, Some(other)),
        ],
        &[],
    );
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(!out.contains("exit_zero_after_bind_failure"), "{out}");

    // A shell wrapper that exits 0 after its child's failure: only the child is flagged.
    let script = format!(
        "python3 -c '{}'; exit 0",
        daphne(port, 0, None).replace('\'', "\"")
    );
    let (status, out, err) = run(&["-j", "--check", "--", "sh", "-c", &script], &[]);
    assert_eq!(status.code(), Some(86), "{err}");
    let events = json_lines(&out);
    let flagged: Vec<&Value> = events
        .iter()
        .filter(|v| v["diagnosis"] == "exit_zero_after_bind_failure")
        .collect();
    assert_eq!(flagged.len(), 1, "{out}");
    assert_eq!(
        flagged[0]["comm"], "python3",
        "the wrapper made no bind and is not flagged"
    );
}

#[test]
fn report_2_eaddrinuse_time_wait_versus_live_listener() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    // A client bound to a port of its own closes first: that port is left in TIME_WAIT
    // with no owner. Binding it again without SO_REUSEADDR fails.
    let mut tw = Actor::spawn(
        r#"
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.socket(); c.bind(("127.0.0.1", 0)); port = c.getsockname()[1]
c.connect(srv.getsockname()); a, _ = srv.accept()
c.close(); time.sleep(0.05); a.close(); time.sleep(0.1)
s = socket.socket()
try:
    s.bind(("127.0.0.1", port)); say(err=0)
except OSError as e:
    say(err=e.errno, port=port)
go()
"#,
    );
    assert_eq!(tw.read("err"), "98");
    let port: u16 = tw.read("port").parse().unwrap();
    let d = nw.wait_json("the TIME_WAIT diagnosis", |v| {
        v["kind"] == "diagnosis" && v["pid"] == tw.pid()
    });
    assert_eq!(d["diagnosis"], "port_time_wait", "{d}");
    assert_eq!(d["port"], port);
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("held only by 1 TIME_WAIT socket (no owner)"),
        "{d}"
    );
    tw.go();
    assert!(tw.wait().success());

    // The same failure against a live listener names its owner.
    let mut owner = Actor::spawn(
        "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\nsay(port=l.getsockname()[1])\ngo()",
    );
    let port: u16 = owner.read("port").parse().unwrap();
    let mut live = Actor::spawn(&format!(
        "s = socket.socket()\ntry:\n    s.bind(('127.0.0.1', {port}))\nexcept OSError as e:\n    say(err=e.errno)\ngo()"
    ));
    assert_eq!(live.read("err"), "98");
    let d = nw.wait_json("the live-holder diagnosis", |v| {
        v["kind"] == "diagnosis" && v["pid"] == live.pid()
    });
    assert_eq!(d["diagnosis"], "port_held");
    assert_eq!(d["holders"][0]["pid"], owner.pid());
    assert_eq!(d["holders"][0]["state"], "LISTEN");
    assert_eq!(
        d["message"],
        format!(
            "port {port} is held by pid {} (python3, LISTEN)",
            owner.pid()
        )
    );
    live.go();
    owner.go();
    assert!(live.wait().success() && owner.wait().success());
    nw.finish();
}

#[test]
fn report_2_eaddrnotavail_not_local_exhaustion_and_collision() {
    require_root();
    let ns = Netns::new("notavail");
    ns.sysctl("net.ipv4.ip_local_port_range=40000 40001");
    // Without timestamps, TIME_WAIT reuse is refused: the collision is reproducible.
    ns.sysctl("net.ipv4.tcp_timestamps=0");
    let mut nw = Netwatch::start(&["-j"]);

    let mut notlocal = Actor::spawn(
        "s = socket.socket()\ntry:\n    s.bind(('203.0.113.1', 8080))\nexcept OSError as e:\n    say(err=e.errno)",
    );
    assert_eq!(notlocal.read("err"), "99");
    let d = nw.wait_json("address not local", |v| {
        v["kind"] == "diagnosis" && v["pid"] == notlocal.pid()
    });
    assert_eq!(
        d["message"],
        "address not local: no interface has 203.0.113.1"
    );
    assert!(notlocal.wait().success());

    // Exhaustion: no explicit bind, every ephemeral port of the netns used towards one
    // destination. The process stays alive so netwatch reads its namespace's range.
    let mut exhaust = Actor::spawn_in(
        &ns.prefix(),
        r#"
srv = socket.socket(); srv.bind(("127.0.0.1", 8080)); srv.listen(16)
held = []
for i in range(10):
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", 8080)); held.append(c)
    except OSError as e:
        say(err=e.errno); break
go()
"#,
    );
    assert_eq!(exhaust.read("err"), "99");
    let d = nw.wait_json("exhaustion", |v| {
        v["kind"] == "diagnosis" && v["pid"] == exhaust.pid()
    });
    assert_eq!(d["diagnosis"], "ephemeral_ports_exhausted", "{d}");
    assert_eq!(d["port_range"], serde_json::json!([40000, 40001]));
    assert_eq!(
        d["message"],
        "ephemeral ports exhausted towards 127.0.0.1:8080 (net.ipv4.ip_local_port_range 40000-40001: 2 ports); \
         other destinations still work"
    );
    exhaust.go();
    assert!(exhaust.wait().success());

    // Collision: a source port bound explicitly (SO_REUSEADDR, as Trippy's probes do),
    // whose previous connection to the same destination is in TIME_WAIT.
    let mut trippy = Actor::spawn_in(
        &ns.prefix(),
        r#"
srv = socket.socket(); srv.bind(("127.0.0.1", 9090)); srv.listen(16)
def probe():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 50000)); return s
a = probe(); a.connect(("127.0.0.1", 9090)); b, _ = srv.accept()
a.close(); time.sleep(0.05); b.close(); time.sleep(0.1)
c = probe()
try:
    c.connect(("127.0.0.1", 9090)); say(err=0)
except OSError as e:
    say(err=e.errno)
"#,
    );
    assert_eq!(trippy.read("err"), "99", "same errno as exhaustion");
    let d = nw.wait_json("the collision", |v| {
        v["kind"] == "diagnosis" && v["pid"] == trippy.pid()
    });
    assert_eq!(d["diagnosis"], "tuple_collision", "{d}");
    assert_eq!(d["src_port"], 50000);
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .starts_with("4-tuple in use: source port 50000 is explicitly bound")
    );
    assert!(trippy.wait().success());
    nw.finish();
}

/// Serves a 32 MiB file with sendfile to the first client, SIGPIPE set to `disposition`.
fn sendfile_server(disposition: &str) -> String {
    format!(
        r#"
import signal, tempfile
signal.signal(signal.SIGPIPE, signal.{disposition})
f = tempfile.TemporaryFile(); f.write(b"x" * (32 << 20)); f.flush()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
say(port=srv.getsockname()[1])
a, _ = srv.accept()
sent = 0
while sent < (32 << 20):
    try:
        n = os.sendfile(a.fileno(), f.fileno(), sent, 1 << 20)
    except ConnectionResetError:
        continue  # the reset is reported once; the next call is EPIPE
    except BrokenPipeError:
        say(err=32); break
    if n == 0:
        break
    sent += n
"#
    )
}

/// Connect to `port`, read 64 KiB, and leave with a reset.
fn leave_mid_transfer(port: u16) -> u16 {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = c.local_addr().unwrap().port();
    let mut buf = vec![0u8; 65536];
    std::io::Read::read_exact(&mut c, &mut buf).unwrap();
    reset(c);
    local
}

#[test]
fn report_3_drogon_killed_by_sigpipe_mid_sendfile() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    let mut dies = Actor::spawn(&sendfile_server("SIG_DFL"));
    let port: u16 = dies.read("port").parse().unwrap();
    let client = leave_mid_transfer(port);
    let pid = dies.pid();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(dies.wait().signal(), Some(libc::SIGPIPE));
    let d = nw.wait_json("the SIGPIPE death", |v| {
        v["diagnosis"] == "killed_by_sigpipe" && v["pid"] == pid
    });
    assert_eq!(
        d["message"],
        format!("killed by SIGPIPE after EPIPE on sendfile64 to 127.0.0.1:{client}")
    );

    // Ignored: EPIPE is returned and counted, the server lives on.
    let mut lives = Actor::spawn(&sendfile_server("SIG_IGN"));
    let port: u16 = lives.read("port").parse().unwrap();
    leave_mid_transfer(port);
    assert_eq!(lives.read("err"), "32");
    let lpid = lives.pid();
    assert!(lives.wait().success());
    nw.wait_json("the EPIPE", |v| {
        v["kind"] == "send"
            && v["pid"] == lpid
            && v["syscall"] == "sendfile64"
            && v["error"] == "EPIPE"
    });
    let sig = nw.wait_json("the ignored SIGPIPE", |v| {
        v["kind"] == "signal" && v["pid"] == lpid
    });
    assert_eq!(sig["fate"], "ignored");
    let (status, seen, _) = nw.stop();
    assert!(status.success());
    let events: Vec<Value> = seen
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !events
            .iter()
            .any(|v| v["diagnosis"] == "killed_by_sigpipe" && v["pid"] == lpid)
    );
    let summary = events
        .iter()
        .find(|v| v["kind"] == "summary" && v["pid"] == lpid)
        .expect("summary");
    assert!(
        summary["counts"]["EPIPE"]["sendfile"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    assert!(
        summary["sigpipe"]["ignored"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    assert_eq!(summary["exit_code"], 0);
    let dead = events
        .iter()
        .find(|v| v["kind"] == "summary" && v["pid"] == pid)
        .expect("summary");
    assert_eq!(dead["exit_signal"], "SIGPIPE");
}

#[test]
fn report_4_air_hot_reload_races_the_old_instance() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    // The old instance shuts down gracefully on SIGINT, holding the port meanwhile:
    // here until the test lets it finish (`go`), so the race is the test's to time.
    let mut old = Actor::spawn(
        r#"
import signal
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
# The handler only sets a flag: printing from it could re-enter a print the signal
# interrupted (on a slow machine, the one that says the port).
stopping = []
signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
say(port=l.getsockname()[1])
while not stopping:
    time.sleep(0.01)
say(stopping=1); go(); time.sleep(0.1); os._exit(0)
"#,
    );
    let port: u16 = old.read("port").parse().unwrap();
    let opid = old.pid();
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(opid as i32, libc::SIGINT) };
    assert_eq!(old.read("stopping"), "1");
    let mut new = Actor::spawn(&format!(
        "s = socket.socket()\ntry:\n    s.bind(('127.0.0.1', {port})); say(err=0)\nexcept OSError as e:\n    say(err=e.errno)"
    ));
    assert_eq!(
        new.read("err"),
        "98",
        "the old instance still holds the port"
    );
    let npid = new.pid();
    assert!(new.wait().success());
    old.go();
    assert!(old.wait().success());

    let held = nw.wait_json("the holder", |v| {
        v["diagnosis"] == "port_held" && v["pid"] == npid
    });
    assert_eq!(held["holders"][0]["pid"], opid);
    assert_eq!(held["holders"][0]["exiting"], true, "{held}");
    assert_eq!(held["holders"][0]["exit_signal"], "SIGINT");
    let released = nw.wait_json("the release", |v| {
        v["diagnosis"] == "port_released" && v["pid"] == npid
    });
    assert_eq!(released["holder_pid"], opid);
    let after = released["after_ms"].as_f64().unwrap();
    assert!(
        (50.0..5000.0).contains(&after),
        "released {after} ms after the failed bind"
    );
    assert!(
        released["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("port {port} released by pid {opid} (python3)"))
    );
    nw.finish();
}

#[test]
fn report_5_websockets_reset_during_close() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    // The server sends its close frame, then waits for the peer's: the peer resets.
    let mut server = Actor::spawn(
        r#"
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
say(port=srv.getsockname()[1])
a, peer = srv.accept()
say(peer=peer[1])
a.sendall(b"\x88\x02\x03\xe8")  # close frame, status 1000
try:
    a.recv(2); say(err=0)
except OSError as e:
    say(err=e.errno)
"#,
    );
    let port: u16 = server.read("port").parse().unwrap();
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cport = client.local_addr().unwrap().port();
    assert_eq!(server.read("peer"), cport.to_string());
    let mut frame = [0u8; 4];
    std::io::Read::read_exact(&mut client, &mut frame).unwrap();
    reset(client);
    assert_eq!(server.read("err"), "104");
    let pid = server.pid();
    assert!(server.wait().success());

    let rst = nw.wait_json("the reset received", |v| {
        v["kind"] == "reset" && v["direction"] == "received" && v["pid"] == pid
    });
    assert_eq!(
        (
            rst["local"]["port"].as_u64(),
            rst["remote"]["port"].as_u64()
        ),
        (Some(port.into()), Some(cport.into()))
    );
    let recv = nw.wait_json("ECONNRESET", |v| v["kind"] == "recv" && v["pid"] == pid);
    assert_eq!(recv["error"], "ECONNRESET");
    let d = nw.wait_json("the explanation", |v| {
        v["diagnosis"] == "reset_by_peer" && v["pid"] == pid
    });
    let m = d["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "recvfrom: connection reset by peer 127.0.0.1:{cport} (RST received "
        )),
        "{m}"
    );
    let (status, seen, _) = nw.stop();
    assert!(status.success());
    let summary = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["kind"] == "summary" && v["pid"] == pid)
        .expect("summary");
    assert_eq!(summary["resets"]["received"], 1);
    assert_eq!(summary["counts"]["ECONNRESET"]["recv"], 1);
}

// ---------------------------------------------------------------------------------
// Nothing lost silently: exact counts under a storm.
// ---------------------------------------------------------------------------------

const STORM: u64 = 1_000_000;

#[test]
fn storm_counts_are_exact_and_every_lost_record_is_reported() {
    require_root();
    // Set up before netwatch attaches: a held port, and a connection the peer reset
    // (its ECONNRESET already consumed, so every send below is EPIPE).
    let mut generator = Actor::spawn(&format!(
        r#"
import struct
hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen()
addr = hold.getsockname()
c = socket.socket(); c.connect(addr); a, _ = hold.accept()
a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); a.close()
time.sleep(0.05)
try:
    c.recv(1)
except OSError:
    pass
s = socket.socket()
bind, send, nosig = s.bind, c.send, socket.MSG_NOSIGNAL
go()
binds = pipes = 0
for i in range({STORM}):
    try:
        bind(addr)
    except OSError:
        binds += 1
for i in range({STORM}):
    try:
        send(b"x", nosig)
    except BrokenPipeError:
        pipes += 1
say(binds=binds, pipes=pipes)
"#
    ));
    let pid = generator.pid();
    // One page of ring buffer: it overflows at once.
    let nw = Netwatch::start(&["-j", "-p", &pid.to_string(), "--ring-buffer-size", "4K"]);
    generator.go();
    assert_eq!(generator.read("binds"), STORM.to_string());
    assert_eq!(generator.read("pipes"), STORM.to_string());
    assert!(generator.wait().success());
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");

    let mut streamed_binds = 0u64;
    let mut streamed_pipes = 0u64;
    let mut summary = None;
    let mut end = None;
    for line in &seen {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match v["kind"].as_str() {
            Some("bind") if v["pid"] == pid && v["errno"] == 98 => streamed_binds += 1,
            Some("send") if v["pid"] == pid && v["errno"] == 32 => streamed_pipes += 1,
            Some("summary") if v["pid"] == pid => summary = Some(v),
            Some("summary_end") => end = Some(v),
            _ => {}
        }
    }
    let summary = summary.expect("the generator's summary");
    let end = end.expect("summary_end");
    // The kernel's counts are exact whatever the stream lost.
    assert_eq!(summary["counts"]["EADDRINUSE"]["bind"], STORM, "{summary}");
    assert_eq!(summary["counts"]["EPIPE"]["send"], STORM, "{summary}");
    // Every record is either streamed or counted as lost.
    let lost_binds = end["lost_by_kind"]["bind"].as_u64().unwrap_or(0);
    let lost_pipes = end["lost_by_kind"]["sockio"].as_u64().unwrap_or(0);
    eprintln!(
        "storm: binds streamed {streamed_binds} + lost {lost_binds}; EPIPE streamed {streamed_pipes} + lost {lost_pipes}"
    );
    assert_eq!(streamed_binds + lost_binds, STORM);
    assert_eq!(streamed_pipes + lost_pipes, STORM);
    assert!(
        lost_binds > 0 && lost_pipes > 0,
        "a one-page ring buffer must overflow: {end}"
    );
    assert_eq!(end["lossy"], true);
    assert!(end["missed_runs"].is_object(), "{end}");
    // ... and the loss was reported live too.
    assert!(
        seen.iter().any(|l| l.contains("\"kind\":\"lost\"")),
        "no live lost report"
    );
}

/// Daphne under a full ring buffer: children that fail a bind thousands of times and
/// exit 0 while their siblings keep the one-page ring full. Their exit records are
/// lost from the ring; the kernel keeps them, so the summary and --check stay exact.
#[test]
fn lost_exit_records_are_kept_by_the_kernel_and_check_still_fails() {
    require_root();
    const KIDS: usize = 40;
    const BINDS: usize = 3000;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let script = format!(
        r#"
import os, socket
kids = []
for i in range({KIDS}):
    pid = os.fork()
    if pid == 0:
        s = socket.socket()
        for j in range({BINDS}):
            try:
                s.bind(("127.0.0.1", {port}))
            except OSError:
                pass
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
print("kids", *kids, flush=True)
"#
    );
    let (status, out, err) = run(
        &[
            "-j",
            "--check",
            "--ring-buffer-size",
            "4K",
            "--",
            "python3",
            "-c",
            &script,
        ],
        &[],
    );
    assert_eq!(status.code(), Some(86), "{err}");
    let kids: Vec<u64> = out
        .lines()
        .find_map(|l| l.strip_prefix("kids "))
        .expect("the children's pids")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(kids.len(), KIDS);
    let events = json_lines(&out);
    let end = events
        .iter()
        .find(|v| v["kind"] == "summary_end")
        .expect("summary_end");
    let lost_exits = end["lost_by_kind"]["exit"].as_u64().unwrap_or(0);
    assert!(
        lost_exits > 0,
        "no exit record was lost: the test did not fill the ring buffer: {end}"
    );
    assert_eq!(end["exits_recovered"], lost_exits, "{end}");
    for kid in kids {
        let s = events
            .iter()
            .find(|v| v["kind"] == "summary" && v["pid"] == kid)
            .unwrap_or_else(|| panic!("no summary for child {kid}"));
        assert_eq!(s["exit"], "exit 0", "{s}");
        assert_eq!(s["counts"]["EADDRINUSE"]["bind"], BINDS, "{s}");
    }
}

// ---------------------------------------------------------------------------------
// Bad input and a hostile host: one clear line, a documented exit code, no panic.
// ---------------------------------------------------------------------------------

#[test]
fn without_btf_it_warns_and_keeps_tracing_but_cannot_follow_forks() {
    require_root();
    let env = [("NETWATCH_BTF", "/nonexistent/vmlinux")];
    let mut nw = Netwatch::start_with_env(&["-j"], &env);
    let mut actor = Actor::spawn(BIND_FAILURES);
    actor.read("port");
    actor.read("port6");
    actor.go();
    let pid = actor.pid();
    for _ in 0..3 {
        actor.read("err");
    }
    assert!(actor.wait().success());
    nw.wait_json("a bind failure, without BTF", |v| {
        v["kind"] == "bind" && v["pid"] == pid
    });
    let (status, _, stderr) = nw.stop();
    assert!(status.success());
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("BTF from /nonexistent/vmlinux: not found"),
        "{stderr}"
    );

    let (status, _, err) = run(&["-p", &std::process::id().to_string()], &env);
    assert_eq!(status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("netwatch: following forks (-p, -- CMD) needs the kernel's BTF"),
        "{err}"
    );
}

#[test]
fn tracefs_not_mounted_is_mounted_by_netwatch() {
    require_root();
    // In a mount namespace of its own, so the host's tracefs is untouched.
    let script = format!(
        "umount /sys/kernel/tracing 2>/dev/null; test ! -d /sys/kernel/tracing/events || exit 99; \
         {} -j -- python3 -c 'import socket; s = socket.socket(); s.bind((\"203.0.113.1\", 1))'",
        support::NETWATCH
    );
    let (status, out, err) = support::run_program(
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &script],
        &[],
    );
    assert_ne!(
        status.code(),
        Some(99),
        "tracefs could not be unmounted for the test"
    );
    assert_eq!(
        status.code(),
        Some(1),
        "python's exit status after its bind failed; stderr: {err}"
    );
    assert!(out.contains("\"error\":\"EADDRNOTAVAIL\""), "{out}");
}

#[test]
fn hostile_process_names_are_escaped_in_text_and_json() {
    require_root();
    let script = r#"
import ctypes
ctypes.CDLL(None).prctl(15, b"a\nb\x1b[31m\"q\xff", 0, 0, 0)  # PR_SET_NAME
go()
s = socket.socket()
try:
    s.bind(("203.0.113.1", 1))
except OSError as e:
    say(err=e.errno)
"#;
    for json in [false, true] {
        let mut nw = Netwatch::start(if json { &["-j"] } else { &[] });
        let mut actor = Actor::spawn(script);
        actor.go();
        assert_eq!(actor.read("err"), "99");
        let actor_pid = actor.pid();
        let pid = actor_pid.to_string();
        assert!(actor.wait().success());
        let expected = r#"a\x0ab\x1b[31m"q\xff"#;
        if json {
            let v = nw.wait_json("the event", |v| {
                v["kind"] == "bind" && v["pid"] == actor_pid
            });
            assert_eq!(v["comm"], expected);
        } else {
            let line = nw.wait_line("the event", |l| {
                let mut cols = l.split_whitespace();
                cols.nth(1) == Some(&pid) && cols.nth(2) == Some("bind")
            });
            assert!(line.contains(expected), "{line:?}");
        }
        let (status, seen, _) = nw.stop();
        assert!(status.success());
        let all = seen.join("\n");
        assert!(
            !all.contains('\x1b'),
            "an escape sequence reached the output"
        );
        // The name's newline did not split a line: every line of this pid is whole.
        for l in seen.iter().filter(|l| l.contains(expected)) {
            if json {
                assert!(serde_json::from_str::<Value>(l).is_ok(), "{l}");
            } else {
                // An event line (PID second) or a summary row (PID first).
                let cols: Vec<&str> = l.split_whitespace().take(2).collect();
                assert!(cols.contains(&pid.as_str()), "{l}");
            }
        }
    }
}

#[test]
fn a_closed_stdout_ends_netwatch_quietly_with_status_zero() {
    require_root();
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(support::NETWATCH)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Like `netwatch | head -1`: read the header line, then close the pipe.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    stdout.read_line(&mut header).unwrap();
    assert!(header.starts_with("TIME"), "{header}");
    drop(stdout);
    // Make it write: failures until it notices the closed pipe and exits.
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    let status = loop {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _ = std::net::TcpListener::bind(s.local_addr().unwrap());
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "netwatch kept running with no reader"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let unexpected: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("netwatch: ready"))
        .collect();
    assert!(unexpected.is_empty(), "stderr: {stderr}");
}

#[test]
fn sigterm_prints_the_summary_and_exits_zero() {
    require_root();
    let mut nw = Netwatch::start(&[]);
    let mut actor = Actor::spawn(BIND_FAILURES);
    actor.read("port");
    actor.read("port6");
    actor.go();
    let pid = actor.pid();
    for _ in 0..3 {
        actor.read("err");
    }
    assert!(actor.wait().success());
    nw.wait_line("the failure", |l| l.contains("EADDRNOTAVAIL"));
    let (status, seen, _) = nw.stop_with(libc::SIGTERM);
    assert!(status.success());
    let header = seen
        .iter()
        .position(|l| l.trim_start().starts_with("PID COMM"))
        .expect("summary table");
    let row = seen[header..]
        .iter()
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
        .expect("row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    // PID COMM INUSE NOTAVAIL ...
    assert_eq!(cols[1..4], ["python3", "2", "1"], "{row}");
}

#[test]
fn a_pid_that_exits_while_netwatch_starts_is_an_error() {
    require_root();
    let mut child = std::process::Command::new("sleep")
        .arg("0.05")
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Reap it as soon as it exits, so its /proc entry goes away.
    let reaper = std::thread::spawn(move || child.wait());
    let (status, _, err) = run(&["-p", &pid], &[]);
    reaper.join().unwrap().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "netwatch: -p {pid}: the process exited before tracing started"
        )) || err.contains(&format!("netwatch: -p {pid}: no such process")),
        "{err}"
    );
}

#[test]
fn command_mode_forwards_signals_and_a_second_sigint_exits_at_once() {
    require_root();
    // CMD exits 7 on SIGTERM: netwatch passes it on and returns CMD's status. CMD
    // says when its handler is in place (a fixed delay is too short on a slow VM).
    let ready = std::env::temp_dir().join(format!("netwatch-test-term-{}", std::process::id()));
    let script = format!(
        "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\nopen({:?}, 'w').close()\ntime.sleep(30)",
        ready.to_str().unwrap()
    );
    let nw = Netwatch::start(&["-j", "--", "python3", "-c", &script]);
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    while !ready.exists() {
        assert!(std::time::Instant::now() < deadline, "CMD never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::remove_file(&ready).unwrap();
    let (status, seen, _) = nw.stop_with(libc::SIGTERM);
    assert_eq!(status.code(), Some(7), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("\"summary_end\"")),
        "summary after CMD ended"
    );

    // CMD ignores SIGINT: the first Ctrl-C is passed on and netwatch waits; the
    // second one ends netwatch at once.
    let pidfile = std::env::temp_dir().join(format!("netwatch-test-cmd-{}", std::process::id()));
    let script = format!(
        "import os, signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nopen({0:?} + '.tmp', 'w').write(str(os.getpid()))\nos.rename({0:?} + '.tmp', {0:?})\ntime.sleep(30)",
        pidfile.to_str().unwrap()
    );
    let nw = Netwatch::start(&["--", "python3", "-c", &script]);
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    while !pidfile.exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let cmd: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    fs::remove_file(&pidfile).unwrap();
    // SAFETY: kill(2) on netwatch, which this test started.
    unsafe { libc::kill(nw.pid() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        support::alive(nw.pid()),
        "one SIGINT: still waiting for CMD"
    );
    // SAFETY: as above.
    unsafe { libc::kill(nw.pid() as i32, libc::SIGINT) };
    let started = std::time::Instant::now();
    while support::alive(nw.pid()) {
        // "At once": without waiting for CMD (which sleeps 30 s); detaching takes ~1 s.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the second SIGINT must end it at once"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // CMD is still there (it shares netwatch's stderr); end it, then collect.
    // SAFETY: kill(2) on the command this test had netwatch start.
    unsafe { libc::kill(cmd, libc::SIGKILL) };
    let (status, _, _) = nw.stop_with(0);
    assert_eq!(status.code(), Some(130));
}

// ---------------------------------------------------------------------------------
// Memory and churn.
// ---------------------------------------------------------------------------------

/// Fork `n` children, one at a time, that each fail one bind on `port` and exit 0.
/// Returns the last child's pid. The children only make raw syscalls (async-signal-
/// safe), as a forked child of a multi-threaded process must.
fn churn(n: usize, port: u16) -> u32 {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    let mut last = 0;
    for _ in 0..n {
        // SAFETY: the child calls only socket, bind and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                libc::bind(
                    fd,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_in>() as u32,
                );
                libc::_exit(0);
            }
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        last = pid as u32;
    }
    last
}

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn churn_of_short_lived_processes_keeps_memory_and_maps_flat() {
    require_root();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let me = std::process::id().to_string();
    let mut figures = Vec::new();
    for n in [1_000, 20_000] {
        // Following this test's own forks exercises the WATCHED map too.
        let mut nw = Netwatch::start(&["-j", "-p", &me]);
        let last = churn(n, port);
        nw.wait_json("the last child's exit", |v| {
            v["kind"] == "exit" && v["pid"] == last
        });
        let rss = rss_kib(nw.pid());
        let fds = fs::read_dir(format!("/proc/{}/fd", nw.pid()))
            .unwrap()
            .count();
        let (status, seen, stderr) = nw.stop();
        assert!(status.success(), "{stderr}");
        let end: Value = seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["kind"] == "summary_end")
            .expect("summary_end");
        let failures = seen
            .iter()
            .filter(|l| l.contains("\"kind\":\"bind\""))
            .count();
        let maps = &end["kernel_map_entries"];
        eprintln!(
            "churn {n}: rss {rss} KiB, {fds} open fds, bind events {failures}, kernel map entries at the end {maps}"
        );
        // Every child's counts were read and deleted at its exit; only this test
        // process itself may still be watched.
        assert!(maps["proc_counts"].as_u64().unwrap() <= 1, "{end}");
        assert!(maps["watched"].as_u64().unwrap() <= 1, "{end}");
        assert_eq!(end["lossy"], false, "{end}");
        assert_eq!(failures, n, "one bind failure per child");
        figures.push((rss, fds));
    }
    assert_eq!(
        figures[0].1, figures[1].1,
        "netwatch's open fds grew with churn (fd leak)"
    );
    let figures: Vec<u64> = figures.iter().map(|(rss, _)| *rss).collect();
    assert!(
        figures[1] <= figures[0] + 1024,
        "RSS grew from {} KiB (1k processes) to {} KiB (20k processes)",
        figures[0],
        figures[1]
    );
}

// ---------------------------------------------------------------------------------
// Fleet: metrics scraped by a real Prometheus.
// ---------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET on loopback; returns (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn prometheus_scrapes_a_provoked_eaddrinuse_and_promtool_accepts_the_exposition() {
    require_root();
    let port = free_port();
    let mut nw = Netwatch::start(&["-j", "--metrics", &port.to_string()]);
    // A distinctive comm, so the series is this test's own.
    let mut actor = Actor::spawn(
        r#"
import ctypes
ctypes.CDLL(None).prctl(15, b"nw-prom-test", 0, 0, 0)
hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen()
s = socket.socket()
try:
    s.bind(hold.getsockname())
except OSError as e:
    say(err=e.errno)
go()
"#,
    );
    assert_eq!(actor.read("err"), "98");
    nw.wait_json("the failure", |v| {
        v["kind"] == "bind" && v["pid"] == actor.pid()
    });
    actor.go();
    assert!(actor.wait().success());

    let (status, body) = http_get(port, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(
        body.contains(
            r#"netwatch_errors_total{class="EADDRINUSE",syscall="bind",comm="nw-prom-test"} 1"#
        ),
        "{body}"
    );
    let exposition =
        std::env::temp_dir().join(format!("netwatch-test-metrics-{}", std::process::id()));
    fs::write(&exposition, &body).unwrap();
    let (status, out, err) = support::run_program(
        "sh",
        &[
            "-c",
            &format!("promtool check metrics < {}", exposition.display()),
        ],
        &[],
    );
    fs::remove_file(&exposition).unwrap();
    assert!(status.success(), "promtool check metrics: {out} {err}");
    assert_eq!(
        http_get(port, "/nothing").0.split_whitespace().nth(1),
        Some("404")
    );

    // A real Prometheus scraping it every second.
    let dir = std::env::temp_dir().join(format!("netwatch-test-prometheus-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netwatch\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let web = free_port();
    let mut prometheus = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus (Debian package `prometheus`)");
    let query = "/api/v1/query?query=netwatch_errors_total%7Bclass%3D%22EADDRINUSE%22%2Ccomm%3D%22nw-prom-test%22%7D";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let seen = loop {
        if std::net::TcpStream::connect(("127.0.0.1", web)).is_ok() {
            let (_, body) = http_get(web, query);
            if let Ok(v) = serde_json::from_str::<Value>(&body)
                && v["data"]["result"][0]["value"][1] == "1"
            {
                break true;
            }
            last = body;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let _ = fs::remove_dir_all(&dir);
    assert!(
        seen,
        "Prometheus never reported the counter; last answer: {last}"
    );
    nw.finish();
}

#[test]
fn a_metrics_port_in_use_stops_netwatch_with_the_reason() {
    require_root();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (status, out, err) = run(&["--metrics", &format!("127.0.0.1:{port}")], &[]);
    assert_eq!(status.code(), Some(1), "{out} {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "netwatch: --metrics 127.0.0.1:{port}: cannot listen: Address already in use (os error 98)"
        )
    );
}

// ---------------------------------------------------------------------------------
// Containers: cgroup attribution and the --cgroup filter.
// ---------------------------------------------------------------------------------

/// A cgroup of the test's own, removed on drop (after its processes are gone).
struct TestCgroup {
    dir: std::path::PathBuf,
    name: String,
}

impl TestCgroup {
    fn new() -> Self {
        let name = format!("netwatch-test-{}", std::process::id());
        let dir = netwatch::cgroup::mount()
            .expect("a cgroup v2 hierarchy")
            .join(&name);
        let _ = fs::remove_dir(&dir);
        fs::create_dir(&dir).unwrap();
        Self { dir, name }
    }

    fn enter(&self, pid: u32) {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

const ONE_BIND_FAILURE: &str = r#"
go()
s = socket.socket()
try:
    s.bind(("203.0.113.1", 1))
except OSError as e:
    say(err=e.errno)
"#;

#[test]
fn events_name_their_cgroup_and_the_cgroup_filter_keeps_the_rest_out() {
    require_root();
    let cg = TestCgroup::new();
    let mut inside = Actor::spawn(ONE_BIND_FAILURE);
    let mut outside = Actor::spawn(ONE_BIND_FAILURE);
    cg.enter(inside.pid());
    let mut nw = Netwatch::start(&["-j", "--cgroup", &format!("/{}", cg.name)]);
    let mut text = Netwatch::start(&[]);
    inside.go();
    outside.go();
    assert_eq!(inside.read("err"), "99");
    assert_eq!(outside.read("err"), "99");
    let (ipid, opid) = (inside.pid(), outside.pid());
    assert!(inside.wait().success() && outside.wait().success());

    let v = nw.wait_json("the event inside the cgroup", |v| {
        v["kind"] == "bind" && v["pid"] == ipid
    });
    assert_eq!(v["cgroup"]["path"], format!("/{}", cg.name), "{v}");
    assert!(v["cgroup"]["id"].as_u64().unwrap() > 1);
    assert!(
        nw.ready_line().contains(&format!("in cgroup /{}", cg.name)),
        "{}",
        nw.ready_line()
    );
    // Stopping drains everything the kernel recorded.
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        seen.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .all(|v| v["pid"] != opid),
        "an event from outside the cgroup: {seen:?}"
    );
    // Text output tags the line with the cgroup.
    let line = text.wait_line("the text line", |l| {
        l.split_whitespace().nth(1) == Some(&ipid.to_string())
    });
    assert!(line.ends_with(&format!("[cgroup /{}]", cg.name)), "{line}");
    text.finish();

    let (status, _, err) = run(&["--cgroup", "/netwatch-no-such-cgroup"], &[]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.starts_with("netwatch: --cgroup /netwatch-no-such-cgroup: no such cgroup under "),
        "{err}"
    );
}

#[test]
fn sighup_reopens_the_output_file_for_log_rotation() {
    require_root();
    let dir = std::env::temp_dir().join(format!("netwatch-test-rotate-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("netwatch.log");
    let nw = Netwatch::start(&["-j", "-o", log.to_str().unwrap()]);
    let fail_once = |port: u16| {
        let mut a = Actor::spawn(&format!(
            "s = socket.socket()\ntry:\n    s.bind(('203.0.113.1', {port}))\nexcept OSError as e:\n    say(err=e.errno)"
        ));
        assert_eq!(a.read("err"), "99");
        assert!(a.wait().success());
    };
    let wait_for = |path: &std::path::Path, needle: &str| {
        let deadline = std::time::Instant::now() + support::TIMEOUT;
        loop {
            if fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{needle} never reached {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    fail_once(1111);
    wait_for(&log, "\"port\":1111");
    let rotated = dir.join("netwatch.log.1");
    fs::rename(&log, &rotated).unwrap();
    // SAFETY: kill(2) on netwatch, which this test started.
    unsafe { libc::kill(nw.pid() as i32, libc::SIGHUP) };
    // Reopening creates the file again under its name.
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    while !log.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP never reopened {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    fail_once(2222);
    wait_for(&log, "\"port\":2222");
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    assert!(seen.is_empty(), "nothing on stdout with -o: {seen:?}");
    let old = fs::read_to_string(&rotated).unwrap();
    let new = fs::read_to_string(&log).unwrap();
    assert!(
        old.contains("\"port\":1111") && !old.contains("\"port\":2222"),
        "{old}"
    );
    assert!(
        new.contains("\"summary_end\""),
        "the summary goes to the file too: {new}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn without_cap_sys_ptrace_a_port_holder_is_not_guessed() {
    require_root();
    // Enough to trace, not enough to look into other users' processes.
    let caps = "+bpf,+perfmon,+sys_admin,+dac_read_search";
    let mut nw = Netwatch::start_under(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
        ],
        &["-j"],
        &[],
    );
    let mut actor = Actor::spawn(
        "a = socket.socket(); a.bind(('127.0.0.1', 0)); a.listen()\nb = socket.socket()\ntry:\n    b.bind(a.getsockname())\nexcept OSError as e:\n    say(err=e.errno)\ngo()",
    );
    assert_eq!(actor.read("err"), "98");
    let d = nw.wait_json("the diagnosis", |v| {
        v["kind"] == "diagnosis" && v["pid"] == actor.pid()
    });
    actor.go();
    assert!(actor.wait().success());
    assert_eq!(
        d["diagnosis"], "port_in_use",
        "no guess (port_freed) without the capability: {d}"
    );
    assert!(
        d["not_looked_up"]
            .as_str()
            .unwrap()
            .contains("needs CAP_SYS_PTRACE"),
        "{d}"
    );
    nw.finish();
}

#[test]
fn a_non_blocking_connect_that_fails_later_is_caught() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn(
        r#"
import select
s = socket.socket(); s.setblocking(False)
try:
    s.connect(("127.0.0.1", 1))
    say(first=0)
except BlockingIOError as e:
    say(first=e.errno)
except OSError as e:
    say(first=e.errno)
select.select([], [s], [], 5)
say(later=s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
"#,
    );
    assert_eq!(actor.read("first"), "115", "EINPROGRESS");
    assert_eq!(
        actor.read("later"),
        "111",
        "ECONNREFUSED reported on the socket"
    );
    let pid = actor.pid();
    assert!(actor.wait().success());
    let v = nw.wait_json("the asynchronous failure", |v| {
        v["kind"] == "connect" && v["pid"] == pid
    });
    assert_eq!(v["error"], "ECONNREFUSED");
    assert_eq!(v["after_einprogress"], true);
    assert_eq!(
        v["comm"], "python3",
        "attributed to the socket's owner, not to softirq's pid"
    );
    assert_eq!(v["addr"]["port"], 1);
    nw.finish();
}

/// A namespace where a SYN to 10.200.0.2 is lost: it leaves through a veth whose other
/// end has no address, and is dropped there. A connect to it fails when the SYN's
/// retransmission timer gives up, after the connect has returned EINPROGRESS.
fn syn_blackhole(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&[
        "link", "add", "nwa0", "type", "veth", "peer", "name", "nwa1",
    ]);
    ns.ip(&["addr", "add", "10.200.0.1/24", "dev", "nwa0"]);
    ns.ip(&["link", "set", "nwa0", "up"]);
    ns.ip(&["link", "set", "nwa1", "up"]);
    ns.ip(&[
        "neigh",
        "add",
        "10.200.0.2",
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        "nwa0",
    ]);
    ns
}

/// The python lines that make socket `s` give up after one SYN retransmission.
const ONE_SYN_RETRY: &str = r#"
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 300)
"#;

/// The connect events of `pid` recorded so far (`nw` traces the whole host).
fn connect_events(nw: &mut Netwatch, pid: u32) -> Vec<Value> {
    nw.sync();
    nw.json_seen()
        .into_iter()
        .filter(|v| v["kind"] == "connect" && v["pid"] == pid)
        .collect()
}

/// The connect event of `pid`: there must be exactly one.
fn the_one_connect_event(nw: &mut Netwatch, pid: u32) -> Value {
    let v = nw.wait_json("the timed-out connect", |v| {
        v["kind"] == "connect" && v["pid"] == pid
    });
    let connects = connect_events(nw, pid);
    assert_eq!(connects.len(), 1, "one failure, one event: {connects:?}");
    v
}

/// The error is reported on a socket whose connect(2) has already returned
/// EINPROGRESS.
#[test]
fn a_non_blocking_connect_that_times_out_after_returning_is_caught_once() {
    require_root();
    let ns = syn_blackhole("synlost");
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn_in(
        &ns.prefix(),
        &format!(
            r#"
import select
s = socket.socket(); s.setblocking(False)
{ONE_SYN_RETRY}
try:
    s.connect(("10.200.0.2", 80))
    say(first=0)
except OSError as e:
    say(first=e.errno)
select.select([], [s], [], 10)
say(later=s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
"#
        ),
    );
    assert_eq!(actor.read("first"), "115", "EINPROGRESS");
    assert_eq!(
        actor.read("later"),
        "110",
        "ETIMEDOUT reported on the socket"
    );
    let pid = actor.pid();
    assert!(actor.wait().success());
    let v = the_one_connect_event(&mut nw, pid);
    assert_eq!(v["error"], "ETIMEDOUT");
    assert_eq!(v["after_einprogress"], true);
    assert_eq!(v["comm"], "python3", "attributed to the socket's owner");
    assert_eq!(v["addr"]["ip"], "10.200.0.2");
    assert_eq!(v["addr"]["port"], 80);
    nw.finish();
}

/// A connection that was established and then times out (its peer vanished) fails on
/// its own, not as a connect: the non-blocking connect that opened it returned
/// EINPROGRESS, and the error report on the socket must not be taken for its outcome.
/// The process learns ETIMEDOUT from its next receive, which is reported as such.
#[test]
fn an_established_connection_that_times_out_is_not_a_connect_failure() {
    require_root();
    let client_ns = Netns::new("estc");
    let server_ns = Netns::new("ests");
    client_ns.ip(&[
        "link",
        "add",
        "nwb0",
        "type",
        "veth",
        "peer",
        "name",
        "nwb1",
        "netns",
        &server_ns.name,
    ]);
    client_ns.ip(&["addr", "add", "10.201.0.1/24", "dev", "nwb0"]);
    client_ns.ip(&["link", "set", "nwb0", "up"]);
    server_ns.ip(&["addr", "add", "10.201.0.2/24", "dev", "nwb1"]);
    server_ns.ip(&["link", "set", "nwb1", "up"]);
    let mut server = Actor::spawn_in(
        &server_ns.prefix(),
        r#"
srv = socket.socket(); srv.bind(("10.201.0.2", 80)); srv.listen(1)
say(listening=1)
c, _ = srv.accept()
say(accepted=1)
go()
"#,
    );
    assert_eq!(server.read("listening"), "1");
    let mut nw = Netwatch::start(&["-j"]);
    let mut client = Actor::spawn_in(
        &client_ns.prefix(),
        r#"
import select
s = socket.socket(); s.setblocking(False)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 300)
try:
    s.connect(("10.201.0.2", 80))
    say(first=0)
except OSError as e:
    say(first=e.errno)
select.select([], [s], [], 5)
say(connected=s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
go()
s.send(b"x")
select.select([s], [], [], 10)
try:
    s.recv(1)
    say(recv=0)
except OSError as e:
    say(recv=e.errno)
"#,
    );
    assert_eq!(client.read("first"), "115", "EINPROGRESS");
    assert_eq!(client.read("connected"), "0");
    assert_eq!(server.read("accepted"), "1");
    // The server's end goes away: nothing answers the client's data any more.
    server_ns.ip(&["addr", "del", "10.201.0.2/24", "dev", "nwb1"]);
    client.go();
    assert_eq!(client.read("recv"), "110", "ETIMEDOUT");
    let pid = client.pid();
    assert!(client.wait().success());
    server.go();
    assert!(server.wait().success());
    let v = nw.wait_json("the receive that timed out", |v| {
        v["kind"] == "recv" && v["pid"] == pid
    });
    assert_eq!(v["error"], "ETIMEDOUT");
    let connects = connect_events(&mut nw, pid);
    assert!(connects.is_empty(), "the connect succeeded: {connects:?}");
    nw.finish();
}

/// A blocking connect interrupted by a signal returns (ERESTARTSYS in the kernel,
/// EINTR to the process) and goes on in the background: not a failure of its own,
/// and its outcome still reaches netwatch. Python then waits for the outcome with
/// poll(2) (PEP 475).
#[test]
fn an_interrupted_blocking_connect_is_followed_to_its_outcome() {
    require_root();
    let ns = syn_blackhole("synintr");
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn_in(
        &ns.prefix(),
        &format!(
            r#"
import signal
alarms = []
signal.signal(signal.SIGALRM, lambda *a: alarms.append(1))
s = socket.socket()
{ONE_SYN_RETRY}
signal.setitimer(signal.ITIMER_REAL, 0.2)
try:
    s.connect(("10.200.0.2", 80))
    say(connect=0)
except OSError as e:
    say(connect=e.errno)
say(alarms=len(alarms))
"#
        ),
    );
    assert_eq!(actor.read("connect"), "110", "ETIMEDOUT");
    assert_eq!(actor.read("alarms"), "1", "the connect was interrupted");
    let pid = actor.pid();
    assert!(actor.wait().success());
    let v = the_one_connect_event(&mut nw, pid);
    assert_eq!(v["error"], "ETIMEDOUT");
    assert_eq!(v["after_einprogress"], true, "reported on the socket");
    assert_eq!(v["comm"], "python3", "attributed to the socket's owner");
    assert_eq!(v["addr"]["ip"], "10.200.0.2");
    nw.finish();
}

// ---------------------------------------------------------------------------------
// Metrics under load: a connection flood and file descriptors running out.
// ---------------------------------------------------------------------------------

/// Raise this process's RLIMIT_NOFILE soft limit to `want` (at most the hard limit).
fn raise_nofile(want: libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(
        rc,
        0,
        "getrlimit(RLIMIT_NOFILE): {}",
        std::io::Error::last_os_error()
    );
    if limit.rlim_cur < want {
        limit.rlim_cur = want.min(limit.rlim_max);
        // SAFETY: setrlimit reads the struct it is given.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(
            rc,
            0,
            "setrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        );
    }
    assert!(
        limit.rlim_cur >= want,
        "RLIMIT_NOFILE: the hard limit {} is below the {want} this test needs",
        limit.rlim_max
    );
}

/// One GET /metrics on a fresh connection, every step bounded; returns (status line,
/// body).
fn try_scrape(addr: std::net::SocketAddr) -> std::io::Result<(String, String)> {
    use std::io::{Read as _, Write as _};
    let step = Duration::from_secs(2);
    let mut s = std::net::TcpStream::connect_timeout(&addr, step)?;
    s.set_read_timeout(Some(step))?;
    s.set_write_timeout(Some(step))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

/// With 256 file descriptors and 2,000 idle connections to its metrics port, netwatch
/// keeps reading the ring buffer (an event arrives) and answers a scrape soon after:
/// connections over its cap are closed at once, idle ones time out, and failed
/// accepts back off instead of spinning the thread the reader shares.
/// The metrics address the ready line names.
fn metrics_addr(nw: &Netwatch) -> std::net::SocketAddr {
    let ready = nw.ready_line();
    let port: u16 = ready
        .split_once("; metrics on http://127.0.0.1:")
        .and_then(|(_, rest)| rest.split_once("/metrics"))
        .and_then(|(port, _)| port.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in the ready line {ready:?}"));
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// Up to `n` idle connections to `addr`, bounded in time; and what stopped it early.
fn open_flood(
    addr: std::net::SocketAddr,
    n: usize,
) -> (Vec<std::net::TcpStream>, Option<std::io::Error>) {
    // Connecting outpaces netwatch's accepts: a SYN that finds the accept queue full
    // is dropped and sent again a second later, hence a timeout above that.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut flood = Vec::with_capacity(n);
    while flood.len() < n && std::time::Instant::now() < deadline {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(s) => flood.push(s),
            Err(e) => return (flood, Some(e)),
        }
    }
    (flood, None)
}

/// An open-files limit barely above netwatch's own descriptors: a connection flood
/// must not take the ones the trace needs (a per-CPU map lookup opens sysfs), which
/// once ended netwatch with EMFILE. The ring buffer keeps being read; scrapes answer
/// again once the flood has gone.
#[test]
fn metrics_connections_leave_netwatch_its_own_descriptors() {
    require_root();
    let mut nw = Netwatch::start_under(
        &["prlimit", "--nofile=80:80"],
        &["-j", "--metrics", "0"],
        &[],
    );
    let addr = metrics_addr(&nw);
    let (flood, stopped_by) = open_flood(addr, 300);
    assert!(
        flood.len() >= 100,
        "only {} connections ({stopped_by:?})",
        flood.len()
    );
    let mut actor = Actor::spawn(
        "s = socket.socket()\ntry:\n    s.bind(('203.0.113.1', 1))\nexcept OSError as e:\n    say(err=e.errno)",
    );
    assert_eq!(actor.read("err"), "99", "EADDRNOTAVAIL");
    let pid = actor.pid();
    assert!(actor.wait().success());
    std::thread::sleep(Duration::from_millis(500));
    if !support::alive(nw.pid()) {
        let (st, seen, err) = nw.stop();
        panic!("DEBUG {st:?} {seen:?} {err}");
    }
    nw.wait_json("the failed bind while out of descriptors", |v| {
        is_bind_of(v, pid, 99)
    });
    drop(flood);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match try_scrape(addr) {
            Ok((status, body)) if status.split_whitespace().nth(1) == Some("200") => {
                assert!(body.contains("netwatch_events"), "{body}");
                break;
            }
            other => assert!(
                std::time::Instant::now() < deadline,
                "no scrape answered within 15 s of the flood's end: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // A second later the lost-record counters are read again (a per-CPU map lookup
    // opens sysfs): the trace must still be running.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(support::alive(nw.pid()), "netwatch ended");
    let (status, _, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("--metrics: at most 1 connections at once"),
        "{stderr}"
    );
}

#[test]
fn metrics_survive_a_connection_flood() {
    require_root();
    const FLOOD: usize = 2_000;
    // The flood's client ends are this process's descriptors.
    raise_nofile(FLOOD as libc::rlim_t + 100);
    let mut nw = Netwatch::start_under(
        &["prlimit", "--nofile=256:256"],
        &["-j", "--metrics", "0"],
        &[],
    );
    let addr = metrics_addr(&nw);
    let (flood, stopped_by) = open_flood(addr, FLOOD);
    // More connections than netwatch has descriptors: without the cap it runs out.
    assert!(
        flood.len() > 256,
        "only {} connections opened ({stopped_by:?}): no flood",
        flood.len()
    );

    // The ring buffer is still read: a failure during the flood is reported.
    let mut actor = Actor::spawn(
        "s = socket.socket()\ntry:\n    s.bind(('203.0.113.1', 1))\nexcept OSError as e:\n    say(err=e.errno)\ngo()",
    );
    assert_eq!(actor.read("err"), "99", "EADDRNOTAVAIL");
    let pid = actor.pid();
    nw.wait_json("the failed bind during the flood", |v| {
        is_bind_of(v, pid, 99)
    });
    actor.go();
    assert!(actor.wait().success());

    // And a scrape is answered, the flood still open.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut tries = 0;
    let body = loop {
        tries += 1;
        let last = match try_scrape(addr) {
            Ok((status, body)) if status.split_whitespace().nth(1) == Some("200") => break body,
            Ok((status, _)) => format!("status {status:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            std::time::Instant::now() < deadline,
            "no scrape answered within 15 s ({tries} tries, {} flood connections open); last: {last}",
            flood.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.contains("netwatch_events"), "{body}");
    assert!(
        body.contains(
            r#"netwatch_errors_total{class="EADDRNOTAVAIL",syscall="bind",comm="python3"}"#
        ),
        "{body}"
    );
    drop(flood);
    nw.finish();
}
