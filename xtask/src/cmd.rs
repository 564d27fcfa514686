//! A small wrapper around `std::process::Command` that prints what it runs and turns
//! failures into errors naming the command.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, Result, anyhow, bail};

/// Variables that `cargo run` sets for xtask itself. Passing them on would make child
/// cargo/rustup processes believe they run inside xtask's build (for instance
/// `RUSTUP_TOOLCHAIN=stable` or `CARGO=<stable cargo>`), so they are removed.
const SCRUBBED_VARS: &[&str] = &[
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "RUSTUP_TOOLCHAIN",
    "RUSTUP_TOOLCHAIN_SOURCE",
];
const SCRUBBED_PREFIXES: &[&str] = &["CARGO_PKG_"];

/// Directories searched for commands in addition to `PATH` (a non-root user's `PATH`
/// often lacks the sbin directories where `ip` lives).
const EXTRA_COMMAND_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    env_removes: Vec<OsString>,
    cwd: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            env_removes: Vec::new(),
            cwd: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable for the child; it is shown when the command is printed.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env_removes.push(key.as_ref().to_owned());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The same command run as root: unchanged when we are root, else through `sudo`
    /// (variables set with [`Cmd::env`] are passed with `env` so sudo keeps them).
    pub fn elevated(self) -> Self {
        if is_root() {
            return self;
        }
        let mut sudo = Cmd::new("sudo");
        if !self.envs.is_empty() {
            sudo = sudo.arg("env");
            for (k, v) in &self.envs {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                sudo = sudo.arg(kv);
            }
        }
        sudo.env_removes = self.env_removes;
        sudo.cwd = self.cwd;
        sudo.arg(self.program).args(self.args)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for (key, _) in env::vars_os() {
            let Some(k) = key.to_str() else { continue };
            if SCRUBBED_VARS.contains(&k) || SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)) {
                c.env_remove(&key);
            }
        }
        for k in &self.env_removes {
            c.env_remove(k);
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        c
    }

    /// Prints the command, runs it with inherited stdio and fails unless it succeeds.
    pub fn run(&self) -> Result<()> {
        println!("xtask: {self}");
        let status = self
            .command()
            .status()
            .with_context(|| format!("failed to start `{self}`"))?;
        if !status.success() {
            bail!("`{self}` failed ({status})");
        }
        Ok(())
    }

    /// Runs the command without printing it or its output; true if it succeeded.
    pub fn probe(&self) -> bool {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs the command without printing it and returns its stdout; stderr is captured
    /// and shown in the error if it fails.
    pub fn read(&self) -> Result<String> {
        let out = self
            .command()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("failed to start `{self}`"))?;
        if !out.status.success() {
            bail!(
                "`{self}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8(out.stdout).with_context(|| format!("`{self}` printed non-UTF-8"))
    }

    /// Prints the command, runs it with stdin and stderr inherited and returns its
    /// stdout; fails unless it succeeds (for long commands whose progress, on stderr,
    /// should be seen, such as `cargo --message-format=json`).
    pub fn run_stdout(&self) -> Result<String> {
        println!("xtask: {self}");
        let out = self
            .command()
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("failed to start `{self}`"))?;
        if !out.status.success() {
            bail!("`{self}` failed ({})", out.status);
        }
        String::from_utf8(out.stdout).with_context(|| format!("`{self}` printed non-UTF-8"))
    }

    /// Prints the command and starts it in a process group of its own (so that it and
    /// everything it starts can be killed together, and a Ctrl-C at the terminal does
    /// not reach it), stdin from /dev/null, stdout and stderr into `log`.
    pub fn spawn_in_group(&self, log: &File) -> Result<Child> {
        println!("xtask: {self}");
        let stderr = log
            .try_clone()
            .context("duplicating the log file descriptor")?;
        self.command()
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .context("duplicating the log file descriptor")?,
            )
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("failed to start `{self}`"))
    }

    /// Prints the command and replaces the current process with it, so that its exit
    /// status (including death by a signal) and terminal signals such as Ctrl-C are its
    /// own. Returns only on failure.
    pub fn exec(&self) -> anyhow::Error {
        println!("xtask: {self}");
        let err = self.command().exec();
        anyhow!(err).context(format!("failed to execute `{self}`"))
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dir) = &self.cwd {
            write!(f, "(cd {} && ", quote(dir.as_os_str()))?;
        }
        for (k, v) in &self.envs {
            write!(f, "{}={} ", k.to_string_lossy(), quote(v))?;
        }
        write!(f, "{}", quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quote(a))?;
        }
        if self.cwd.is_some() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// Quotes a word the way a POSIX shell needs it (for display, and for the scripts
/// xtask writes).
pub fn quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Whether the effective user is root, from the `Uid:` line of /proc/self/status
/// (fields: real, effective, saved, filesystem).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| effective_uid(&status))
        == Some(0)
}

fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
}

/// Finds an executable on `PATH` (or in the usual system directories).
pub fn find_command(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(EXTRA_COMMAND_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_needs_it() {
        let c = Cmd::new("cargo")
            .env("RUSTFLAGS", "-L native=/x -l dylib=y")
            .args(["+1.98.0", "test", "--", "it's"]);
        assert_eq!(
            c.to_string(),
            r"RUSTFLAGS='-L native=/x -l dylib=y' cargo +1.98.0 test -- 'it'\''s'"
        );
    }

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t1000\t0\nGid:\t1\t1\t1\t1\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }
}
