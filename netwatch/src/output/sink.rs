//! Where the stream goes: stdout, or a file (`-o FILE`) that SIGHUP reopens, so that
//! logrotate can move it away under a long-running daemon.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::PathBuf,
};

pub enum Sink {
    Stdout(io::Stdout),
    File { path: PathBuf, file: File },
}

fn open(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Sink {
    pub fn new(path: Option<PathBuf>) -> io::Result<Self> {
        Ok(match path {
            None => Self::Stdout(io::stdout()),
            Some(path) => Self::File {
                file: open(&path)?,
                path,
            },
        })
    }

    /// Open the file again by its name (after a rotation); stdout stays as it is.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let Self::File { path, file } = self {
            *file = open(path)?;
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(s) => s.write(buf),
            Self::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(s) => s.flush(),
            Self::File { file, .. } => file.flush(),
        }
    }
}
