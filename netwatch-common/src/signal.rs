//! SIGPIPE generated for a process (`signal:signal_generate`).

use crate::{COMM_LEN, Header};

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SignalEvent: 96 {
        pub header: Header,
        /// The target's handler for the signal (0 = SIG_DFL, 1 = SIG_IGN, else a
        /// function), when the target is the current task; [`HANDLER_UNKNOWN`] otherwise.
        pub handler: u64,
        /// Target thread id.
        pub target_tid: i32,
        pub sig: i32,
        /// `si_code` (SI_KERNEL, SI_USER...).
        pub code: i32,
        /// `enum trace_signal_result`: 0 delivered, 1 ignored, 2 already pending, ...
        pub result: i32,
        /// Non-zero when sent to the whole thread group.
        pub group: u32,
        pub _pad: u32,
        pub target_comm: [u8; COMM_LEN],
    }
}

pub const HANDLER_UNKNOWN: u64 = u64::MAX;

/// Signal numbers netwatch watches for (x86_64): SIGPIPE, and the signals that ask
/// a process to terminate (the daemon uses them to tell that a port's holder is on
/// its way out).
pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGKILL: i32 = 9;
pub const SIGPIPE: i32 = 13;
pub const SIGTERM: i32 = 15;

pub const fn is_traced(sig: i32) -> bool {
    matches!(sig, SIGHUP | SIGINT | SIGQUIT | SIGKILL | SIGPIPE | SIGTERM)
}
