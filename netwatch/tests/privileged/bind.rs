//! The bind source: failed binds, each with its pid, errno and address, in JSON and
//! in text.

use crate::support::{Actor, Netwatch};
use crate::{BIND_FAILURES, is_bind_of, require_root};

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
