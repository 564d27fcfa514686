//! Successful `listen(2)` and `accept(2)` calls: not shown unless asked (`-v`), but
//! they tell the daemon a failed bind was recovered and who owns which socket.

use crate::{Header, SockInfo};

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ListenEvent: 120 {
        pub header: Header,
        pub sock: SockInfo,
        pub fd: i32,
        /// A [`crate::Syscall`]: listen.
        pub syscall: u32,
    }
}
