//! How a trace starts, goes on and ends: `-d SECS`, `-p` ending with its processes
//! (and `--keep-going`), SIGUSR1's summary while tracing goes on, the TIME column's
//! formats (`-T`, TZ) and `--color` on a terminal and off it.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

use crate::support::{Actor, NETWATCH, Netwatch, TIMEOUT, alive, run, wait_bounded, wait_until};
use crate::{is_bind_of, json_lines, require_root};

/// SIGKILLs a process this test started (directly or not) when dropped, so that a
/// failed assertion leaves nothing behind.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a process this test started.
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on the netwatch this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

/// Fails a bind (EADDRNOTAVAIL on 203.0.113.1:1) when told to go, then exits 0.
const ONE_FAILURE: &str = "go()\nfail_bind()";

fn summary_of(events: &[Value], pid: u32) -> Option<&Value> {
    events
        .iter()
        .rev()
        .find(|v| v["kind"] == "summary" && v["pid"] == pid)
}

#[test]
fn duration_stops_after_secs_with_the_summary_and_exit_0() {
    require_root();
    let mut actor = Actor::spawn(ONE_FAILURE);
    let pid = actor.pid();
    let mut nw = Netwatch::start(&["-j", "-d", "2"]);
    let ready = Instant::now();
    actor.go();
    assert_eq!(actor.read("err"), "99");
    assert!(actor.wait().success());
    nw.wait_json("the failed bind", |v| is_bind_of(v, pid, 99));
    let nw_pid = nw.pid();
    wait_until("netwatch ends by itself after -d 2", || !alive(nw_pid));
    let took = ready.elapsed();
    let (status, seen, stderr) = nw.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "-d 2 ended {took:?} after the ready line"
    );
    let events = json_lines(&seen.join("\n"));
    let summary = summary_of(&events, pid).expect("the actor's summary");
    assert_eq!(summary["counts"]["EADDRNOTAVAIL"]["bind"], 1, "{summary}");
    assert!(
        events.last().is_some_and(|v| v["kind"] == "summary_end"),
        "the summary ends the output"
    );
}

#[test]
fn duration_with_a_command_leaves_it_running_and_exits_0() {
    require_root();
    let started = Instant::now();
    // The shell says its pid and becomes a sleep that holds none of netwatch's output.
    let (status, out, err) = run(
        &[
            "-j",
            "-d",
            "1",
            "--",
            "sh",
            "-c",
            "echo $$; exec sleep 30 >/dev/null 2>&1",
        ],
        &[],
    );
    let cmd: u32 = out
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("the command's pid in {out}"));
    let _cmd = KillOnDrop(cmd);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(alive(cmd), "CMD goes on after -d stopped the trace");
    assert!(
        err.contains(&format!("the command (pid {cmd}) goes on")),
        "{err}"
    );
    assert!(
        json_lines(&out).iter().any(|v| v["kind"] == "summary_end"),
        "{out}"
    );
}

/// Forks, once netwatch watches it, a child that sleeps; fails a bind and exits.
const FORKS_A_SLEEPER: &str = r#"
go()
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
say(child=child)
fail_bind()
"#;

#[test]
fn pid_mode_ends_when_the_watched_process_exits_not_its_children() {
    require_root();
    let mut actor = Actor::spawn(FORKS_A_SLEEPER);
    let pid = actor.pid();
    let nw = Netwatch::start(&["-j", "-p", &pid.to_string()]);
    actor.go();
    let child: u32 = actor.read("child").parse().unwrap();
    let _child = KillOnDrop(child);
    assert_eq!(actor.read("err"), "99");
    assert!(actor.wait().success());
    let nw_pid = nw.pid();
    wait_until("netwatch ends when its -p process has exited", || {
        !alive(nw_pid)
    });
    assert!(alive(child), "the child followed by the kernel still runs");
    let (status, seen, stderr) = nw.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let events = json_lines(&seen.join("\n"));
    assert!(events.iter().any(|v| is_bind_of(v, pid, 99)));
    assert!(
        events
            .iter()
            .any(|v| v["kind"] == "exit" && v["pid"] == pid && v["status"] == "exit 0"),
        "the watched process's exit is shown"
    );
    let summary = summary_of(&events, pid).expect("the actor's summary");
    assert_eq!(summary["exit"], "exit 0", "{summary}");
    assert!(events.last().is_some_and(|v| v["kind"] == "summary_end"));
}

#[test]
fn keep_going_outlives_the_watched_process_until_sigint() {
    require_root();
    let mut actor = Actor::spawn(ONE_FAILURE);
    let pid = actor.pid();
    let mut nw = Netwatch::start(&["-j", "-p", &pid.to_string(), "--keep-going"]);
    actor.go();
    assert_eq!(actor.read("err"), "99");
    assert!(actor.wait().success());
    nw.wait_json("the watched process's exit", |v| {
        v["kind"] == "exit" && v["pid"] == pid
    });
    // Long enough for the exit record and for /proc's once-a-second look.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(
            alive(nw.pid()),
            "--keep-going: netwatch must not end by itself"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    let events = json_lines(&seen.join("\n"));
    assert!(summary_of(&events, pid).is_some(), "the summary at Ctrl-C");
}

