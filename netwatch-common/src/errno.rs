//! The errno values netwatch's kernel programs and daemon decide on, once
//! (include/uapi/asm-generic/errno-base.h, errno.h; include/linux/errno.h for the
//! kernel-internal restart codes, which a syscall exit can see but a process never
//! does).

pub const EINTR: i32 = 4;
pub const EBADF: i32 = 9;
pub const EAGAIN: i32 = 11;
pub const ENFILE: i32 = 23;
pub const EMFILE: i32 = 24;
pub const EPIPE: i32 = 32;
pub const ENOTSOCK: i32 = 88;
pub const EADDRINUSE: i32 = 98;
pub const EADDRNOTAVAIL: i32 = 99;
pub const ENETDOWN: i32 = 100;
pub const ENETUNREACH: i32 = 101;
pub const ECONNRESET: i32 = 104;
pub const ETIMEDOUT: i32 = 110;
pub const ECONNREFUSED: i32 = 111;
pub const EHOSTDOWN: i32 = 112;
pub const EHOSTUNREACH: i32 = 113;
pub const EALREADY: i32 = 114;
pub const EINPROGRESS: i32 = 115;
/// The first of the kernel's restart codes (ERESTARTSYS, ERESTARTNOINTR, ...): an
/// interrupted call the kernel restarts or turns into EINTR. Every errno from here
/// up is kernel-internal.
pub const ERESTARTSYS: i32 = 512;
