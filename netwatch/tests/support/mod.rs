//! Harness for the tests that run the built `netwatch` binary.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

pub const NETWATCH: &str = env!("CARGO_BIN_EXE_netwatch");

/// Bound on every wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A running `netwatch`, attached and ready.
pub struct Netwatch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
    /// The `netwatch: ready: ...` line.
    ready: String,
}

impl Netwatch {
    /// Start netwatch with `args` and wait for its ready line.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Start netwatch with `args` and extra environment, and wait for its ready line.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_under(&[], args, env)
    }

    /// Start netwatch under `prefix` (e.g. `setpriv ...`, which must exec it in place).
    pub fn start_under(prefix: &[&str], args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = match prefix {
            [] => Command::new(NETWATCH),
            [p, rest @ ..] => {
                let mut c = Command::new(p);
                c.args(rest).arg(NETWATCH);
                c
            }
        };
        let mut child = spawn_piped(cmd.args(args), env);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // stderr: the ready line is reported through a channel, the rest collected.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                if line.starts_with("netwatch: ready") {
                    let _ = ready_tx.send(line.trim_end().to_owned());
                }
                all.push_str(&line);
                line.clear();
            }
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            all + &rest
        });
        let mut nw = Self {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
            ready: String::new(),
        };
        match ready_rx.recv_timeout(TIMEOUT) {
            Ok(line) => nw.ready = line,
            Err(_) => {
                let _ = nw.child.kill();
                let _ = nw.child.wait();
                let err = nw.stderr.take().unwrap().join().unwrap_or_default();
                panic!("netwatch did not become ready within {TIMEOUT:?}; stderr:\n{err}");
            }
        }
        nw
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The ready line netwatch printed on stderr.
    pub fn ready_line(&self) -> &str {
        &self.ready
    }

    /// Wait until a line satisfies `pred`; returns it. Panics with everything seen on timeout.
    pub fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "no line with {what} within {TIMEOUT:?}; saw:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Wait for a JSON object satisfying `pred`.
    pub fn wait_json(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let line = self.wait_line(what, |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| pred(&v))
        });
        serde_json::from_str(&line).unwrap()
    }

    /// For an unfiltered JSON stream: everything recorded before now has been read.
    /// A marker process fails one bind and the stream is read up to its record: the
    /// ring buffer keeps the order in which records were made, so what a negative
    /// check looks for would have come before it.
    pub fn sync(&mut self) {
        let (status, out, err) = run_program(
            "python3",
            &[
                "-c",
                "import os, socket\n\
                 try:\n    socket.socket().bind(('203.0.113.1', 1))\n\
                 except OSError:\n    print(os.getpid())",
            ],
            &[],
        );
        assert!(status.success(), "the marker failed: {err}");
        let marker: u64 = out.trim().parse().expect("the marker's pid");
        self.wait_json("the marker's failed bind", |v| {
            v["kind"] == "bind" && v["pid"] == marker
        });
    }

    /// Every JSON object seen so far.
    pub fn json_seen(&self) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Send `sig`, wait for exit (bounded), and return the status, the rest of the
    /// stream, and stderr.
    pub fn stop_with(mut self, sig: i32) -> (ExitStatus, Vec<String>, String) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let status = wait_bounded(&mut self.child);
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            self.seen.push(line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        let seen = std::mem::take(&mut self.seen);
        dump(&seen.iter().map(|l| format!("{l}\n")).collect::<String>());
        (status, seen, stderr)
    }

    pub fn stop(self) -> (ExitStatus, Vec<String>, String) {
        self.stop_with(libc::SIGINT)
    }

    /// Stop with Ctrl-C and check that netwatch exits 0.
    pub fn finish(self) {
        let (status, _, stderr) = self.stop();
        assert!(
            status.success(),
            "netwatch exited with {status:?}; stderr:\n{stderr}"
        );
    }
}

impl Drop for Netwatch {
    fn drop(&mut self) {
        // A failed assertion must not leave netwatch attached.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `pid` is running (not exited, not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Wait until `done` holds, checking every 10 ms; fails after the test timeout,
/// saying `what` never happened.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {TIMEOUT:?}: no");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for `child`, killing it if it takes longer than the test timeout.
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {TIMEOUT:?}", child.id());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Run netwatch to completion with `args` and `env`, bounded in time.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let (status, out, err) = run_program(NETWATCH, args, env);
    dump(&out);
    (status, out, err)
}

/// With `$NETWATCH_TEST_DUMP` set to a directory: netwatch's whole stdout appended to
/// a file named after the running test, to compare the output of two builds.
fn dump(stdout: &str) {
    let Some(dir) = std::env::var_os("NETWATCH_TEST_DUMP") else {
        return;
    };
    let test = thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", ".");
    let path = std::path::Path::new(&dir).join(test);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(stdout.as_bytes()));
    if let Err(e) = written {
        panic!("NETWATCH_TEST_DUMP: writing {}: {e}", path.display());
    }
}

/// `cmd` started with `env` added, no stdin, and stdout and stderr piped to the test.
fn spawn_piped(cmd: &mut Command, env: &[(&str, &str)]) -> Child {
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {:?}: {e}", cmd.get_program()))
}

/// Run `program` to completion, bounded in time; returns status, stdout, stderr.
pub fn run_program(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let mut child = spawn_piped(Command::new(program).args(args), env);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child);
    (status, out.join().unwrap(), err.join().unwrap())
}

/// A python3 process running `script`, which waits for a line on stdin before going on
/// when it calls `go()`. It prints `key=value` lines the test reads back.
pub struct Actor {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The script's stdout, line by line.
    out: Receiver<String>,
}

const PRELUDE: &str = r#"
import os, socket, sys, time, errno
def go():
    sys.stdin.readline()
def say(**kw):
    for k, v in kw.items():
        print(f"{k}={v}", flush=True)
def fail_bind(port=1):
    """A bind no interface can take (EADDRNOTAVAIL); says its errno."""
    s = socket.socket()
    try:
        s.bind(("203.0.113.1", port))
    except OSError as e:
        say(err=e.errno)
say(pid=os.getpid())
"#;

impl Actor {
    pub fn spawn(script: &str) -> Self {
        Self::spawn_in(&[], script)
    }

    /// Run the script under `prefix` (e.g. `ip netns exec NS`), which must exec
    /// python3 in place so that the pid is python's.
    pub fn spawn_in(prefix: &[&str], script: &str) -> Self {
        let (program, args) = match prefix {
            [] => ("python3", Vec::new()),
            [p, rest @ ..] => (*p, rest.iter().copied().chain(["python3"]).collect()),
        };
        let mut child = Command::new(program)
            .args(args)
            .arg("-c")
            .arg(format!("{PRELUDE}\n{script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning python3");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, out) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut a = Self { child, stdin, out };
        let pid: u32 = a.read("pid").parse().unwrap();
        assert_eq!(pid, a.child.id(), "the prefix must exec python3 in place");
        a
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Read the next `key=value` line the script prints and check its key; fails
    /// after the test timeout.
    pub fn read(&mut self, key: &str) -> String {
        let line = match self.out.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(_) => panic!(
                "actor {} said nothing within {TIMEOUT:?} (waiting for {key})",
                self.child.id()
            ),
        };
        let (k, v) = line
            .trim_end()
            .split_once('=')
            .unwrap_or_else(|| panic!("actor said {line:?}"));
        assert_eq!(k, key, "actor said {line:?}");
        v.to_owned()
    }

    /// Let the script past its `go()`.
    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn wait(mut self) -> ExitStatus {
        drop(self.stdin.take());
        wait_bounded(&mut self.child)
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
