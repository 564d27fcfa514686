//! Successful `listen(2)` calls (not shown unless asked, `-v`: they tell the daemon a
//! failed bind was recovered), and `accept(2)`, `accept4(2)` and `socket(2)` calls
//! that failed for want of file descriptors (EMFILE, ENFILE).

use crate::{Header, SockInfo};

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ListenEvent: 128 {
        pub header: Header,
        /// The listening socket (none for socket(2)).
        pub sock: SockInfo,
        /// -1 for socket(2).
        pub fd: i32,
        /// A [`crate::Syscall`]: listen, accept, accept4 or socket.
        pub syscall: u32,
        /// Positive errno; 0 for a successful listen.
        pub errno: i32,
        pub _pad: u32,
    }
}
