//! The filters bcc and strace users reach for (-P, --errno, -n, -u, -4/-6, -p lists),
//! applied in the kernel: each test makes failures that match and failures that do
//! not, from its own processes, and checks that only the matching ones come out, and
//! that the ready line names the filter.

use serde_json::Value;

use crate::require_root;
use crate::support::{Actor, Netwatch};

/// `netwatch -j ARGS`, ready, its ready line naming the filter (`only ...`).
fn start_filtered(args: &[&str], only: &str) -> Netwatch {
    let argv: Vec<&str> = ["-j"].into_iter().chain(args.iter().copied()).collect();
    let nw = Netwatch::start(&argv);
    let ready = nw.ready_line();
    assert!(ready.contains(&format!("only {only}")), "{ready}");
    nw
}

/// The JSON records netwatch printed up to its end (stopping drains the kernel's).
fn records(nw: Netwatch) -> Vec<Value> {
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    seen.iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The failed binds of `pid` among `records`: (errno, port).
fn binds_of(records: &[Value], pid: u32) -> Vec<(i64, i64)> {
    records
        .iter()
        .filter(|v| v["kind"] == "bind" && v["pid"] == pid)
        .map(|v| {
            (
                v["errno"].as_i64().unwrap(),
                v["addr"]["port"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// An actor that, on `go`, fails a bind on each of `ports` (EADDRNOTAVAIL) and then
/// one on a loopback port it holds (EADDRINUSE).
fn failing_binds(ports: &[u16]) -> Actor {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    Actor::spawn(&format!(
        r#"
hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen()
say(held=hold.getsockname()[1])
go()
for port in [{}]:
    fail_bind(port)
s = socket.socket()
try:
    s.bind(("127.0.0.1", hold.getsockname()[1]))
except OSError as e:
    say(err=e.errno)
"#,
        ports.join(", ")
    ))
}

/// Runs a [`failing_binds`] actor to its end under `nw`; its pid and held port.
fn run_failing_binds(ports: &[u16]) -> (u32, u16) {
    let mut actor = failing_binds(ports);
    let held: u16 = actor.read("held").parse().unwrap();
    actor.go();
    for _ in 0..=ports.len() {
        actor.read("err");
    }
    let pid = actor.pid();
    assert!(actor.wait().success());
    (pid, held)
}

#[test]
fn port_filter_reports_that_port_only() {
    require_root();
    let nw = start_filtered(&["-P", "4711"], "port 4711");
    let (pid, _) = run_failing_binds(&[4711, 4712]);
    let seen = records(nw);
    assert_eq!(binds_of(&seen, pid), [(99, 4711)], "{seen:?}");
}

#[test]
fn errno_filter_reports_and_counts_those_failures_only() {
    require_root();
    let nw = start_filtered(&["--errno", "EADDRINUSE"], "EADDRINUSE");
    let (pid, held) = run_failing_binds(&[4711, 4712]);
    let seen = records(nw);
    assert_eq!(binds_of(&seen, pid), [(98, i64::from(held))], "{seen:?}");
    let summary = seen
        .iter()
        .find(|v| v["kind"] == "summary" && v["pid"] == pid)
        .expect("the actor's summary");
    assert_eq!(summary["counts"]["EADDRINUSE"]["bind"], 1, "{summary}");
    assert!(summary["counts"]["EADDRNOTAVAIL"].is_null(), "{summary}");
}

/// An actor named `name` (prctl) that fails one bind on `go`.
fn named(name: &str) -> Actor {
    Actor::spawn(&format!(
        "import ctypes\nctypes.CDLL(None).prctl(15, b\"{name}\", 0, 0, 0)\ngo()\nfail_bind()"
    ))
}

#[test]
fn name_filter_matches_the_exact_comm() {
    require_root();
    let nw = start_filtered(&["-n", "nw-filter-in"], "name nw-filter-in");
    only_the_first_is_reported(nw, named("nw-filter-in"), named("nw-filter-inx"));
}

/// Lets `inside` and `outside` fail their one bind (EADDRNOTAVAIL, port 1) and
/// checks that `nw` reported `inside`'s only.
fn only_the_first_is_reported(nw: Netwatch, mut inside: Actor, mut outside: Actor) {
    for a in [&mut inside, &mut outside] {
        a.go();
        assert_eq!(a.read("err"), "99");
    }
    let (ipid, opid) = (inside.pid(), outside.pid());
    assert!(inside.wait().success() && outside.wait().success());
    let seen = records(nw);
    assert_eq!(binds_of(&seen, ipid), [(99, 1)], "{seen:?}");
    assert!(binds_of(&seen, opid).is_empty(), "{seen:?}");
}

#[test]
fn uid_filter_reports_that_user_only() {
    require_root();
    let nw = start_filtered(&["-u", "65534"], "uid 65534");
    let script = "go()\nfail_bind()";
    let nobody = Actor::spawn_in(crate::AS_NOBODY, script);
    only_the_first_is_reported(nw, nobody, Actor::spawn(script));
}

#[test]
fn family_filter_keeps_one_address_family() {
    require_root();
    let nw = start_filtered(&["-6"], "IPv6");
    let mut actor = Actor::spawn(
        r#"
go()
fail_bind(4711)
s = socket.socket(socket.AF_INET6)
try:
    s.bind(("2001:db8::1", 4712))
except OSError as e:
    say(err=e.errno)
"#,
    );
    actor.go();
    assert_eq!(actor.read("err"), "99");
    assert_eq!(actor.read("err"), "99");
    let pid = actor.pid();
    assert!(actor.wait().success());
    let seen = records(nw);
    assert_eq!(binds_of(&seen, pid), [(99, 4712)], "{seen:?}");
}

#[test]
fn a_comma_list_of_pids_traces_each() {
    require_root();
    let mut a = Actor::spawn("go()\nfail_bind()");
    let mut b = Actor::spawn("go()\nfail_bind()");
    let mut c = Actor::spawn("go()\nfail_bind()");
    let list = format!("{},{}", a.pid(), b.pid());
    let nw = Netwatch::start(&["-j", "--keep-going", "-p", &list]);
    assert!(
        nw.ready_line().contains(&format!(
            "tracing pid {}, pid {} and their children",
            a.pid(),
            b.pid()
        )),
        "{}",
        nw.ready_line()
    );
    for x in [&mut a, &mut b, &mut c] {
        x.go();
        assert_eq!(x.read("err"), "99");
    }
    let pids = [a.pid(), b.pid(), c.pid()];
    for x in [a, b, c] {
        assert!(x.wait().success());
    }
    let seen = records(nw);
    assert_eq!(binds_of(&seen, pids[0]), [(99, 1)], "{seen:?}");
    assert_eq!(binds_of(&seen, pids[1]), [(99, 1)], "{seen:?}");
    assert!(binds_of(&seen, pids[2]).is_empty(), "{seen:?}");
}
