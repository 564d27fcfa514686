//! TCP resets received (`tcp:tcp_receive_reset`) and sent (`tcp:tcp_send_reset`).
//!
//! Both fire in softirq context, where the current task is whoever was interrupted:
//! the header's pid/comm are the socket's owner as seen from process context
//! (SOCK_OWNER map), or 0 when no process was seen using the socket.

use crate::{Header, SockAddr};

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ResetEvent: 112 {
        pub header: Header,
        /// The `struct sock` address (0 when the reset answered a packet with no socket).
        pub sk: u64,
        pub local: SockAddr,
        pub remote: SockAddr,
        /// [`RESET_RECEIVED`] or [`RESET_SENT`].
        pub direction: u32,
        /// TCP state of the socket when sent (-1 when unknown).
        pub state: i32,
        /// `enum sk_rst_reason` of tcp_send_reset ([`crate::ABSENT`] when the kernel has none).
        pub reason: u32,
        /// Non-zero when the header names the socket's owner.
        pub owner_known: u32,
    }
}

pub const RESET_RECEIVED: u32 = 0;
pub const RESET_SENT: u32 = 1;