/// Fails a bind on port 1 at the first go, on port 2 at the second.
const TWO_FAILURES: &str = "go()\nfail_bind()\ngo()\nfail_bind(2)";

#[test]
fn sigusr1_prints_the_summary_so_far_and_tracing_goes_on() {
    require_root();
    let mut actor = Actor::spawn(TWO_FAILURES);
    let pid = actor.pid();
    let mut nw = Netwatch::start(&["-j", "-p", &pid.to_string()]);
    actor.go();
    assert_eq!(actor.read("err"), "99");
    nw.wait_json("the first failed bind", |v| is_bind_of(v, pid, 99));
    signal(nw.pid(), libc::SIGUSR1);
    let so_far = nw.wait_json("the summary so far", |v| {
        v["kind"] == "summary" && v["pid"] == pid
    });
    assert_eq!(so_far["counts"]["EADDRNOTAVAIL"]["bind"], 1, "{so_far}");
    assert_eq!(so_far["exit"], Value::Null, "still running: {so_far}");
    nw.wait_json("summary_end", |v| v["kind"] == "summary_end");
    assert!(alive(nw.pid()), "SIGUSR1 does not stop netwatch");

    // Still tracing: the second failure comes after the summary.
    actor.go();
    assert_eq!(actor.read("err"), "99");
    nw.wait_json("the failure after the summary", |v| {
        is_bind_of(v, pid, 99) && v["addr"]["port"] == 2
    });
    assert!(actor.wait().success());
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    let events = json_lines(&seen.join("\n"));
    let last = summary_of(&events, pid).expect("the summary at the end");
    assert_eq!(last["counts"]["EADDRNOTAVAIL"]["bind"], 2, "{last}");
    let ends = events.iter().filter(|v| v["kind"] == "summary_end").count();
    assert_eq!(ends, 2, "one summary on SIGUSR1, one at the end");
}

#[test]
fn sigusr1_prints_the_summary_table_in_text_too() {
    require_root();
    let mut actor = Actor::spawn(TWO_FAILURES);
    let pid = actor.pid().to_string();
    let mut nw = Netwatch::start(&["-p", &pid, "--keep-going"]);
    actor.go();
    assert_eq!(actor.read("err"), "99");
    nw.wait_line("the first failure", |l| {
        l.split_whitespace().nth(1) == Some(pid.as_str()) && l.contains("203.0.113.1:1")
    });
    signal(nw.pid(), libc::SIGUSR1);
    // The table's row: PID COMM INUSE NOTAVAIL ...
    let row = nw.wait_line("the actor's row in the summary", |l| {
        l.split_whitespace().next() == Some(pid.as_str())
    });
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1..4], ["python3", "0", "1"], "{row}");
    actor.go();
    assert_eq!(actor.read("err"), "99");
    nw.wait_line("the failure after the summary", |l| {
        l.split_whitespace().nth(1) == Some(pid.as_str()) && l.contains("203.0.113.1:2")
    });
    assert!(actor.wait().success());
    nw.finish();
}

/// The header and the actor's failure line of `netwatch ARGS -p ACTOR` in text, with
/// `env`; the seconds from the ready line to the failure.
fn failure_line(args: &[&str], env: &[(&str, &str)]) -> (String, String, f64) {
    let mut actor = Actor::spawn(ONE_FAILURE);
    let pid = actor.pid().to_string();
    let mut all = args.to_vec();
    all.extend(["-p", &pid]);
    let mut nw = Netwatch::start_with_env(&all, env);
    let ready = Instant::now();
    actor.go();
    assert_eq!(actor.read("err"), "99");
    let failed = ready.elapsed().as_secs_f64();
    let line = nw.wait_line("the failure", |l| {
        l.split_whitespace().any(|w| w == pid) && l.contains("EADDRNOTAVAIL")
    });
    assert!(actor.wait().success());
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    (seen[0].clone(), line, failed)
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

#[test]
fn time_none_has_no_time_column_and_relative_starts_near_0() {
    require_root();
    let (header, line, _) = failure_line(&["-T", "none"], &[]);
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cols,
        ["PID", "TID", "COMM", "SYSCALL", "ERRNO", "DETAIL"],
        "{header}"
    );
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols[2..6],
        ["python3", "bind", "EADDRNOTAVAIL", "203.0.113.1:1"],
        "{line}"
    );
    assert_eq!(cols[0], cols[1], "PID first: {line}");

    let (header, line, failed) = failure_line(&["-T", "relative"], &[]);
    assert_eq!(first_word(&header), "TIME(s)", "{header}");
    let secs: f64 = first_word(&line)
        .parse()
        .unwrap_or_else(|_| panic!("seconds first: {line}"));
    assert!(
        (0.0..failed + 0.5).contains(&secs),
        "{secs} s after the start, for a failure {failed} s after the ready line"
    );
    // Columns aligned under the header: PID ends where its heading does.
    let pid_end = header.find("PID").unwrap() + 3;
    assert_eq!(line.as_bytes()[pid_end], b' ', "{header}\n{line}");
    assert_ne!(line.as_bytes()[pid_end - 1], b' ', "{header}\n{line}");
}

