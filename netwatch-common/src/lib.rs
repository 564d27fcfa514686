//! Wire types shared by netwatch's kernel programs (`netwatch-ebpf`) and its daemon.
//!
//! Every record in the ring buffer starts with a [`Header`]; its `kind` says which
//! struct follows. All types are `#[repr(C)]`, largest fields first, with no `bool`
//! and explicit padding, and their layouts are pinned at compile time so that a change
//! on one side cannot silently disagree with the other.
#![no_std]

/// A wire struct: `#[repr(C)]`, its size after a colon, and a compile-time check
/// that its fields follow each other with no padding hole and end at that size: the
/// kernel and the daemon then agree on every byte, and `Pod` holds (no uninitialised
/// bytes). Padding is a named `_pad` field.
macro_rules! wire {
    (
        $(#[$attr:meta])*
        pub struct $name:ident: $size:literal {
            $( $(#[$field_attr:meta])* pub $field:ident: $ty:ty ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[repr(C)]
        pub struct $name {
            $( $(#[$field_attr])* pub $field: $ty ),+
        }

        const _: () = {
            let mut end = 0usize;
            $(
                assert!(
                    core::mem::offset_of!($name, $field) == end,
                    concat!(
                        stringify!($name), ".", stringify!($field),
                        " does not follow the field before it"
                    )
                );
                end += core::mem::size_of::<$ty>();
            )+
            assert!(
                end == $size,
                concat!(stringify!($name), ": fields do not add up to its size")
            );
            assert!(
                core::mem::size_of::<$name>() == $size,
                concat!(stringify!($name), ": wrong size")
            );
        };
    };
}

pub mod bind;
pub mod connect;
pub mod errno;
pub mod listen;
pub mod process;
pub mod reset;
pub mod signal;
pub mod sockio;

/// Length of a task's `comm` (`TASK_COMM_LEN` in include/linux/sched.h).
pub const COMM_LEN: usize = 16;

/// What a ring-buffer record carries. The numbers are stable: they are the wire format.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Bind = 1,
    Connect = 2,
    SockIo = 3,
    Listen = 4,
    Reset = 5,
    Signal = 6,
    Exit = 7,
    Fork = 8,
    Exec = 9,
}

impl EventKind {
    /// Number of kinds plus one: the size of per-kind counter arrays (index 0 unused).
    pub const COUNT: u32 = 10;
    pub const ALL: [Self; 9] = [
        Self::Bind,
        Self::Connect,
        Self::SockIo,
        Self::Listen,
        Self::Reset,
        Self::Signal,
        Self::Exit,
        Self::Fork,
        Self::Exec,
    ];

    /// The kind's name (`lost_by_kind`, metrics labels, warnings).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Connect => "connect",
            Self::SockIo => "sockio",
            Self::Listen => "listen",
            Self::Reset => "reset",
            Self::Signal => "signal",
            Self::Exit => "exit",
            Self::Fork => "fork",
            Self::Exec => "exec",
        }
    }

    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Bind,
            2 => Self::Connect,
            3 => Self::SockIo,
            4 => Self::Listen,
            5 => Self::Reset,
            6 => Self::Signal,
            7 => Self::Exit,
            8 => Self::Fork,
            9 => Self::Exec,
            _ => return None,
        })
    }
}

wire! {
    /// First bytes of every record.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Header: 48 {
        /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
        pub ktime_ns: u64,
        /// The task's cgroup v2 id (`bpf_get_current_cgroup_id`: the inode number of its
        /// cgroup directory); 0 when unknown.
        pub cgroup_id: u64,
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
}
// The kernel programs store `comm` as two words.
const _: () = assert!(core::mem::offset_of!(Header, comm) % 8 == 0);

/// Address families as the kernel numbers them (include/linux/socket.h).
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

wire! {
    /// A socket address as netwatch records it: an IPv4 address in the first four bytes
    /// of `addr`, an IPv6 address in all sixteen; the port in host byte order.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SockAddr: 20 {
        pub addr: [u8; 16],
        /// `AF_*`; 0 when nothing could be read.
        pub family: u16,
        pub port: u16,
    }
}

