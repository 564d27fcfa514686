//! Where the stream goes: stdout, or a file (`-o FILE`) that SIGHUP reopens, so that
//! logrotate can move it away under a long-running daemon.
//!
//! What happens when the output goes away (`| head`, a full disk) depends on the mode:
//! tracing the host, netwatch has nothing left to do and the error ends it; tracing
//! `-- CMD`, the exit status is the result (CMD's own, or `--check`'s 86), so the
//! sink says once on stderr that the stream stops and swallows what follows, and
//! tracing goes on to CMD's end.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::fd::AsRawFd as _,
    path::PathBuf,
};

enum Target {
    Stdout(io::Stdout),
    File { path: PathBuf, file: File },
}

/// What a failed write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnLoss {
    /// The error goes up (and ends netwatch).
    Fail,
    /// Said once on stderr; the rest of the stream is dropped.
    Discard,
}

pub struct Sink {
    target: Target,
    on_loss: OnLoss,
    /// Set once the output is gone in `Discard` mode.
    lost: bool,
}

fn open(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Sink {
    pub fn new(path: Option<PathBuf>, on_loss: OnLoss) -> io::Result<Self> {
        let target = match path {
            None => Target::Stdout(io::stdout()),
            Some(path) => Target::File {
                file: open(&path)?,
                path,
            },
        };
        Ok(Self {
            target,
            on_loss,
            lost: false,
        })
    }

    /// Open the file again by its name (after a rotation); stdout stays as it is.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let Target::File { path, file } = &mut self.target {
            *file = open(path)?;
            self.lost = false;
        }
        Ok(())
    }

    /// Whether the output has gone away (and is being dropped).
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Notices a reader that went away from stdout's pipe or socket (`netwatch | head`
    /// on a quiet host) without waiting for something to write: `BrokenPipe` in
    /// `Fail` mode.
    pub fn check_reader(&mut self) -> io::Result<()> {
        if self.lost || !matches!(self.target, Target::Stdout(_)) {
            return Ok(());
        }
        let mut pfd = libc::pollfd {
            fd: io::stdout().as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one pollfd of ours, no waiting. POLLERR and POLLHUP are reported
        // whatever `events` asks: a pipe whose reader closed gives POLLERR.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n == 1 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return self.failed(io::Error::from_raw_os_error(libc::EPIPE));
        }
        Ok(())
    }

    fn name(&self) -> String {
        match &self.target {
            Target::Stdout(_) => "stdout".to_owned(),
            Target::File { path, .. } => path.display().to_string(),
        }
    }

    /// A write failed with `e`: up in `Fail` mode, else said once and swallowed.
    fn failed(&mut self, e: io::Error) -> io::Result<()> {
        if self.on_loss == OnLoss::Fail || e.kind() == io::ErrorKind::Interrupted {
            return Err(e);
        }
        self.lost = true;
        tracing::warn!(
            "writing to {}: {e}: the stream stops here; still tracing the command \
             (its exit status, --check and the counts stand)",
            self.name()
        );
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.lost {
            return Ok(buf.len());
        }
        let written = match &mut self.target {
            Target::Stdout(s) => s.write(buf),
            Target::File { file, .. } => file.write(buf),
        };
        match written {
            Ok(n) => Ok(n),
            Err(e) => self.failed(e).map(|()| buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.lost {
            return Ok(());
        }
        let flushed = match &mut self.target {
            Target::Stdout(s) => s.flush(),
            Target::File { file, .. } => file.flush(),
        };
        flushed.or_else(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_fails_or_is_swallowed_once() {
        let full = || Some(PathBuf::from("/dev/full"));
        let mut fail = Sink::new(full(), OnLoss::Fail).unwrap();
        let e = fail.write_all(b"line\n").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert!(!fail.is_lost());

        let mut discard = Sink::new(full(), OnLoss::Discard).unwrap();
        discard.write_all(b"line\n").unwrap();
        assert!(discard.is_lost());
        discard.write_all(b"more\n").unwrap();
        discard.flush().unwrap();
    }
}
