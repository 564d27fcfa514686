//! Successful `listen(2)` and `accept(2)` calls: not shown unless asked (`-v`), but
//! they tell the daemon a failed bind was recovered and who owns which socket.

use crate::{Header, SockInfo};

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenEvent {
    pub header: Header,
    pub sock: SockInfo,
    pub fd: i32,
    /// A [`crate::Syscall`]: listen.
    pub syscall: u32,
}
assert_packed!(ListenEvent, 120, {
    header: Header,
    sock: SockInfo,
    fd: i32,
    syscall: u32,
});
