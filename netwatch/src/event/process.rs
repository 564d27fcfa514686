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

    /// The code passed to exit(2), when the process exited.
    pub fn code(self) -> Option<i32> {
        match self {
            Self::Exited(c) => Some(c),
            _ => None,
        }
    }

    /// The signal that killed the process, when one did, and whether it dumped core.
    pub fn signal(self) -> Option<(i32, bool)> {
        match self {
            Self::Killed { signal, core } => Some((signal, core)),
            _ => None,
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
    /// What was executed and its arguments, read from /proc when the record is shown
    /// (`-v`); None when the process had already exited or exec'd again.
    pub command: Option<Command>,
}

/// A process's executable and argv, as /proc gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub exe: String,
    pub argv: Vec<String>,
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
        command: None,
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

#[cfg(test)]
mod decode_tests {
    use super::*;
    use crate::event::{
        Body, Event, decode,
        tests::{assert_short, bytes_of, expected, header},
    };

    fn exit(status: i32) -> Event {
        decode(&bytes_of(&ExitEvent {
            header: header(EventKind::Exit, b"server"),
            exit_code: status,
            _pad: 0,
        }))
        .unwrap()
    }

    #[test]
    fn exit_records_decode_their_wait_status() {
        let ev = exit(3 << 8);
        assert_eq!(
            ev,
            expected(
                b"server",
                Body::Exit(Exit {
                    status: ExitStatus::Exited(3),
                })
            )
        );
        assert_eq!(ev.kind_name(), "exit");
        assert!(!ev.is_failure());

        let status = |s| match exit(s).body {
            Body::Exit(e) => e.status,
            b => panic!("{b:?}"),
        };
        assert_eq!(status(0), ExitStatus::Exited(0));
        assert_eq!(status(255 << 8), ExitStatus::Exited(255));
        assert_eq!(
            status(13),
            ExitStatus::Killed {
                signal: 13,
                core: false
            }
        );
        assert_eq!(
            status(6 | 0x80),
            ExitStatus::Killed {
                signal: 6,
                core: true
            }
        );
        assert_eq!(status(EXIT_CODE_UNKNOWN), ExitStatus::Unknown);
        assert_eq!(status(EXIT_CODE_UNKNOWN).shell_code(), None);
        assert_eq!(
            status(EXIT_CODE_UNKNOWN).to_string(),
            "exit (status unknown)"
        );
        assert_eq!(
            status(6 | 0x80).to_string(),
            "killed by SIGABRT (core dumped)"
        );
        assert_eq!(status(6 | 0x80).shell_code(), Some(134));
    }

    #[test]
    fn fork_gives_the_child_process_not_thread() {
        let ev = decode(&bytes_of(&ForkEvent {
            header: header(EventKind::Fork, b"bash"),
            child_tgid: 5000,
            child_tid: 5001,
        }))
        .unwrap();
        assert_eq!(ev, expected(b"bash", Body::Fork(Fork { child_pid: 5000 })));
        assert_eq!(ev.kind_name(), "fork");
        assert!(!ev.is_failure());
    }

    #[test]
    fn exec_keeps_the_old_tid_and_the_new_comm() {
        let ev = decode(&bytes_of(&ExecEvent {
            header: header(EventKind::Exec, b"python3"),
            old_tid: 4250,
            _pad: 0,
        }))
        .unwrap();
        let exec = Exec {
            old_tid: 4250,
            command: None,
        };
        assert_eq!(ev, expected(b"python3", Body::Exec(exec)));
        assert_eq!(ev.kind_name(), "exec");
        assert!(!ev.is_failure());
    }

    #[test]
    fn short_process_records_are_errors() {
        let exit = bytes_of(&ExitEvent {
            header: header(EventKind::Exit, b"x"),
            exit_code: 0,
            _pad: 0,
        });
        let fork = bytes_of(&ForkEvent {
            header: header(EventKind::Fork, b"x"),
            child_tgid: 1,
            child_tid: 1,
        });
        let exec = bytes_of(&ExecEvent {
            header: header(EventKind::Exec, b"x"),
            old_tid: 1,
            _pad: 0,
        });
        for (kind, bytes) in [
            (EventKind::Exit, exit),
            (EventKind::Fork, fork),
            (EventKind::Exec, exec),
        ] {
            assert_short(&bytes, 56, 52, kind);
        }
    }
}
