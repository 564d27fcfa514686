//! Reading kernel structures at the offsets the loader found in BTF: the current
//! task's fd table, a socket's addresses and state, a task's signal handlers.

use core::ffi::c_void;

use aya_ebpf::helpers::{
    bpf_probe_read_kernel,
    generated::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_get_current_task_btf,
    },
};
use netwatch_common::{
    AF_INET, AF_INET6, AF_UNIX, FEATURE_CGROUP_WALK, FEATURE_EXIT_CODE, FEATURE_SIGHAND,
    FEATURE_USERLOCKS, SOCK_NOT_A_SOCKET, SOCK_RESOLVED, SockInfo,
    errno::{EBADF, ENOTSOCK},
};

use crate::maps::{KERNEL_OFFSETS, global_field};

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

/// The kernel struct offsets the loader found in BTF, read one field at a time.
#[derive(Clone, Copy)]
pub struct Offsets(());

/// [`Offsets`], or `None` when BTF was unavailable.
#[inline(always)]
pub fn offsets() -> Option<Offsets> {
    if global_field!(KERNEL_OFFSETS, valid) == 0 {
        None
    } else {
        Some(Offsets(()))
    }
}

macro_rules! offset_fields {
    ($($field:ident),* $(,)?) => {
        impl Offsets {
            $(
                #[inline(always)]
                pub fn $field(self) -> u32 {
                    global_field!(KERNEL_OFFSETS, $field)
                }
            )*
        }
    };
}

offset_fields!(
    task_exit_code,
    task_files,
    task_tgid,
    task_pid,
    task_sighand,
    files_fdt,
    fdt_max_fds,
    fdt_fd,
    file_private_data,
    file_inode,
    inode_mode,
    socket_sk,
    sk_daddr,
    sk_rcv_saddr,
    sk_dport,
    sk_num,
    sk_family,
    sk_state,
    sk_v6_daddr,
    sk_v6_rcv_saddr,
    sk_type,
    sk_protocol,
    sk_userlocks,
    sk_err,
    sighand_action,
    k_sigaction_size,
    inet_sport,
    task_comm,
    task_cgroups,
    css_set_dfl_cgrp,
    cgroup_kn,
    kernfs_node_id,
    socket_type,
    tcp_srtt_us,
    sk_userlocks_shift,
    sk_userlocks_mask,
);

impl Offsets {
    /// Whether the optional members of `feature` (`FEATURE_*`) were found.
    #[inline(always)]
    pub fn has(self, feature: u32) -> bool {
        global_field!(KERNEL_OFFSETS, features) & feature != 0
    }
}

/// Read a `T` at `base + off` in kernel memory.
#[inline(always)]
pub fn read<T>(base: u64, off: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T) }.ok()
}

/// A direct load of the `T` at `base + off`, where `base` is a pointer the verifier
/// knows the BTF type of and `off` a load-time constant at which that type has a
/// field of `T`'s size.
///
/// # Safety
/// The verifier rejects the program unless both hold; the JIT makes the load
/// fault-safe.
#[inline(always)]
unsafe fn btf_load<T>(base: *const u8, off: u32) -> T {
    // SAFETY: see above.
    unsafe { core::ptr::read_volatile(base.add(off as usize).cast::<T>()) }
}

/// The current task, from one `bpf_get_current_task_btf`: its ids, comm, cgroup,
/// saved registers and fd table by direct loads through that BTF-typed pointer.
/// Every helper call costs a call and a return, which the host's return-thunk
/// mitigation makes dear: a program gets the task once and passes it down.
#[derive(Clone, Copy)]
pub struct Current {
    task: *const u8,
    /// `bpf_get_current_pid_tgid`'s value: tgid in the high half, thread id low.
    pid_tgid: u64,
}

impl Current {
    #[inline(always)]
    pub fn get() -> Self {
        // SAFETY: helper without preconditions; it returns a trusted pointer to the
        // current task.
        let task = unsafe { bpf_get_current_task_btf() }.cast::<u8>();
        let pid_tgid = match offsets() {
            // SAFETY: `pid` and `tgid` are pid_t fields of task_struct at these offsets.
            Some(k) => unsafe {
                let pid: u32 = btf_load(task, k.task_pid());
                let tgid: u32 = btf_load(task, k.task_tgid());
                (u64::from(tgid) << 32) | u64::from(pid)
            },
            // SAFETY: helper without preconditions.
            None => unsafe { bpf_get_current_pid_tgid() },
        };
        Self { task, pid_tgid }
    }

