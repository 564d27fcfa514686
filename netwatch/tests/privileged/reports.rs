//! The five field reports (../shared/SCENARIOS.md), each reproduced with real
//! processes and asserted on netwatch's diagnosis.

use std::fs;

use serde_json::Value;

use crate::support::{Actor, Netwatch, run};
use crate::{Netns, daphne, json_lines, read_from_server, require_root, reset};

fn diagnoses(events: &[Value], pid: u32) -> Vec<&Value> {
    events
        .iter()
        .filter(|v| v["kind"] == "diagnosis" && v["pid"] == pid)
        .collect()
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

    let mut notlocal = Actor::spawn("fail_bind(8080)");
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
    let (client, port, cport) = read_from_server(&mut server, 4);
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
