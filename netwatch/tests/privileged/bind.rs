//! The bind source: failed binds, each with its pid, errno and address, in JSON and
//! in text.

use crate::support::{Actor, Netwatch};
use crate::{BIND_FAILURES, Netns, is_bind_of, require_root};

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

/// An unprivileged process (uid 65534, no capabilities) binding a port below the
/// namespace's `ip_unprivileged_port_start` (set to 1000 there, unlike the host's):
/// EACCES, explained with the namespace's value, and its exit 0 flagged with the reason.
/// Binding a port above it works: not a refusal.
#[test]
fn eacces_on_a_privileged_port_is_explained_with_the_namespaces_port_start() {
    require_root();
    let ns = Netns::new("privport");
    ns.sysctl("net.ipv4.ip_unprivileged_port_start=1000");
    let mut nw = Netwatch::start(&["-j"]);
    let mut prefix = ns.prefix().to_vec();
    prefix.extend(crate::AS_NOBODY);
    let mut actor = Actor::spawn_in(
        &prefix,
        r#"
s = socket.socket()
try:
    s.bind(("0.0.0.0", 80))
    say(bind=0)
except OSError as e:
    say(bind=e.errno)
ok = socket.socket(); ok.bind(("0.0.0.0", 1000))
say(allowed=1)
go()
"#,
    );
    assert_eq!(actor.read("bind"), "13", "EACCES");
    assert_eq!(actor.read("allowed"), "1");
    let pid = actor.pid();
    // Read while the process is alive (it waits at go()).
    let d = nw.wait_json("the bind_refused diagnosis", |v| {
        v["kind"] == "diagnosis" && v["pid"] == pid && v["diagnosis"] == "bind_refused"
    });
    assert_eq!(
        d["message"],
        "port 80 is below net.ipv4.ip_unprivileged_port_start (1000) and uid 65534 has no CAP_NET_BIND_SERVICE"
    );
    assert_eq!(d["cause"], "privileged_port");
    assert_eq!(d["unprivileged_port_start"], 1000);
    assert_eq!(d["uid"], 65534);
    assert_eq!(d["cap_net_bind_service"], false);
    assert_eq!(d["error"], "EACCES");
    actor.go();
    assert!(actor.wait().success());
    let flag = nw.wait_json("the exit-0 flag", |v| {
        v["kind"] == "diagnosis"
            && v["pid"] == pid
            && v["diagnosis"] == "exit_zero_after_bind_failure"
    });
    assert_eq!(
        flag["message"],
        "exited 0 after bind failure (EACCES 0.0.0.0:80: privileged port: below \
         net.ipv4.ip_unprivileged_port_start without CAP_NET_BIND_SERVICE): callers will read success"
    );
    assert_eq!(flag["errno"], 13);
    nw.sync();
    let refusals = nw
        .json_seen()
        .into_iter()
        .filter(|v| v["pid"] == pid && v["diagnosis"] == "bind_refused")
        .count();
    assert_eq!(refusals, 1, "the allowed bind is not a refusal");
    nw.finish();
}
