//! Errors of the send family (write, writev, pwritev, sendto, sendmsg, sendmmsg,
//! sendfile64, splice) and the receive family (read, readv, recvfrom, recvmsg,
//! recvmmsg), from their `syscalls:sys_exit_*` tracepoints.

use crate::{Header, SockInfo};

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SockIoEvent: 128 {
        pub header: Header,
        pub sock: SockInfo,
        /// Positive errno.
        pub errno: i32,
        pub fd: i32,
        /// A [`crate::Syscall`].
        pub syscall: u32,
        pub _pad: u32,
    }
}
