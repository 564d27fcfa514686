//! `bind(2)` results, from `syscalls:sys_exit_bind`.

use crate::{Header, SockAddr};

/// A bind that failed (`errno` > 0) or, with verbose tracking, succeeded (`errno` == 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindEvent {
    pub header: Header,
    /// Positive errno, or 0 for success.
    pub errno: i32,
    pub fd: i32,
    /// The address passed to bind(2), as read from the caller's memory.
    pub addr: SockAddr,
    pub _pad: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<BindEvent>() == 72);
