//! Maps and load-time constants shared by every program.

use aya_ebpf::{
    Global,
    helpers::generated::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_comm, bpf_get_current_uid_gid,
    },
    macros::map,
    maps::{HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use netwatch_common::{
    ANY_UID, COMM_LEN, Config, ErrorClass, EventKind, Family, KernelOffsets, LOST_EXITS_MAX,
    MAX_FILTER_COMMS, MAX_FILTER_ERRNOS, MAX_FILTER_PORTS, Owner, PROC_COUNTS_MAX, ProcCounts,
    SOCK_OWNER_MAX, SockAddr, TpLayout, WATCHED_MAX, process::ExitEvent,
};

use crate::kernel::{self, Current};

/// One field of a load-time global ([`Global`]), by one volatile load:
/// `Global::load` copies the whole struct, one load per field, at every use.
macro_rules! global_field {
    ($global:path, $field:ident) => {
        // SAFETY: `Global<T>` is `repr(transparent)` over an initialised `T`.
        unsafe { core::ptr::read_volatile(&raw const (*$crate::maps::inner(&$global)).$field) }
    };
}
pub(crate) use global_field;

/// The value inside a [`Global`].
#[inline(always)]
pub fn inner<T>(global: &Global<T>) -> *const T {
    core::ptr::from_ref(global).cast::<T>()
}

/// Set by the loader (`override_global`); read-only at run time, so the verifier
/// folds its fields into constants and prunes branches that cannot run.
#[unsafe(no_mangle)]
pub static CONFIG: Global<Config> = Global::new(Config::ALL);

/// Tracepoint record offsets, from tracefs at start-up.
#[unsafe(no_mangle)]
pub static TP_LAYOUT: Global<TpLayout> = Global::new(TpLayout::UNKNOWN);

/// Kernel struct offsets, from BTF at start-up (`valid == 0`: unavailable).
#[unsafe(no_mangle)]
pub static KERNEL_OFFSETS: Global<KernelOffsets> = Global::new(KernelOffsets {
    valid: 0,
    features: 0,
    task_exit_code: 0,
    task_files: 0,
    task_tgid: 0,
    task_pid: 0,
    task_sighand: 0,
    files_fdt: 0,
    fdt_max_fds: 0,
    fdt_fd: 0,
    file_private_data: 0,
    file_inode: 0,
    inode_mode: 0,
    socket_sk: 0,
    sk_daddr: 0,
    sk_rcv_saddr: 0,
    sk_dport: 0,
    sk_num: 0,
    sk_family: 0,
    sk_state: 0,
    sk_v6_daddr: 0,
    sk_v6_rcv_saddr: 0,
    sk_type: 0,
    sk_protocol: 0,
    sk_userlocks: 0,
    sk_err: 0,
    sighand_action: 0,
    k_sigaction_size: 0,
    inet_sport: 0,
    task_comm: 0,
    task_cgroups: 0,
    css_set_dfl_cgrp: 0,
    cgroup_kn: 0,
    kernfs_node_id: 0,
    socket_type: 0,
    tcp_srtt_us: 0,
    sk_userlocks_shift: 0,
    sk_userlocks_mask: 0,
});

/// Always empty: the target of a tail call that never runs (see
/// `sockaddr::stay_on_kernel_stack`).
#[map]
pub static NO_PROGRAMS: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Records to userspace. The loader sets the real size (`--ring-buffer-size`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Records the ring buffer could not take, per CPU, indexed by `EventKind`.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(EventKind::COUNT, 0);

/// Bytes of records each CPU has reserved, for the wake-up policy (`emit::reserve`).
#[map]
pub static PRODUCED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Watched thread-group ids when `CONFIG.filter_pids` is set. Children of watched
/// processes are added at fork (see `process.rs`).
#[map]
pub static WATCHED: HashMap<u32, u8> = HashMap::with_max_entries(WATCHED_MAX, 0);

/// `struct sock` address -> the process last seen using it from process context, and
/// where its connect stands ([`Owner`]). Resets and connect errors are reported in
/// softirq context, where the current task is unrelated; this is how they are
/// attributed. One entry holds all a socket's state, so a connection costs one
/// lookup and at most one LRU update. LRU: sockets are never removed explicitly.
#[map]
pub static SOCK_OWNER: LruHashMap<u64, Owner> = LruHashMap::with_max_entries(SOCK_OWNER_MAX, 0);

/// Failures whose record the ring buffer could not take, per process, per CPU (no
/// atomics). The daemon adds them to what it received, for exact totals, and
/// deletes a process's entry when it has exited. Nothing is written while records
/// get through: the hot path stays free of hash map updates.
#[map]
pub static PROC_COUNTS: LruPerCpuHashMap<u32, ProcCounts> =
    LruPerCpuHashMap::with_max_entries(PROC_COUNTS_MAX, 0);

/// Exit records the ring buffer could not take, by thread group; read and deleted by
/// the daemon.
#[map]
pub static LOST_EXITS: LruHashMap<u32, ExitEvent> = LruHashMap::with_max_entries(LOST_EXITS_MAX, 0);

/// The zeroed value new PROC_COUNTS entries start from (too large for the stack
/// next to the handlers' own data).
static ZERO_COUNTS: ProcCounts = ProcCounts::ZERO;

/// Count a failure of `tgid` whose record was lost.
#[inline(always)]
pub fn count(tgid: u32, errno: i32, family: Family) {
    if tgid == 0 {
        return;
    }
    let i = ProcCounts::index(ErrorClass::of(errno), family);
    let slot = match PROC_COUNTS.get_ptr_mut(&tgid) {
        Some(p) => p,
        None => {
            // BPF_NOEXIST: another CPU may have created it meanwhile; either way,
            // look it up again.
            let _ = PROC_COUNTS.insert(&tgid, &ZERO_COUNTS, 1);
            match PROC_COUNTS.get_ptr_mut(&tgid) {
                Some(p) => p,
                None => return,
            }
        }
    };
    // SAFETY: this CPU's value; the index is below the array length by construction.
    unsafe {
        if let Some(n) = (*slot).n.get_mut(i) {
            *n += 1;
        }
    }
}

/// Whether the current task passes every filter of processes (pids, cgroup, uid,
/// name). First check in every handler that runs in the process's own context.
#[inline(always)]
pub fn selected(tgid: u32) -> bool {
    watched(tgid) && in_cgroup() && uid_selected() && comm_selected()
}

/// Whether a filter of processes is set: events of sockets no selected process was
/// seen using (the owner is recorded by selected processes only) are dropped then.
#[inline(always)]
pub fn filtering() -> bool {
    global_field!(CONFIG, filter_pids) != 0
        || global_field!(CONFIG, cgroup_id) != 0
        || global_field!(CONFIG, uid) != ANY_UID
        || global_field!(CONFIG, comm_count) != 0
}

/// `-u`: whether the current task runs as that uid.
#[inline(always)]
fn uid_selected() -> bool {
    let uid = global_field!(CONFIG, uid);
    // SAFETY: helper without preconditions; the low half is the uid.
    uid == ANY_UID || unsafe { bpf_get_current_uid_gid() } as u32 == uid
}

/// `-n`: whether the current task's comm is one of the names.
#[inline(always)]
fn comm_selected() -> bool {
    let count = global_field!(CONFIG, comm_count) as usize;
    if count == 0 {
        return true;
    }
    let mut comm = [0u8; COMM_LEN];
    // SAFETY: the helper fills all 16 bytes (NUL-padded).
    unsafe { bpf_get_current_comm(comm.as_mut_ptr().cast(), COMM_LEN as u32) };
    let comms = global_field!(CONFIG, comms);
    let mut i = 0;
    while i < MAX_FILTER_COMMS {
        if i < count && comms[i] == comm {
            return true;
        }
        i += 1;
    }
    false
}

/// `--errno`: whether a failure with this errno is reported (and counted).
#[inline(always)]
pub fn errno_selected(errno: i32) -> bool {
    let count = global_field!(CONFIG, errno_count) as usize;
    if count == 0 {
        return true;
    }
    let errnos = global_field!(CONFIG, errnos);
    let mut i = 0;
    while i < MAX_FILTER_ERRNOS {
        if i < count && i32::from(errnos[i]) == errno {
            return true;
        }
        i += 1;
    }
    false
}

/// `-4`/`-6` and `-P`: whether a socket event of this family, with these ends, is
/// reported.
#[inline(always)]
pub fn sock_selected(family: u16, local: &SockAddr, remote: &SockAddr) -> bool {
    let want = global_field!(CONFIG, family);
    if want != 0 && u32::from(family) != want {
        return false;
    }
    let count = global_field!(CONFIG, port_count) as usize;
    if count == 0 {
        return true;
    }
    let ports = global_field!(CONFIG, ports);
    let mut i = 0;
    while i < MAX_FILTER_PORTS {
        if i < count && (ports[i] == local.port || ports[i] == remote.port) {
            return true;
        }
        i += 1;
    }
    false
}

/// `--cgroup`: whether the current task is in that cgroup or below it.
#[inline(always)]
pub fn in_cgroup() -> bool {
    let cgroup_id = global_field!(CONFIG, cgroup_id);
    if cgroup_id == 0 {
        return true;
    }
    let level = global_field!(CONFIG, cgroup_level);
    // SAFETY: helper without preconditions.
    unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) == cgroup_id }
}