    #[inline(always)]
    pub fn tgid(self) -> u32 {
        (self.pid_tgid >> 32) as u32
    }

    #[inline(always)]
    pub fn tid(self) -> u32 {
        self.pid_tgid as u32
    }

    /// The BTF-typed task pointer, for helpers that take one.
    #[inline(always)]
    pub fn task(self) -> *const u8 {
        self.task
    }

    /// The task's comm as two words (for the 8-byte aligned `comm` fields of `Header`
    /// and `Owner`): two loads instead of the helper's string copy.
    #[inline(always)]
    pub fn comm(self) -> [u64; 2] {
        if let Some(k) = offsets() {
            // SAFETY: `comm` is a 16-byte array at this offset of the trusted task
            // (loads within an array member are allowed at any size).
            unsafe {
                return [
                    btf_load(self.task, k.task_comm()),
                    btf_load(self.task, k.task_comm() + 8),
                ];
            }
        }
        let mut comm = core::mem::MaybeUninit::<[u64; 2]>::uninit();
        // SAFETY: the helper fills all 16 bytes (NUL-padded, or zeroes on failure).
        unsafe {
            bpf_get_current_comm(comm.as_mut_ptr().cast::<c_void>(), 16);
            comm.assume_init()
        }
    }

    /// The task's cgroup v2 id, as `bpf_get_current_cgroup_id` computes it
    /// (task->cgroups->dfl_cgrp->kn->id), by four direct loads.
    #[inline(always)]
    pub fn cgroup_id(self) -> u64 {
        let Some(k) = offsets().filter(|k| k.has(FEATURE_CGROUP_WALK)) else {
            // SAFETY: helper without preconditions.
            return unsafe { bpf_get_current_cgroup_id() };
        };
        // SAFETY: BTF-checked loads from the trusted current task (tracepoint programs
        // run under RCU, which `task->cgroups` needs); a NULL pointer reads as 0.
        unsafe {
            let cset: *const u8 = btf_load(self.task, k.task_cgroups());
            let cgrp: *const u8 = btf_load(cset, k.css_set_dfl_cgrp());
            let kn: *const u8 = btf_load(cgrp, k.cgroup_kn());
            btf_load(kn, k.kernfs_node_id())
        }
    }

    /// The task's `exit_code` (the wait status once it is exiting).
    #[inline(always)]
    pub fn exit_code(self) -> Option<i32> {
        let k = offsets().filter(|k| k.has(FEATURE_EXIT_CODE))?;
        // SAFETY: `exit_code` is an int field of task_struct at this offset.
        Some(unsafe { btf_load(self.task, k.task_exit_code()) })
    }

    /// What file descriptor `fd` of the task is: follows
    /// task->files->fdt->fd[fd]->(inode, private_data)->sk.
    #[inline(always)]
    pub fn fd(self, fd: i32) -> Fd {
        let Some(k) = offsets() else {
            return Fd::Unknown;
        };
        self.fd_with(k, fd, true).unwrap_or(Fd::Unknown)
    }

    /// [`Current::fd`] for an fd the syscall's own result proves is a socket (a bind
    /// or connect that got past the fd lookup, a successful listen or accept): the
    /// inode's type is not read.
    #[inline(always)]
    pub fn socket_fd(self, fd: i32) -> Fd {
        let Some(k) = offsets() else {
            return Fd::Unknown;
        };
        self.fd_with(k, fd, false).unwrap_or(Fd::Unknown)
    }

    /// What `fd` is after a bind or connect on it returned `ret`: past EBADF and
    /// ENOTSOCK, the kernel has found a socket there.
    #[inline(always)]
    pub fn fd_after(self, fd: i32, ret: i64) -> Fd {
        match (-ret) as i32 {
            EBADF => Fd::Unknown,
            ENOTSOCK => Fd::Other,
            _ => self.socket_fd(fd),
        }
    }

