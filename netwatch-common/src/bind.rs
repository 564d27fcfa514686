//! `bind(2)` results, from `syscalls:sys_exit_bind`.

use crate::{Header, SockAddr};

wire! {
    /// A bind that failed (`errno` > 0) or, with verbose tracking, succeeded (`errno` == 0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BindEvent: 80 {
        pub header: Header,
        /// Positive errno, or 0 for success.
        pub errno: i32,
        pub fd: i32,
        /// The address passed to bind(2), as read from the caller's memory.
        pub addr: SockAddr,
        /// `SOCK_STREAM`, `SOCK_DGRAM`... (0 when the fd could not be resolved): a
        /// datagram socket serves once bound, a stream socket once it listens.
        pub sock_type: u16,
        pub _pad: u16,
    }
}