wire! {
    /// What netwatch knows of a socket, read from the kernel's `struct sock` at the
    /// moment of the event (see [`KernelOffsets`]).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SockInfo: 64 {
        /// The `struct sock` address: identifies the socket across events.
        pub sk: u64,
        pub local: SockAddr,
        pub remote: SockAddr,
        /// `AF_*` of the socket.
        pub family: u16,
        /// `SOCK_STREAM`, `SOCK_DGRAM`, ...
        pub sock_type: u16,
        /// `IPPROTO_TCP`, `IPPROTO_UDP`, ...
        pub protocol: u16,
        /// TCP state (`TCP_ESTABLISHED` = 1, ... include/net/tcp_states.h).
        pub state: u8,
        /// `sk_userlocks`: [`SOCK_BINDPORT_LOCK`] is set when bind(2) chose the port.
        pub userlocks: u8,
        /// `SOCK_*` flags below.
        pub flags: u32,
        pub _pad: u32,
    }
}

/// `SockInfo::flags`: the fd was resolved to a socket and the fields are filled.
pub const SOCK_RESOLVED: u32 = 1;
/// `SockInfo::flags`: the fd is open but is not a socket (pipe, file...).
pub const SOCK_NOT_A_SOCKET: u32 = 2;
/// `sk_userlocks` bit set by bind(2) with a non-zero port (include/net/sock.h).
pub const SOCK_BINDPORT_LOCK: u8 = 8;

/// Syscalls netwatch traces, numbered for the wire (not the kernel's numbers).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    Bind = 1,
    Connect = 2,
    Listen = 3,
    Accept = 4,
    Accept4 = 5,
    Socket = 6,
    Write = 10,
    Writev = 11,
    Pwritev = 12,
    Pwritev2 = 13,
    Sendto = 14,
    Sendmsg = 15,
    Sendmmsg = 16,
    Sendfile64 = 17,
    Splice = 18,
    Read = 30,
    Readv = 31,
    Recvfrom = 32,
    Recvmsg = 33,
    Recvmmsg = 34,
}

impl Syscall {
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Bind,
            2 => Self::Connect,
            3 => Self::Listen,
            4 => Self::Accept,
            5 => Self::Accept4,
            6 => Self::Socket,
            10 => Self::Write,
            11 => Self::Writev,
            12 => Self::Pwritev,
            13 => Self::Pwritev2,
            14 => Self::Sendto,
            15 => Self::Sendmsg,
            16 => Self::Sendmmsg,
            17 => Self::Sendfile64,
            18 => Self::Splice,
            30 => Self::Read,
            31 => Self::Readv,
            32 => Self::Recvfrom,
            33 => Self::Recvmsg,
            34 => Self::Recvmmsg,
            _ => return None,
        })
    }

    /// The name strace and the tracepoints use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Connect => "connect",
            Self::Listen => "listen",
            Self::Accept => "accept",
            Self::Accept4 => "accept4",
            Self::Socket => "socket",
            Self::Write => "write",
            Self::Writev => "writev",
            Self::Pwritev => "pwritev",
            Self::Pwritev2 => "pwritev2",
            Self::Sendto => "sendto",
            Self::Sendmsg => "sendmsg",
            Self::Sendmmsg => "sendmmsg",
            Self::Sendfile64 => "sendfile64",
            Self::Splice => "splice",
            Self::Read => "read",
            Self::Readv => "readv",
            Self::Recvfrom => "recvfrom",
            Self::Recvmsg => "recvmsg",
            Self::Recvmmsg => "recvmmsg",
        }
    }

    /// Whether this is one of the send family (write, send*, sendfile, splice).
    pub const fn is_send(self) -> bool {
        (self as u32) >= 10 && (self as u32) < 30
    }
}

wire! {
    /// Load-time constants of the kernel programs, set by the loader through
    /// `EbpfLoader::override_global` under [`CONFIG_GLOBAL`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Config: 144 {
        /// `--cgroup`: only tasks in this cgroup v2 (id) or below it produce events.
        pub cgroup_id: u64,
        /// Non-zero: only processes in the `WATCHED` map produce events.
        pub filter_pids: u32,
        /// Non-zero: children forked by this thread group are watched from birth
        /// (`netwatch -- CMD`: netwatch's own pid).
        pub spawner_tgid: u32,
        /// Non-zero: successful connects are queued too (`-v`).
        pub verbose: u32,
        /// Depth of that cgroup below the root (for bpf_get_current_ancestor_cgroup_id).
        pub cgroup_level: u32,
        /// Always 0: guards instructions the verifier must see but that never run
        /// (`sockaddr::stay_on_kernel_stack` in netwatch-ebpf).
        pub never: u32,
        /// `-u`: only tasks running as this uid; [`ANY_UID`]: every uid.
        pub uid: u32,
        /// `-4`/`-6`: only sockets of this address family; 0: both.
        pub family: u32,
        /// `-P`: only socket events with one of the first `port_count` of `ports` as
        /// their local or remote port; 0: every port.
        pub port_count: u32,
        /// `--errno`: only failures with one of the first `errno_count` of `errnos`;
        /// 0: every errno.
        pub errno_count: u32,
        /// `-n`: only tasks whose comm is one of the first `comm_count` of `comms`;
        /// 0: every name.
        pub comm_count: u32,
        pub ports: [u16; MAX_FILTER_PORTS],
        pub errnos: [u16; MAX_FILTER_ERRNOS],
        /// NUL-padded, as the kernel keeps a task's comm.
        pub comms: [[u8; COMM_LEN]; MAX_FILTER_COMMS],
    }
}

