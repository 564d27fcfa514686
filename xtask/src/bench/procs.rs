//! Processes the bench starts, each stopped by its pid (also on error paths and on
//! Ctrl-C), and their output lines with arrival times. What /proc says about them is in
//! procfs.rs.

use std::fs;
use std::io::{BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set a flag the bench checks between steps, so that it stops
/// what it started (by pid) before exiting. The children run in process groups of
/// their own, so a Ctrl-C at the terminal reaches the bench alone.
pub fn install_interrupt_handler() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps, in small steps so that an interrupt is noticed.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check_interrupted()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// Lines read from a child's pipe by a thread, each with the time it arrived.
pub struct Lines {
    rx: Receiver<(Instant, String)>,
    pub seen: Vec<(Instant, String)>,
    eof: bool,
}

impl Lines {
    pub fn spawn(r: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if tx.send((Instant::now(), line)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
            eof: false,
        }
    }

    /// Waits until a line matching `pred` has arrived (also one that came earlier);
    /// None on timeout or end of file.
    pub fn wait_for(
        &mut self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<Option<(Instant, String)>> {
        if let Some(hit) = self.seen.iter().find(|(_, l)| pred(l)) {
            return Ok(Some(hit.clone()));
        }
        let deadline = Instant::now() + timeout;
        while !self.eof {
            check_interrupted()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(item) => {
                    let hit = pred(&item.1);
                    self.seen.push(item.clone());
                    if hit {
                        return Ok(Some(item));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
        Ok(None)
    }

    /// Collects what arrives until end of file (the writer exited) or `timeout`.
    pub fn finish(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.rx.recv_timeout(left) {
                Ok(item) => self.seen.push(item),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
    }

    pub fn text(&self) -> String {
        let lines: Vec<&str> = self.seen.iter().map(|(_, l)| l.as_str()).collect();
        lines.join("\n")
    }
}

/// A child process, stopped by its pid when dropped (SIGTERM, then SIGKILL).
pub struct Proc {
    pub name: String,
    pub pid: i32,
    child: Child,
    status: Option<ExitStatus>,
    pub stdout: Option<Lines>,
    pub stderr: Option<Lines>,
    pub spawned_at: Instant,
}

/// How a process asked to stop ended ([`Proc::stop_or_kill`]).
#[derive(Debug)]
pub enum Stop {
    /// It exited after the signal, this long after it.
    Exited(ExitStatus, Duration),
    /// It was still running when the time was up, and was killed.
    Killed(ExitStatus),
}

impl Proc {
    /// Spawns `cmd` in a process group of its own; piped stdout/stderr are read into
    /// [`Lines`].
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Proc> {
        cmd.process_group(0);
        let spawned_at = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let pid = i32::try_from(child.id()).context("pid")?;
        let stdout = child.stdout.take().map(Lines::spawn);
        let stderr = child.stderr.take().map(Lines::spawn);
        Ok(Proc {
            name: name.to_owned(),
            pid,
            child,
            status: None,
            stdout,
            stderr,
            spawned_at,
        })
    }

    pub fn signal(&self, sig: libc::c_int) {
        if self.status.is_none() {
            // SAFETY: plain syscall; the child is not reaped, so the pid is still ours.
            unsafe { libc::kill(self.pid, sig) };
        }
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit; its status, or None.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends `sig` and waits up to `timeout`; returns the status and how long the
    /// exit took. Kills it (SIGKILL) and fails if it does not exit in time.
    pub fn stop(&mut self, sig: libc::c_int, timeout: Duration) -> Result<(ExitStatus, Duration)> {
        match self.stop_or_kill(sig, timeout)? {
            Stop::Exited(s, took) => Ok((s, took)),
            Stop::Killed(_) => bail!(
                "{} (pid {}) did not exit within {timeout:?} of signal {sig}; killed",
                self.name,
                self.pid
            ),
        }
    }

    /// Sends `sig` and waits up to `timeout`; a process still running then is killed
    /// (SIGKILL) and reaped. Fails only when even that does not end it within 5 s.
    pub fn stop_or_kill(&mut self, sig: libc::c_int, timeout: Duration) -> Result<Stop> {
        let t0 = Instant::now();
        self.signal(sig);
        if let Some(s) = self.wait_timeout(timeout) {
            return Ok(Stop::Exited(s, t0.elapsed()));
        }
        self.signal(libc::SIGKILL);
        match self.wait_timeout(Duration::from_secs(5)) {
            Some(s) => Ok(Stop::Killed(s)),
            None => bail!(
                "{} (pid {}) did not exit within {timeout:?} of signal {sig}, nor within 5 s of SIGKILL",
                self.name,
                self.pid
            ),
        }
    }

    /// Waits for a child expected to exit on its own; kills it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Ok(s);
            }
            if let Err(e) = check_interrupted() {
                return Err(e.context(format!("waiting for {}", self.name)));
            }
            if Instant::now() >= deadline {
                self.signal(libc::SIGKILL);
                self.wait_timeout(Duration::from_secs(5));
                bail!(
                    "{} (pid {}) still running after {timeout:?}; killed",
                    self.name,
                    self.pid
                );
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// stderr (and stdout) seen so far, for error messages.
    pub fn output_tail(&mut self) -> String {
        let mut s = String::new();
        for lines in [&mut self.stdout, &mut self.stderr].into_iter().flatten() {
            lines.finish(Duration::from_millis(200));
            let text = lines.text();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            for l in tail.into_iter().rev() {
                s.push_str("\n    ");
                s.push_str(l);
            }
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        if self.wait_timeout(Duration::from_secs(5)).is_none() {
            self.signal(libc::SIGKILL);
            self.wait_timeout(Duration::from_secs(5));
        }
    }
}

/// Kills a process we did not spawn ourselves (nginx's worker) if it still exists and
/// is still called `comm`.
pub fn kill_if_named(pid: i32, comm: &str) {
    if fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm) {
        // SAFETY: plain syscall.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Pins a child (all its threads) to one CPU, between fork and exec.
pub fn pin_command(cmd: &mut Command, cpu: usize) {
    // SAFETY: the closure only makes a syscall (sched_setaffinity), which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || crate::storm::set_affinity(0, cpu));
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::Stdio;

    use super::*;

    /// `sh -c SCRIPT`, once it has printed `ready` (its set-up done).
    fn sleeper(script: &str) -> Proc {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).stdout(Stdio::piped());
        // A shell's background job starts with SIGINT ignored, and sh cannot undo
        // that: the tests set the disposition they are about.
        // SAFETY: signal(2) is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut p = Proc::spawn("sleeper", cmd).unwrap();
        let ready = p.stdout.as_mut().unwrap();
        let seen = ready.wait_for(|l| l == "ready", Duration::from_secs(10));
        assert!(seen.unwrap().is_some(), "the script did not start");
        p
    }

    #[test]
    fn a_process_that_exits_on_the_signal_is_not_killed() {
        let mut p = sleeper("echo ready; exec sleep 30");
        match p
            .stop_or_kill(libc::SIGINT, Duration::from_secs(10))
            .unwrap()
        {
            Stop::Exited(s, took) => {
                assert_eq!(s.signal(), Some(libc::SIGINT));
                assert!(took < Duration::from_secs(10));
            }
            other => panic!("expected an exit on SIGINT, got {other:?}"),
        }
    }

    #[test]
    fn a_process_that_ignores_the_signal_is_killed_and_reaped() {
        // SIGINT ignored by sh stays ignored across the exec.
        const IGNORES: &str = "trap '' INT; echo ready; exec sleep 30";
        let mut p = sleeper(IGNORES);
        let t0 = Instant::now();
        match p
            .stop_or_kill(libc::SIGINT, Duration::from_millis(300))
            .unwrap()
        {
            Stop::Killed(s) => assert_eq!(s.signal(), Some(libc::SIGKILL)),
            other => panic!("expected a kill, got {other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(p.exited().is_some(), "reaped");
        let err = sleeper(IGNORES)
            .stop(libc::SIGINT, Duration::from_millis(300))
            .unwrap_err();
        assert!(err.to_string().contains("did not exit within"), "{err}");
    }
}
