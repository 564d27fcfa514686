//! Signals: SIGPIPE ignored or fatal, as the signal source reports it; and the signals
//! netwatch itself handles (SIGTERM, SIGINT passed on to CMD, SIGHUP's reopening).

use std::{fs, time::Duration};

use crate::support::{self, Actor, Netwatch};
use crate::{bind_failures_made, require_root, reset, sigpipe_writer};

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
fn sigterm_prints_the_summary_and_exits_zero() {
    require_root();
    let mut nw = Netwatch::start(&[]);
    let pid = bind_failures_made();
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
    support::wait_until("CMD ready", || ready.exists());
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
    support::wait_until("CMD ready", || pidfile.exists());
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

#[test]
fn sighup_reopens_the_output_file_for_log_rotation() {
    require_root();
    let dir = std::env::temp_dir().join(format!("netwatch-test-rotate-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("netwatch.log");
    let nw = Netwatch::start(&["-j", "-o", log.to_str().unwrap()]);
    let fail_once = |port: u16| {
        let mut a = Actor::spawn(&format!("fail_bind({port})"));
        assert_eq!(a.read("err"), "99");
        assert!(a.wait().success());
    };
    let wait_for = |path: &std::path::Path, needle: &str| {
        let what = format!("{needle} in {}", path.display());
        support::wait_until(&what, || {
            fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
        });
    };
    fail_once(1111);
    wait_for(&log, "\"port\":1111");
    let rotated = dir.join("netwatch.log.1");
    fs::rename(&log, &rotated).unwrap();
    // SAFETY: kill(2) on netwatch, which this test started.
    unsafe { libc::kill(nw.pid() as i32, libc::SIGHUP) };
    // Reopening creates the file again under its name.
    support::wait_until("SIGHUP reopening the log", || log.exists());
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