/// [`Config::uid`] when every uid is traced.
pub const ANY_UID: u32 = u32::MAX;
/// How many `-P` ports, `--errno` errnos and `-n` names the kernel filter holds.
pub const MAX_FILTER_PORTS: usize = 8;
pub const MAX_FILTER_ERRNOS: usize = 8;
pub const MAX_FILTER_COMMS: usize = 4;

impl Config {
    /// Nothing filtered.
    pub const ALL: Self = Self {
        cgroup_id: 0,
        filter_pids: 0,
        spawner_tgid: 0,
        verbose: 0,
        cgroup_level: 0,
        never: 0,
        uid: ANY_UID,
        family: 0,
        port_count: 0,
        errno_count: 0,
        comm_count: 0,
        ports: [0; MAX_FILTER_PORTS],
        errnos: [0; MAX_FILTER_ERRNOS],
        comms: [[0; COMM_LEN]; MAX_FILTER_COMMS],
    };
}

wire! {
    /// Offsets of the tracepoint record fields the programs read, from tracefs `format`
    /// files at start-up. [`ABSENT`] marks a field this kernel's record does not have.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TpLayout: 60 {
        // tcp:tcp_receive_reset
        pub rr_skaddr: u32,
        // tcp:tcp_send_reset
        pub sr_skaddr: u32,
        pub sr_state: u32,
        pub sr_reason: u32,
        /// The RST's addresses as two `sockaddr_in6`-sized buffers (Linux 6.10 and
        /// later; see [`SR_TUPLE_LEN`] for the older layout).
        pub sr_saddr: u32,
        pub sr_daddr: u32,
        /// The older layout (before 6.10): `sport`, `dport` (host order), `family`,
        /// `saddr[4]`, `daddr[4]`, `saddr_v6[16]`, `daddr_v6[16]`, packed from here.
        pub sr_tuple: u32,
        // signal:signal_generate
        pub sg_sig: u32,
        pub sg_code: u32,
        pub sg_comm: u32,
        pub sg_pid: u32,
        pub sg_group: u32,
        pub sg_result: u32,
        // sched:sched_process_exit
        pub pe_group_dead: u32,
        // sched:sched_process_exec
        pub ex_old_pid: u32,
    }
}

/// Length of the block at `TpLayout::sr_tuple`.
pub const SR_TUPLE_LEN: usize = 46;

/// A field the running kernel's tracepoint record does not have.
pub const ABSENT: u32 = u32::MAX;

/// Offsets in every `syscalls:sys_exit_*` record (`struct syscall_trace_exit`): the
/// syscall number (int) and the return value (long). The loader checks them against
/// tracefs.
pub const SYS_EXIT_NR_OFFSET: u32 = 8;
pub const SYS_EXIT_RET_OFFSET: u32 = 16;

impl TpLayout {
    pub const UNKNOWN: Self = Self {
        rr_skaddr: ABSENT,
        sr_skaddr: ABSENT,
        sr_state: ABSENT,
        sr_reason: ABSENT,
        sr_saddr: ABSENT,
        sr_daddr: ABSENT,
        sr_tuple: ABSENT,
        sg_sig: ABSENT,
        sg_code: ABSENT,
        sg_comm: ABSENT,
        sg_pid: ABSENT,
        sg_group: ABSENT,
        sg_result: ABSENT,
        pe_group_dead: ABSENT,
        ex_old_pid: ABSENT,
    };
}

