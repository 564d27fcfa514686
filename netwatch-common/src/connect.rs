//! `connect(2)` results, from `syscalls:sys_exit_connect`, and asynchronous connect
//! failures (`sock:inet_sk_error_report`), which arrive on the same record.

use crate::{Header, SockAddr, SockInfo};

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ConnectEvent: 152 {
        pub header: Header,
        /// The socket as it was after the call (local address when bound).
        pub sock: SockInfo,
        /// The destination passed to connect(2); for an error report, the socket's peer.
        pub addr: SockAddr,
        /// Positive errno, 0 for success.
        pub errno: i32,
        /// -1 for an error report (no fd: it arrived on the socket later).
        pub fd: i32,
        /// [`CONNECT_SYSCALL`] or [`CONNECT_ERROR_REPORT`].
        pub origin: u32,
        pub _pad: [u32; 2],
    }
}

/// The connect(2) call itself returned the result.
pub const CONNECT_SYSCALL: u32 = 0;
/// A non-blocking connect failed later: the error was reported on the socket
/// (header pid/comm are the socket's owner, or 0 when unknown).
pub const CONNECT_ERROR_REPORT: u32 = 1;