/// Seconds since midnight UTC, now.
fn utc_second_of_day() -> i64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    (now.as_secs() % 86_400) as i64
}

/// `HH:MM:SS.mmm` as seconds since midnight.
fn second_of_day(hms: &str) -> i64 {
    let (time, ms) = hms.split_once('.').unwrap_or_else(|| panic!("{hms}"));
    assert_eq!(ms.len(), 3, "milliseconds: {hms}");
    let f: Vec<i64> = time.split(':').map(|n| n.parse().unwrap()).collect();
    assert_eq!(f.len(), 3, "{hms}");
    f[0] * 3600 + f[1] * 60 + f[2]
}

#[test]
fn local_time_honours_tz_and_iso_carries_its_offset() {
    require_root();
    // A POSIX rule, so that no tz database is needed: UTC+05:30 all year.
    let india = [("TZ", "IST-5:30")];
    let (header, line, _) = failure_line(&[], &india);
    assert_eq!(first_word(&header), "TIME");
    let local = second_of_day(first_word(&line));
    let want = (utc_second_of_day() + 5 * 3600 + 1800) % 86_400;
    let off = (local - want).rem_euclid(86_400);
    assert!(
        off.min(86_400 - off) < 30,
        "local time {line} is not UTC+05:30"
    );

    let (_, line, _) = failure_line(&["-T", "iso"], &india);
    let iso = first_word(&line);
    assert_eq!(iso.len(), "2026-11-23T06:47:24.123+05:30".len(), "{line}");
    assert!(
        iso.ends_with("+05:30") && iso.as_bytes()[10] == b'T',
        "{line}"
    );

    let (_, line, _) = failure_line(&["-T", "utc"], &india);
    let utc = second_of_day(first_word(&line));
    let off = (utc - utc_second_of_day()).rem_euclid(86_400);
    assert!(off.min(86_400 - off) < 30, "-T utc ignores TZ: {line}");
}

/// Everything `netwatch ARGS -p ACTOR` printed on a terminal (a pty under script(1),
/// stdout and stderr together), with `env` added and NO_COLOR removed otherwise.
fn on_a_pty(args: &str, env: &[(&str, &str)]) -> Vec<String> {
    let mut actor = Actor::spawn(ONE_FAILURE);
    let pid = actor.pid();
    let mut script = Command::new("script")
        .args(["-qfec", &format!("{NETWATCH} {args} -p {pid}"), "/dev/null"])
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script(1) from util-linux");
    let stdout = BufReader::new(script.stdout.take().unwrap());
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line.trim_end_matches('\r').to_owned()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !seen.iter().any(|l: &String| l.contains("netwatch: ready")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no ready line on the pty within {TIMEOUT:?}: {seen:?}"),
        }
    }
    actor.go();
    assert_eq!(actor.read("err"), "99");
    assert!(actor.wait().success());
    // -p: netwatch, and so script, end by themselves once the actor has exited.
    let status = wait_bounded(&mut script);
    while let Ok(line) = lines.recv_timeout(TIMEOUT) {
        seen.push(line);
    }
    assert!(status.success(), "{status:?}: {seen:?}");
    seen
}

fn errno_line(lines: &[String]) -> &str {
    lines
        .iter()
        .find(|l| l.contains("EADDRNOTAVAIL") && l.contains("203.0.113.1:1"))
        .unwrap_or_else(|| panic!("no failure line in {lines:?}"))
}

#[test]
fn colour_on_a_terminal_around_the_errno_and_none_on_a_pipe() {
    require_root();
    let tty = on_a_pty("", &[]);
    let line = errno_line(&tty);
    assert!(
        line.contains(" \x1b[31mEADDRNOTAVAIL\x1b[0m 203.0.113.1:1"),
        "{line:?}"
    );
    assert_eq!(line.matches('\x1b').count(), 2, "the errno only: {line:?}");
    let header = tty.iter().find(|l| l.contains("SYSCALL")).unwrap();
    assert!(!header.contains('\x1b'), "{header:?}");

    // NO_COLOR, and --color never, on the same terminal.
    for (args, env) in [("", &[("NO_COLOR", "1")][..]), ("--color never", &[])] {
        let tty = on_a_pty(args, env);
        let line = errno_line(&tty);
        assert!(!line.contains('\x1b'), "{args} {env:?}: {line:?}");
    }

    // A pipe: none by default, colour only when asked for.
    let (_, line, _) = failure_line(&[], &[]);
    assert!(!line.contains('\x1b'), "{line:?}");
    let (_, line, _) = failure_line(&["--color", "always"], &[]);
    assert!(line.contains("\x1b[31mEADDRNOTAVAIL\x1b[0m"), "{line:?}");
}