wire! {
    /// Offsets of kernel struct members, found in the kernel's BTF at start-up (there are
    /// no CO-RE relocations for Rust programs). `valid == 0` means BTF was unavailable, or
    /// lacked a member every BTF feature needs (the task's ids and fd table, a socket's
    /// addresses): the programs then skip all of them. Each member only one feature needs
    /// has a bit in `features` ([`FEATURE_EXIT_CODE`]...): a kernel whose BTF lacks it,
    /// or shapes it differently, loses that feature alone.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct KernelOffsets: 152 {
        pub valid: u32,
        /// `FEATURE_*` bits: the optional members found.
        pub features: u32,
        pub task_exit_code: u32,
        pub task_files: u32,
        pub task_tgid: u32,
        pub task_pid: u32,
        pub task_sighand: u32,
        pub files_fdt: u32,
        pub fdt_max_fds: u32,
        pub fdt_fd: u32,
        pub file_private_data: u32,
        pub file_inode: u32,
        pub inode_mode: u32,
        pub socket_sk: u32,
        pub sk_daddr: u32,
        pub sk_rcv_saddr: u32,
        pub sk_dport: u32,
        pub sk_num: u32,
        pub sk_family: u32,
        pub sk_state: u32,
        pub sk_v6_daddr: u32,
        pub sk_v6_rcv_saddr: u32,
        pub sk_type: u32,
        pub sk_protocol: u32,
        pub sk_userlocks: u32,
        pub sk_err: u32,
        pub sighand_action: u32,
        /// `sizeof(struct k_sigaction)`.
        pub k_sigaction_size: u32,
        /// `struct inet_sock.inet_sport`: the local port in network order, kept after
        /// the kernel releases `skc_num` (a reset socket goes to CLOSE and loses it).
        pub inet_sport: u32,
        /// `task_struct.comm`, read as two words instead of `bpf_get_current_comm`.
        pub task_comm: u32,
        /// `task_struct.cgroups` -> `css_set.dfl_cgrp` -> `cgroup.kn` -> `kernfs_node.id`:
        /// the cgroup v2 id `bpf_get_current_cgroup_id` returns, by direct loads.
        pub task_cgroups: u32,
        pub css_set_dfl_cgrp: u32,
        pub cgroup_kn: u32,
        pub kernfs_node_id: u32,
        /// `struct socket.type`: read with `socket.sk` in one copy.
        pub socket_type: u32,
        /// `struct tcp_sock.srtt_us` (from the `struct sock` it opens with): non-zero once
        /// the connection has had a round-trip sample, so it was established.
        pub tcp_srtt_us: u32,
        /// `sock.sk_userlocks` is a 4-bit bitfield before Linux 6.2 or so: the byte at
        /// `sk_userlocks` shifted right by this many bits and masked with
        /// `sk_userlocks_mask` (0 and 0xff for a plain `u8`).
        pub sk_userlocks_shift: u32,
        pub sk_userlocks_mask: u32,
    }
}

/// `KernelOffsets::features`: `task_struct.exit_code` (exit statuses).
pub const FEATURE_EXIT_CODE: u32 = 1;
/// `KernelOffsets::features`: `task_struct.sighand` and `sighand_struct.action` (the
/// fate of a SIGPIPE: ignored, caught, fatal).
pub const FEATURE_SIGHAND: u32 = 2;
/// `KernelOffsets::features`: `sock.sk_userlocks` (whether bind(2) chose the source
/// port: a 4-tuple collision told from ephemeral port exhaustion).
pub const FEATURE_USERLOCKS: u32 = 4;
/// `KernelOffsets::features`: `sock.sk_err` and `tcp_sock.srtt_us` (errors of
/// non-blocking connects, reported after connect(2) returned).
pub const FEATURE_SK_ERR: u32 = 8;
/// `KernelOffsets::features`: `task_struct.cgroups` down to `kernfs_node.id` (the
/// cgroup id by direct loads; without, `bpf_get_current_cgroup_id`).
pub const FEATURE_CGROUP_WALK: u32 = 16;

/// Name of the [`TpLayout`] global in the eBPF object.
pub const TP_LAYOUT_GLOBAL: &str = "TP_LAYOUT";
/// Name of the [`KernelOffsets`] global in the eBPF object.
pub const KERNEL_OFFSETS_GLOBAL: &str = "KERNEL_OFFSETS";
/// Entries of the LRU hash from `struct sock` address to the process seen using it
/// ([`Owner`], netwatch-ebpf's `SOCK_OWNER`), read by the kernel programs only.
pub const SOCK_OWNER_MAX: u32 = 65536;

/// Per-CPU LRU hash from thread-group id to [`ProcCounts`]: the failures whose records
/// the ring buffer could not take. Added to the records received, the counts are exact.
pub const PROC_COUNTS_MAP: &str = "PROC_COUNTS";
pub const PROC_COUNTS_MAX: u32 = 16384;

/// LRU hash from thread-group id to the [`process::ExitEvent`] the ring buffer could
/// not take: the daemon reads and deletes them, so an exit status (and `--check`'s
/// verdict on it) survives a full ring buffer.
pub const LOST_EXITS_MAP: &str = "LOST_EXITS";
pub const LOST_EXITS_MAX: u32 = 16384;

