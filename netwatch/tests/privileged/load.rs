//! Starting up: the privileges netwatch needs, and which sources attach (all of them
//! on the kernels CI boots; a missing tracepoint switches off only its own source).

use std::fs;

use crate::support::{self, Actor, Netwatch};
use crate::{require_root, reset, sigpipe_writer};

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

/// A tracefs view of the running kernel without `syscalls:sys_exit_bind`: every
/// other tracepoint directory is a symlink to the real one.
struct TracefsWithout {
    dir: std::path::PathBuf,
}

impl TracefsWithout {
    fn new(missing_category: &str, missing: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("netwatch-test-tracefs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let real = std::path::Path::new("/sys/kernel/tracing/events");
        for category in fs::read_dir(real).unwrap().flatten() {
            if !category.file_type().unwrap().is_dir() {
                continue;
            }
            let cat = category.file_name();
            fs::create_dir_all(dir.join("events").join(&cat)).unwrap();
            for tp in fs::read_dir(category.path()).unwrap().flatten() {
                if cat == missing_category && tp.file_name() == missing {
                    continue;
                }
                std::os::unix::fs::symlink(
                    tp.path(),
                    dir.join("events").join(&cat).join(tp.file_name()),
                )
                .unwrap();
            }
        }
        Self { dir }
    }
}

impl Drop for TracefsWithout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_missing_tracepoint_disables_only_its_source_with_a_warning() {
    require_root();
    let fake = TracefsWithout::new("signal", "signal_generate");
    let mut nw =
        Netwatch::start_with_env(&["-j"], &[("NETWATCH_TRACEFS", fake.dir.to_str().unwrap())]);
    // A SIGPIPE death: the EPIPE and the exit still arrive, the signal cannot.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut dies = Actor::spawn(&sigpipe_writer(port, "SIG_DFL"));
    dies.read("local");
    let (peer, _) = listener.accept().unwrap();
    reset(peer);
    dies.go();
    let pid = dies.pid();
    dies.wait();
    nw.wait_json("the EPIPE", |v| v["kind"] == "send" && v["pid"] == pid);
    nw.wait_json("the SIGPIPE death", |v| {
        v["kind"] == "exit" && v["pid"] == pid
    });
    nw.sync();
    assert!(
        nw.json_seen().iter().all(|v| v["kind"] != "signal"),
        "{:?}",
        nw.seen()
    );
    let (status, _, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(
        warnings,
        [
            "netwatch: warning: signal: tracepoint signal:signal_generate does not exist on this kernel"
        ],
        "{stderr}"
    );
}

/// On every kernel CI boots (this host's, Debian's 6.1 and 6.12), every source
/// attaches and nothing is switched off: no warning at all.
#[test]
fn on_this_kernel_every_source_attaches_without_a_warning() {
    require_root();
    let (status, stdout, stderr) =
        support::run_program(support::NETWATCH, &["-j", "--", "true"], &[]);
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let ready = stderr
        .lines()
        .find(|l| l.contains("ready: tracing"))
        .unwrap_or_else(|| panic!("no ready line: {stderr}"));
    for source in [
        "bind", "listen", "connect", "sockio", "reset", "signal", "process",
    ] {
        assert!(
            ready.contains(&format!("{source},"))
                || ready.contains(&format!("{source} ("))
                || ready.contains(&format!("{source})")),
            "{source} not attached: {ready}"
        );
    }
    assert!(stdout.contains(r#""kind":"summary_end""#), "{stdout}");
}

#[test]
fn without_cap_sys_ptrace_a_port_holder_is_not_guessed() {
    require_root();
    // Enough to trace, not enough to look into other users' processes.
    let caps = "+bpf,+perfmon,+sys_admin,+dac_read_search";
    let mut nw = Netwatch::start_under(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
        ],
        &["-j"],
        &[],
    );
    let mut actor = Actor::spawn(
        "a = socket.socket(); a.bind(('127.0.0.1', 0)); a.listen()\nb = socket.socket()\ntry:\n    b.bind(a.getsockname())\nexcept OSError as e:\n    say(err=e.errno)\ngo()",
    );
    assert_eq!(actor.read("err"), "98");
    let d = nw.wait_json("the diagnosis", |v| {
        v["kind"] == "diagnosis" && v["pid"] == actor.pid()
    });
    actor.go();
    assert!(actor.wait().success());
    assert_eq!(
        d["diagnosis"], "port_in_use",
        "no guess (port_freed) without the capability: {d}"
    );
    assert!(
        d["not_looked_up"]
            .as_str()
            .unwrap()
            .contains("needs CAP_SYS_PTRACE"),
        "{d}"
    );
    nw.finish();
}
