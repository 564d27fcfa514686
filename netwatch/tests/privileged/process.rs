//! Processes: exit statuses, `-p` (a pid, a thread id, the children forked later),
//! threads, and command mode (`-- CMD`).

use std::fs;

use serde_json::Value;

use crate::support::{Actor, Netwatch, run};
use crate::{BIND_FAILURES, is_bind_of, require_root};

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

#[test]
fn a_thread_id_traces_its_process_and_repeats_count_once() {
    require_root();
    let mut actor = Actor::spawn(
        r#"
import threading
def fail():
    go()
    fail_bind()
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

/// `-v` exec records name what ran, as execsnoop's ARGS column does.
#[test]
fn verbose_exec_records_name_the_program_and_its_arguments() {
    require_root();
    let (status, out, err) = run(&["-v", "-j", "--", "sh", "-c", "exec sleep 0.5"], &[]);
    assert!(status.success(), "{err}");
    let exec = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["kind"] == "exec" && v["comm"] == "sleep")
        .unwrap_or_else(|| panic!("no exec of sleep in {out}"));
    assert!(
        exec["exe"].as_str().is_some_and(|e| e.ends_with("/sleep")),
        "{exec}"
    );
    assert_eq!(exec["argv"], serde_json::json!(["sleep", "0.5"]), "{exec}");

    let (status, out, err) = run(&["-v", "--", "sh", "-c", "exec sleep 0.5"], &[]);
    assert!(status.success(), "{err}");
    assert!(
        out.lines()
            .any(|l| l.contains(" exec ") && l.ends_with("/sleep 0.5")),
        "{out}"
    );
}
