//! Errors of the send family (write, writev, pwritev, sendto, sendmsg, sendmmsg,
//! sendfile64, splice) and the receive family (read, readv, recvfrom, recvmsg,
//! recvmmsg), from their `syscalls:sys_exit_*` tracepoints.

use crate::{Header, SockInfo};

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockIoEvent {
    pub header: Header,
    pub sock: SockInfo,
    /// Positive errno.
    pub errno: i32,
    pub fd: i32,
    /// A [`crate::Syscall`].
    pub syscall: u32,
    pub _pad: u32,
}
assert_packed!(SockIoEvent, 128, {
    header: Header,
    sock: SockInfo,
    errno: i32,
    fd: i32,
    syscall: u32,
    _pad: u32,
});
