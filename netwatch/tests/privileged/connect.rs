//! The connect source: failed connects, blocking or not, including the failures that
//! come after connect(2) has returned (EINPROGRESS, an interrupted connect).

use serde_json::Value;

use crate::support::{Actor, Netwatch};
use crate::{Netns, require_root};

const CONNECT_REFUSED: &str = r#"
s = socket.socket()
try:
    s.connect(("127.0.0.1", 1))
    say(connect=0)
except OSError as e:
    say(connect=e.errno)
"#;

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

/// The diagnosis of `pid`'s failed connect.
fn diagnosis_of(nw: &mut Netwatch, pid: u32, name: &str) -> Value {
    nw.wait_json(name, |v| {
        v["kind"] == "diagnosis" && v["pid"] == pid && v["diagnosis"] == name
    })
}

/// A fresh namespace has no route but loopback's: a connect elsewhere fails at once
/// with ENETUNREACH, and the namespace's routing table says why (the host's may well
/// have a default route).
#[test]
fn enetunreach_in_a_namespace_without_a_route_says_so() {
    require_root();
    let ns = Netns::new("noroute");
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn_in(
        &ns.prefix(),
        r#"
s = socket.socket()
try:
    s.connect(("10.99.0.1", 80))
    say(connect=0)
except OSError as e:
    say(connect=e.errno)
go()
"#,
    );
    assert_eq!(actor.read("connect"), "101", "ENETUNREACH");
    let pid = actor.pid();
    let d = diagnosis_of(&mut nw, pid, "destination_unreachable");
    assert_eq!(
        d["message"],
        "no route to 10.99.0.1 in the process's network namespace (ENETUNREACH)"
    );
    assert_eq!(d["route"], false);
    assert_eq!(d["dst"]["ip"], "10.99.0.1");
    actor.go();
    assert!(actor.wait().success());
    nw.finish();
}

/// An on-link destination no neighbour answers for: the route exists, ARP fails, and the
/// connect fails with EHOSTUNREACH after a few seconds.
#[test]
fn ehostunreach_with_a_route_says_the_route_exists() {
    require_root();
    let ns = syn_blackhole("hostunr");
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn_in(
        &ns.prefix(),
        r#"
s = socket.socket()
s.settimeout(15)
try:
    s.connect(("10.200.0.3", 80))
    say(connect=0)
except OSError as e:
    say(connect=e.errno)
go()
"#,
    );
    assert_eq!(actor.read("connect"), "113", "EHOSTUNREACH");
    let pid = actor.pid();
    let d = diagnosis_of(&mut nw, pid, "destination_unreachable");
    assert_eq!(d["route"], true, "{d}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("a route exists: the host or a router answered unreachable"),
        "{d}"
    );
    actor.go();
    assert!(actor.wait().success());
    nw.finish();
}

/// SYNs dropped, `net.ipv4.tcp_syn_retries` 1 in the namespace: the non-blocking
/// connect's ETIMEDOUT (reported on the socket after EINPROGRESS) is explained with the
/// namespace's retries and about 3 s.
#[test]
fn etimedout_after_einprogress_names_the_namespaces_syn_retries() {
    require_root();
    let ns = syn_blackhole("syntime");
    ns.sysctl("net.ipv4.tcp_syn_retries=1");
    let mut nw = Netwatch::start(&["-j"]);
    let mut actor = Actor::spawn_in(
        &ns.prefix(),
        r#"
import select
s = socket.socket(); s.setblocking(False)
try:
    s.connect(("10.200.0.2", 80))
    say(first=0)
except OSError as e:
    say(first=e.errno)
select.select([], [s], [], 15)
say(later=s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
go()
"#,
    );
    assert_eq!(actor.read("first"), "115", "EINPROGRESS");
    assert_eq!(actor.read("later"), "110", "ETIMEDOUT");
    let pid = actor.pid();
    let d = diagnosis_of(&mut nw, pid, "connect_timed_out");
    assert_eq!(d["syn_retries"], 1, "{d}");
    assert_eq!(d["tried_s"], 3, "{d}");
    assert_eq!(d["dst"]["ip"], "10.200.0.2");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("net.ipv4.tcp_syn_retries is 1 in the process's network namespace, so the kernel tried for about 3 s"),
        "{d}"
    );
    actor.go();
    assert!(actor.wait().success());
    nw.finish();
}

/// A server out of file descriptors (its RLIMIT_NOFILE lowered, its table filled):
/// accept fails with EMFILE while a client waits in the queue, and so does socket();
/// both are reported, and explained with the process's count and limit.
#[test]
fn a_server_out_of_descriptors_is_explained() {
    require_root();
    let nw = Netwatch::start(&["-j"]);
    let mut server = Actor::spawn(
        r#"
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (32, 4096))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
say(port=l.getsockname()[1])
go()
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
try:
    l.accept(); say(accept=0)
except OSError as e:
    say(accept=e.errno)
try:
    socket.socket(); say(socket=0)
except OSError as e:
    say(socket=e.errno)
go()
"#,
    );
    let port: u16 = server.read("port").parse().unwrap();
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    server.go();
    assert_eq!(server.read("accept"), "24", "EMFILE");
    assert_eq!(server.read("socket"), "24", "EMFILE");
    let pid = server.pid();
    // The server stays, its descriptors held, until netwatch has looked.
    let mut nw = nw;
    nw.wait_json("the diagnosis", |v| {
        v["diagnosis"] == "file_descriptors_exhausted" && v["pid"] == pid
    });
    server.go();
    assert!(server.wait().success());
    drop(client);
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    let records: Vec<Value> = seen
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v["pid"] == pid)
        .collect();
    let failed = |syscall: &str| {
        records
            .iter()
            .any(|v| v["kind"] == "listen" && v["syscall"] == syscall && v["error"] == "EMFILE")
    };
    assert!(failed("accept4") || failed("accept"), "{records:?}");
    assert!(failed("socket"), "{records:?}");
    let d = records
        .iter()
        .find(|v| v["diagnosis"] == "file_descriptors_exhausted")
        .unwrap_or_else(|| panic!("no diagnosis in {records:?}"));
    assert_eq!(d["rlimit_soft"], 32, "{d}");
    // At least the limit: descriptors opened before the limit was lowered stay.
    assert!(d["open"].as_u64().is_some_and(|n| n >= 32), "{d}");
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("of its RLIMIT_NOFILE 32 (hard 4096)"),
        "{message}"
    );
}
