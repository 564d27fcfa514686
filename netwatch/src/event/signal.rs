//! SIGPIPE generated for a process, and what became of it.

use std::borrow::Cow;

use netwatch_common::{
    EventKind,
    signal::{HANDLER_UNKNOWN, SignalEvent},
};

use super::{Comm, DecodeError, Wire, read};

impl Wire for SignalEvent {
    const KIND: Option<EventKind> = Some(EventKind::Signal);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// SIG_IGN (or the kernel dropped it as ignored).
    Ignored,
    /// A handler runs.
    Caught,
    /// SIG_DFL: SIGPIPE's default action terminates the process.
    Fatal,
    /// Delivered, handler unknown (sent by another process).
    Delivered,
    /// Already pending, or could not be queued.
    NotQueued,
}

impl Fate {
    /// Every fate: the series the metrics expose at 0 before the first SIGPIPE.
    pub const ALL: [Self; 5] = [
        Self::Ignored,
        Self::Caught,
        Self::Fatal,
        Self::Delivered,
        Self::NotQueued,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ignored => "ignored",
            Self::Caught => "caught",
            Self::Fatal => "fatal",
            Self::Delivered => "delivered",
            Self::NotQueued => "not queued",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    pub sig: i32,
    pub target_tid: i32,
    pub target_comm: Comm,
    pub code: i32,
    pub fate: Fate,
}

/// `enum trace_signal_result` (include/trace/events/signal.h).
const TRACE_SIGNAL_DELIVERED: i32 = 0;
const TRACE_SIGNAL_IGNORED: i32 = 1;
const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;

pub fn fate(result: i32, handler: u64) -> Fate {
    match (result, handler) {
        (TRACE_SIGNAL_IGNORED, _) | (_, SIG_IGN) => Fate::Ignored,
        (TRACE_SIGNAL_DELIVERED, SIG_DFL) => Fate::Fatal,
        (TRACE_SIGNAL_DELIVERED, HANDLER_UNKNOWN) => Fate::Delivered,
        (TRACE_SIGNAL_DELIVERED, _) => Fate::Caught,
        _ => Fate::NotQueued,
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Signal, DecodeError> {
    let raw: SignalEvent = read(bytes)?;
    Ok(Signal {
        sig: raw.sig,
        target_tid: raw.target_tid,
        target_comm: Comm::from_raw(&raw.target_comm),
        code: raw.code,
        fate: fate(raw.result, raw.handler),
    })
}

/// Signal names (x86_64; include/uapi/asm-generic/signal.h).
pub fn name(sig: i32) -> Cow<'static, str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match usize::try_from(sig)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| NAMES.get(i))
    {
        Some(n) => (*n).into(),
        None => format!("signal {sig}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fate_follows_result_and_handler() {
        assert_eq!(fate(1, 0), Fate::Ignored);
        assert_eq!(fate(0, SIG_IGN), Fate::Ignored);
        assert_eq!(fate(0, SIG_DFL), Fate::Fatal);
        assert_eq!(fate(0, 0x5555_0000_1234), Fate::Caught);
        assert_eq!(fate(0, HANDLER_UNKNOWN), Fate::Delivered);
        assert_eq!(fate(2, SIG_DFL), Fate::NotQueued);
    }

    #[test]
    fn names() {
        assert_eq!(name(13), "SIGPIPE");
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(31), "SIGSYS");
        assert_eq!(name(0), "signal 0");
        assert_eq!(name(40), "signal 40");
    }
}

#[cfg(test)]
mod decode_tests {
    use netwatch_common::{COMM_LEN, signal::SIGPIPE};

    use super::*;
    use crate::event::{
        Body, decode,
        tests::{assert_short, bytes_of, expected, header},
    };

    /// SI_KERNEL: the kernel raised it (a write on a broken pipe or socket).
    const SI_KERNEL: i32 = 0x80;

    fn record(result: i32, handler: u64, target_comm: &[u8]) -> Vec<u8> {
        let mut comm = [0u8; COMM_LEN];
        comm[..target_comm.len()].copy_from_slice(target_comm);
        bytes_of(&SignalEvent {
            header: header(EventKind::Signal, b"writer"),
            handler,
            target_tid: 4243,
            sig: SIGPIPE,
            code: SI_KERNEL,
            result,
            group: 0,
            _pad: 0,
            target_comm: comm,
        })
    }

    #[test]
    fn fatal_sigpipe_on_the_writer_itself() {
        let ev = decode(&record(TRACE_SIGNAL_DELIVERED, SIG_DFL, b"writer")).unwrap();
        assert_eq!(
            ev,
            expected(
                b"writer",
                Body::Signal(Signal {
                    sig: 13,
                    target_tid: 4243,
                    target_comm: Comm::from_raw(b"writer"),
                    code: SI_KERNEL,
                    fate: Fate::Fatal,
                })
            )
        );
        assert_eq!(ev.kind_name(), "signal");
        assert!(ev.is_failure());
    }

    #[test]
    fn every_fate_decodes() {
        let cases = [
            (TRACE_SIGNAL_DELIVERED, SIG_DFL, Fate::Fatal, "fatal"),
            (TRACE_SIGNAL_DELIVERED, SIG_IGN, Fate::Ignored, "ignored"),
            (TRACE_SIGNAL_IGNORED, SIG_DFL, Fate::Ignored, "ignored"),
            (
                TRACE_SIGNAL_DELIVERED,
                0x5555_5555_1234,
                Fate::Caught,
                "caught",
            ),
            (
                TRACE_SIGNAL_DELIVERED,
                HANDLER_UNKNOWN,
                Fate::Delivered,
                "delivered",
            ),
            (2, SIG_DFL, Fate::NotQueued, "not queued"),
            (3, HANDLER_UNKNOWN, Fate::NotQueued, "not queued"),
        ];
        for (result, handler, fate, name) in cases {
            let Body::Signal(s) = decode(&record(result, handler, b"w")).unwrap().body else {
                panic!()
            };
            assert_eq!(s.fate, fate, "result {result} handler {handler:#x}");
            assert_eq!(s.fate.name(), name);
        }
    }

    #[test]
    fn target_comm_is_escaped_and_full_length() {
        let Body::Signal(s) = decode(&record(0, SIG_DFL, b"a b\x1b")).unwrap().body else {
            panic!()
        };
        assert_eq!(s.target_comm.to_string(), "a\\x20b\\x1b");
        let Body::Signal(s) = decode(&record(0, SIG_DFL, &[b'z'; COMM_LEN])).unwrap().body else {
            panic!()
        };
        assert_eq!(s.target_comm.to_string(), "z".repeat(COMM_LEN));
    }

    #[test]
    fn short_signal_record_is_an_error() {
        let bytes = record(0, SIG_DFL, b"w");
        assert_short(&bytes, 96, 80, EventKind::Signal);
    }
}
