//! Wire types shared by netwatch's kernel programs (`netwatch-ebpf`) and its daemon.
//!
//! Every record in the ring buffer starts with a [`Header`]; its `kind` says which
//! struct follows. All types are `#[repr(C)]`, largest fields first, with no `bool`
//! and explicit padding, and their sizes are pinned at compile time so that a change
//! on one side cannot silently disagree with the other.
#![no_std]

pub mod bind;

/// Length of a task's `comm` (`TASK_COMM_LEN` in include/linux/sched.h).
pub const COMM_LEN: usize = 16;

/// What a ring-buffer record carries. The numbers are stable: they are the wire format.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Bind = 1,
}

impl EventKind {
    /// Number of kinds plus one: the size of per-kind counter arrays (index 0 unused).
    pub const COUNT: u32 = 2;

    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Bind),
            _ => None,
        }
    }
}

/// First bytes of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ktime_ns: u64,
    /// An [`EventKind`] as u32.
    pub kind: u32,
    /// Process id (thread group id).
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    pub _pad: u32,
    /// The task's comm, NUL-padded.
    pub comm: [u8; COMM_LEN],
}
const _: () = assert!(core::mem::size_of::<Header>() == 40);

/// Address families as the kernel numbers them (include/linux/socket.h).
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// A socket address as netwatch records it: an IPv4 address in the first four bytes
/// of `addr`, an IPv6 address in all sixteen; the port in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockAddr {
    pub addr: [u8; 16],
    /// `AF_*`; 0 when nothing could be read.
    pub family: u16,
    pub port: u16,
}
const _: () = assert!(core::mem::size_of::<SockAddr>() == 20);

/// Load-time constants of the kernel programs, set by the loader through
/// `EbpfLoader::override_global` under [`CONFIG_GLOBAL`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Offset of `ret` in the `syscalls:sys_exit_*` records (from tracefs `format`).
    pub sys_exit_ret_offset: u32,
    /// Non-zero: only processes in the `WATCHED` map produce events.
    pub filter_pids: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 8);

/// Name of the [`Config`] global in the eBPF object.
pub const CONFIG_GLOBAL: &str = "CONFIG";
/// Ring buffer carrying every record to userspace.
pub const EVENTS_MAP: &str = "EVENTS";
/// Per-CPU array, indexed by [`EventKind`], of records the ring buffer could not take.
pub const LOST_MAP: &str = "LOST";
/// Hash of watched thread-group ids (value unused) when [`Config::filter_pids`] is set.
pub const WATCHED_MAP: &str = "WATCHED";
/// Maximum number of watched processes.
pub const WATCHED_MAX: u32 = 16384;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` integers with no padding holes (sizes asserted above).
    unsafe impl aya::Pod for super::Config {}
}