/// The error classes failures are counted by, in the kernel and the daemon alike:
/// the four netwatch explains, and every other errno together.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    AddrInUse = 0,
    AddrNotAvail = 1,
    Pipe = 2,
    ConnReset = 3,
    Other = 4,
}

impl ErrorClass {
    pub const COUNT: usize = 5;
    /// The classes with an errno of their own.
    pub const NAMED: [Self; 4] = [
        Self::AddrInUse,
        Self::AddrNotAvail,
        Self::Pipe,
        Self::ConnReset,
    ];

    /// The class of a positive errno.
    pub const fn of(errno: i32) -> Self {
        match errno {
            errno::EADDRINUSE => Self::AddrInUse,
            errno::EADDRNOTAVAIL => Self::AddrNotAvail,
            errno::EPIPE => Self::Pipe,
            errno::ECONNRESET => Self::ConnReset,
            _ => Self::Other,
        }
    }

    /// The errno of a named class; 0 for [`Self::Other`].
    pub const fn errno(self) -> i32 {
        match self {
            Self::AddrInUse => errno::EADDRINUSE,
            Self::AddrNotAvail => errno::EADDRNOTAVAIL,
            Self::Pipe => errno::EPIPE,
            Self::ConnReset => errno::ECONNRESET,
            Self::Other => 0,
        }
    }
}

/// The syscall families failures are counted by.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Bind = 0,
    Connect = 1,
    Send = 2,
    Recv = 3,
    Sendfile = 4,
    /// listen, accept, accept4: counted from the stream only.
    Listen = 5,
    /// socket(2): counted from the stream only.
    Socket = 6,
}

impl Family {
    /// The families the kernel counts lost failures of: the first five.
    pub const COUNTED: usize = 5;
    pub const ALL: [Self; 7] = [
        Self::Bind,
        Self::Connect,
        Self::Send,
        Self::Recv,
        Self::Sendfile,
        Self::Listen,
        Self::Socket,
    ];

    pub const fn of(syscall: Syscall) -> Self {
        match syscall {
            Syscall::Bind => Self::Bind,
            Syscall::Connect => Self::Connect,
            Syscall::Listen | Syscall::Accept | Syscall::Accept4 => Self::Listen,
            Syscall::Socket => Self::Socket,
            Syscall::Sendfile64 => Self::Sendfile,
            s if s.is_send() => Self::Send,
            _ => Self::Recv,
        }
    }

    /// The name counts are shown under (JSON `counts`, the summary).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Connect => "connect",
            Self::Send => "send",
            Self::Recv => "recv",
            Self::Sendfile => "sendfile",
            Self::Listen => "listen",
            Self::Socket => "socket",
        }
    }
}

wire! {
    /// Lost failures of one process: `n[class * Family::COUNTED + family]`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ProcCounts: 200 {
        pub n: [u64; ErrorClass::COUNT * Family::COUNTED],
    }
}

impl ProcCounts {
    pub const ZERO: Self = Self {
        n: [0; ErrorClass::COUNT * Family::COUNTED],
    };

    /// The counter of a class in one of the families the kernel counts (the first
    /// [`Family::COUNTED`]). The kernel never counts `Family::Listen`; the index stays
    /// in bounds for it all the same (the verifier needs that), in sendfile's slot.
    pub const fn index(class: ErrorClass, family: Family) -> usize {
        let family = family as usize;
        let family = if family < Family::COUNTED {
            family
        } else {
            Family::COUNTED - 1
        };
        class as usize * Family::COUNTED + family
    }
}

wire! {
    /// What the kernel programs know of a socket: the process last seen using it from
    /// process context, and where its connect stands.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Owner: 40 {
        pub cgroup_id: u64,
        /// 0: no process seen yet (an error was reported on the socket first).
        pub tgid: u32,
        pub tid: u32,
        pub comm: [u8; COMM_LEN],
        /// Non-zero once connect(2) returned EINPROGRESS (or EINTR), until an error is
        /// reported on the socket: that error is the connect's outcome.
        pub connecting: u32,
        /// An error reported on the socket before its connect(2) returned, which that
        /// return consumes; 0: none.
        pub pending_err: i32,
    }
}
const _: () = assert!(core::mem::offset_of!(Owner, comm) % 8 == 0);

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
    // SAFETY: plain `#[repr(C)]` integers with no padding holes (checked by `wire!`).
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TpLayout {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::KernelOffsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Owner {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ProcCounts {}
}
