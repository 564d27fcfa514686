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
    // Both processes are done; give the stream several drain periods.
    nw.settle(Duration::from_millis(300));
    let leaked: Vec<String> = nw
        .json_seen()
        .iter()
        .filter(|v| v["pid"] != wpid)
        .map(Value::to_string)
        .collect();
    assert!(
        leaked.is_empty(),
        "events from unwatched processes (other pid {opid}): {leaked:?}"
    );
    let (status, _, _) = nw.stop();
    assert!(status.success());
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

#[test]
fn a_kernel_without_the_tracepoint_is_a_clear_error() {
    require_root();
    let dir = std::env::temp_dir().join(format!("netwatch-test-tracefs-{}", std::process::id()));
    fs::create_dir_all(dir.join("events/syscalls")).unwrap();
    let (status, _, err) = run(&[], &[("NETWATCH_TRACEFS", dir.to_str().unwrap())]);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("tracepoint syscalls:sys_exit_bind does not exist"),
        "{err}"
    );
    assert!(err.starts_with("netwatch: "), "{err}");
}