    #[inline(always)]
    fn fd_with(self, k: Offsets, fd: i32, check_type: bool) -> Option<Fd> {
        if fd < 0 {
            return None;
        }
        // task->files->fdt->{max_fds, fd}: direct loads through BTF-typed pointers (the
        // verifier checks each field at its load-time constant offset and makes the
        // load fault-safe), several times cheaper than bpf_probe_read_kernel. The fd
        // array holds pointers to pointers, which the verifier types as plain numbers:
        // from there on, checked reads.
        // SAFETY: BTF-checked loads (above); a NULL files or fdt reads as 0.
        let (max_fds, fds) = unsafe {
            let files: *const u8 = btf_load(self.task, k.task_files());
            let fdt: *const u8 = btf_load(files, k.files_fdt());
            (
                btf_load::<u32>(fdt, k.fdt_max_fds()),
                btf_load::<u64>(fdt, k.fdt_fd()),
            )
        };
        if fd as u32 >= max_fds || fds == 0 {
            return None;
        }
        let file: u64 = read(fds, fd as u32 * 8)?;
        if file == 0 {
            return None;
        }
        if check_type {
            let inode: u64 = read(file, k.file_inode())?;
            let mode: u16 = read(inode, k.inode_mode())?;
            if mode & S_IFMT != S_IFSOCK {
                return Some(Fd::Other);
            }
        }
        let socket: u64 = read(file, k.file_private_data())?;
        // `struct socket` opens with state, type, flags, file, sk: one copy for both.
        let head = Head::<4>::read(socket)?;
        let sk = head.at::<u64>(socket, k.socket_sk());
        let sock_type = head.at::<u16>(socket, k.socket_type());
        Some(if sk == 0 {
            Fd::Unknown
        } else {
            Fd::Socket(Socket { sk, sock_type })
        })
    }
}

/// Comm words as the bytes of a `comm` field. The fields (`Header::comm`,
/// `Owner::comm`) are 8-byte aligned (asserted in netwatch-common), so the value is
/// stored as two words, not byte by byte.
#[inline(always)]
pub fn comm_bytes(words: [u64; 2]) -> [u8; 16] {
    // SAFETY: same size; every bit pattern is a valid byte array.
    unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) }
}

/// A socket found in the fd table.
#[derive(Clone, Copy)]
pub struct Socket {
    /// The `struct sock` address.
    pub sk: u64,
    /// `SOCK_STREAM`, `SOCK_DGRAM`...
    pub sock_type: u16,
}

/// What file descriptor `fd` of the current task is.
pub enum Fd {
    Socket(Socket),
    /// Open, but not a socket.
    Other,
    /// Not resolvable (closed, or BTF unavailable).
    Unknown,
}

/// Fill `info` (zeroed) for what `fd` is; flags say whether it resolved.
#[inline(always)]
pub fn fill_fd(fd: &Fd, info: &mut SockInfo) {
    match *fd {
        Fd::Socket(s) => fill_sock(s.sk, info),
        Fd::Other => info.flags = SOCK_NOT_A_SOCKET,
        Fd::Unknown => {}
    }
}

/// An integer taken out of a copied word (its low bytes).
trait Word: Copy + Default {
    fn from_word(v: u64) -> Self;
}

macro_rules! word {
    ($($t:ty),*) => {
        $(impl Word for $t {
            #[inline(always)]
            fn from_word(v: u64) -> Self {
                v as $t
            }
        })*
    };
}
word!(u8, u16, u32, u64);

/// The first `W` words of a kernel struct in one copy, its fields taken out at their
/// offsets; a field outside the copy (or across two words) is read on its own. The
/// offsets are load-time constants: the verifier keeps one branch of each.
struct Head<const W: usize>([u64; W]);

impl<const W: usize> Head<W> {
    #[inline(always)]
    fn read(base: u64) -> Option<Self> {
        read::<[u64; W]>(base, 0).map(Head)
    }

    /// The word holding the `size`-byte field at `off` in its low bytes, when the
    /// field lies in the copy within one word.
    #[inline(always)]
    fn field(&self, off: u32, size: u32) -> Option<u64> {
        if off + size > W as u32 * 8 || off % 8 + size > 8 {
            return None;
        }
        Some(*self.0.get((off / 8) as usize)? >> ((off % 8) * 8))
    }

    /// The field of type `T` at `off`: from the copy when it is there.
    #[inline(always)]
    fn at<T: Word>(&self, base: u64, off: u32) -> T {
        match self.field(off, core::mem::size_of::<T>() as u32) {
            Some(v) => T::from_word(v),
            None => read(base, off).unwrap_or_default(),
        }
    }
}

