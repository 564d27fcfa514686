//! SIGPIPE generated for a process, and what became of it.

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
pub fn name(sig: i32) -> String {
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
        Some(n) => (*n).to_owned(),
        None => format!("signal {sig}"),
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