/// Whether `tgid` passes the pid filter.
#[inline(always)]
pub fn watched(tgid: u32) -> bool {
    if global_field!(CONFIG, filter_pids) == 0 {
        return true;
    }
    // SAFETY: the value is only tested for presence.
    unsafe { WATCHED.get(&tgid) }.is_some()
}

/// Count a record the ring buffer could not take.
#[inline(always)]
pub fn count_lost(kind: EventKind) {
    if let Some(n) = LOST.get_ptr_mut(kind as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while we run.
        unsafe { *n += 1 };
    }
}

/// Remember that the current process uses socket `sk`; its connect state is kept.
#[inline(always)]
pub fn set_owner(sk: u64, current: Current) {
    let entry = sock_entry(sk);
    // SAFETY: the entry's fields are copied out at once.
    let (connecting, pending_err) =
        entry.map_or((0, 0), |e| unsafe { ((*e).connecting, (*e).pending_err) });
    put_owner(sk, entry, owner_of(current, connecting, pending_err));
}

/// Make the current process `sk`'s owner, with the connect state `connecting` and no
/// pending error; `entry` is `sk`'s entry as `sock_entry` found it.
#[inline(always)]
pub fn set_connect_owner(sk: u64, entry: Option<*mut Owner>, current: Current, connecting: u32) {
    put_owner(sk, entry, owner_of(current, connecting, 0));
}

