//! Nothing lost and nothing broken: the output going away, storms that fill the ring
//! buffer, bad input and a hostile host (no BTF, no tracefs mounted, hostile names),
//! and memory under the churn of short-lived processes.

use std::{fs, time::Duration};

use serde_json::Value;

use crate::support::{self, Actor, Netwatch, run};
use crate::{bind_failures_made, daphne, json_lines, require_root};

// ---------------------------------------------------------------------------------
// Losing the output: a reader that leaves, a full disk.
// ---------------------------------------------------------------------------------

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
    let pid = bind_failures_made();
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
fail_bind()
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
            // Text cuts the escaped name to its 16-column COMM, at an escape's end.
            assert!(line.contains(r#" a\x0ab\x1b[31m"+ bind "#), "{line:?}");
        }
        let (status, seen, _) = nw.stop();
        assert!(status.success());
        let all = seen.join("\n");
        assert!(
            !all.contains('\x1b'),
            "an escape sequence reached the output"
        );
        // The name's newline did not split a line: every line of this pid is whole.
        let shown = if json {
            expected
        } else {
            r#"a\x0ab\x1b[31m"+"#
        };
        for l in seen.iter().filter(|l| l.contains(shown)) {
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
