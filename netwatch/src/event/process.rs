//! Process exit (with status), fork and exec.

use netwatch_common::{
    EventKind,
    process::{EXIT_CODE_UNKNOWN, ExecEvent, ExitEvent, ForkEvent},
};

use super::{DecodeError, Wire, read, signal};

impl Wire for ExitEvent {
    const KIND: Option<EventKind> = Some(EventKind::Exit);
}
impl Wire for ForkEvent {
    const KIND: Option<EventKind> = Some(EventKind::Fork);
}
impl Wire for ExecEvent {
    const KIND: Option<EventKind> = Some(EventKind::Exec);
}

/// How a thread group ended, from its wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Killed {
        signal: i32,
        core: bool,
    },
    /// The kernel's BTF was unavailable: the status could not be read.
    Unknown,
}

impl ExitStatus {
    /// Decode a wait status (`task_struct->exit_code`; see wait(2)'s W* macros).
    pub fn from_wait_status(status: i32) -> Self {
        if status == EXIT_CODE_UNKNOWN {
            return Self::Unknown;
        }
        match status & 0x7f {
            0 => Self::Exited((status >> 8) & 0xff),
            sig => Self::Killed {
                signal: sig,
                core: status & 0x80 != 0,
            },
        }
    }

    /// A shell's `$?`: the code, or 128 + the signal.
    pub fn shell_code(self) -> Option<i32> {
        match self {
            Self::Exited(c) => Some(c),
            Self::Killed { signal, .. } => Some(128 + signal),
            Self::Unknown => None,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(c) => write!(f, "exit {c}"),
            Self::Killed {
                signal: s,
                core: false,
            } => write!(f, "killed by {}", signal::name(*s)),
            Self::Killed {
                signal: s,
                core: true,
            } => {
                write!(f, "killed by {} (core dumped)", signal::name(*s))
            }
            Self::Unknown => f.write_str("exit (status unknown)"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub status: ExitStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    pub child_pid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    pub old_tid: u32,
}

pub(super) fn decode_exit(bytes: &[u8]) -> Result<Exit, DecodeError> {
    let raw: ExitEvent = read(bytes)?;
    Ok(Exit {
        status: ExitStatus::from_wait_status(raw.exit_code),
    })
}

pub(super) fn decode_fork(bytes: &[u8]) -> Result<Fork, DecodeError> {
    let raw: ForkEvent = read(bytes)?;
    Ok(Fork {
        child_pid: raw.child_tgid,
    })
}

pub(super) fn decode_exec(bytes: &[u8]) -> Result<Exec, DecodeError> {
    let raw: ExecEvent = read(bytes)?;
    Ok(Exec {
        old_tid: raw.old_tid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses() {
        assert_eq!(ExitStatus::from_wait_status(0), ExitStatus::Exited(0));
        assert_eq!(ExitStatus::from_wait_status(3 << 8), ExitStatus::Exited(3));
        assert_eq!(
            ExitStatus::from_wait_status(9),
            ExitStatus::Killed {
                signal: 9,
                core: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(13),
            ExitStatus::Killed {
                signal: 13,
                core: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(11 | 0x80),
            ExitStatus::Killed {
                signal: 11,
                core: true
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(EXIT_CODE_UNKNOWN),
            ExitStatus::Unknown
        );
        assert_eq!(
            ExitStatus::from_wait_status(13).to_string(),
            "killed by SIGPIPE"
        );
        assert_eq!(ExitStatus::from_wait_status(3 << 8).to_string(), "exit 3");
        assert_eq!(
            ExitStatus::Killed {
                signal: 9,
                core: false
            }
            .shell_code(),
            Some(137)
        );
    }
}