/// `sk`'s entry in SOCK_OWNER, to read and update in place.
#[inline(always)]
pub fn sock_entry(sk: u64) -> Option<*mut Owner> {
    if sk == 0 {
        return None;
    }
    SOCK_OWNER.get_ptr_mut(&sk)
}

#[inline(always)]
fn owner_of(current: Current, connecting: u32, pending_err: i32) -> Owner {
    Owner {
        cgroup_id: current.cgroup_id(),
        tgid: current.tgid(),
        tid: current.tid(),
        comm: kernel::comm_bytes(current.comm()),
        connecting,
        pending_err,
    }
}

#[inline(always)]
fn put_owner(sk: u64, entry: Option<*mut Owner>, owner: Owner) {
    if sk == 0 {
        return;
    }
    // Most calls find the entry as it should be (every failing send on a connection,
    // and a new socket at the address of a closed one of the same process): the
    // lookup, which also marks the entry recently used, is several times cheaper than
    // an LRU update. The same process with another connect state is written in place.
    if let Some(e) = entry {
        // SAFETY: a value of the map; a concurrent update replaces the element, and the
        // write to this one is then lost, as the update would have overwritten it.
        unsafe {
            if (*e).tgid == owner.tgid
                && (*e).tid == owner.tid
                && (*e).comm == owner.comm
                && (*e).cgroup_id == owner.cgroup_id
            {
                if (*e).connecting != owner.connecting || (*e).pending_err != owner.pending_err {
                    (*e).connecting = owner.connecting;
                    (*e).pending_err = owner.pending_err;
                }
                return;
            }
        }
    }
    let _ = SOCK_OWNER.insert(&sk, &owner, 0);
}

/// The process last seen using `sk`, if one was.
#[inline(always)]
pub fn owner(sk: u64) -> Option<Owner> {
    if sk == 0 {
        return None;
    }
    // SAFETY: the value is copied out at once.
    unsafe { SOCK_OWNER.get(&sk) }
        .copied()
        .filter(|o| o.tgid != 0)
}