/// Fill `info` (zeroed) with the addresses, family, type, protocol and state of the
/// `struct sock` at `sk`: three or four copies from the kernel where each field on its
/// own took nine or ten.
#[inline(always)]
pub fn fill_sock(sk: u64, info: &mut SockInfo) {
    info.sk = sk;
    let Some(k) = offsets() else { return };
    // The start of sock_common: addresses, ports, family, state.
    let Some(head) = Head::<3>::read(sk) else {
        return;
    };
    let family = head.at::<u16>(sk, k.sk_family());
    info.family = family;
    info.state = head.at::<u8>(sk, k.sk_state());
    // sk_type and sk_protocol are neighbours in struct sock: one copy when they are.
    if k.sk_protocol() == k.sk_type() + 2 && k.sk_type() % 4 == 0 {
        let both: u32 = read(sk, k.sk_type()).unwrap_or(0);
        info.sock_type = both as u16;
        info.protocol = (both >> 16) as u16;
    } else {
        info.sock_type = read(sk, k.sk_type()).unwrap_or(0);
        info.protocol = read(sk, k.sk_protocol()).unwrap_or(0);
    }
    if k.has(FEATURE_USERLOCKS) {
        let byte: u8 = read(sk, k.sk_userlocks()).unwrap_or(0);
        info.userlocks = (byte >> k.sk_userlocks_shift()) & k.sk_userlocks_mask() as u8;
    }
    info.flags = SOCK_RESOLVED;
    if family == AF_UNIX {
        info.local.family = AF_UNIX;
        info.remote.family = AF_UNIX;
        return;
    }
    if family != AF_INET && family != AF_INET6 {
        return;
    }
    // skc_num is the local port in host order, skc_dport the remote in network order.
    let mut lport = head.at::<u16>(sk, k.sk_num());
    if lport == 0 {
        lport = u16::from_be(read(sk, k.inet_sport()).unwrap_or(0));
    }
    let rport = head.at::<u16>(sk, k.sk_dport());
    info.local.family = family;
    info.local.port = lport;
    info.remote.family = family;
    info.remote.port = u16::from_be(rport);
    if family == AF_INET {
        let local = head.at::<u32>(sk, k.sk_rcv_saddr());
        let remote = head.at::<u32>(sk, k.sk_daddr());
        info.local.addr[..4].copy_from_slice(&local.to_ne_bytes());
        info.remote.addr[..4].copy_from_slice(&remote.to_ne_bytes());
    } else if k.sk_v6_rcv_saddr() == k.sk_v6_daddr() + 16 {
        let both: [u64; 4] = read(sk, k.sk_v6_daddr()).unwrap_or([0; 4]);
        info.remote.addr[..8].copy_from_slice(&both[0].to_ne_bytes());
        info.remote.addr[8..].copy_from_slice(&both[1].to_ne_bytes());
        info.local.addr[..8].copy_from_slice(&both[2].to_ne_bytes());
        info.local.addr[8..].copy_from_slice(&both[3].to_ne_bytes());
    } else {
        info.local.addr = read(sk, k.sk_v6_rcv_saddr()).unwrap_or([0; 16]);
        info.remote.addr = read(sk, k.sk_v6_daddr()).unwrap_or([0; 16]);
    }
}

/// `sk->sk_family` (AF_INET, AF_INET6, AF_UNIX...), 0 when unknown.
#[inline(always)]
pub fn family(sk: u64) -> u16 {
    offsets().and_then(|k| read(sk, k.sk_family())).unwrap_or(0)
}

/// The current task's handler for signal `sig` (0 = SIG_DFL, 1 = SIG_IGN).
#[inline(always)]
pub fn current_sig_handler(sig: i32) -> Option<u64> {
    let k = offsets().filter(|k| k.has(FEATURE_SIGHAND))?;
    if !(1..=64).contains(&sig) {
        return None;
    }
    // A checked read of `sighand`: the variable index below is not allowed on a
    // BTF-typed pointer.
    // SAFETY: helper without preconditions.
    let task = unsafe { bpf_get_current_task() };
    let sighand: u64 = read(task, k.task_sighand())?;
    // action[sig - 1].sa.sa_handler, the first word of struct k_sigaction.
    read(
        sighand,
        k.sighand_action() + (sig as u32 - 1) * k.k_sigaction_size(),
    )
}
