//! Maps and load-time constants shared by every program.

use aya_ebpf::{
    Global,
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use netwatch_common::{Config, EventKind, WATCHED_MAX};

/// Set by the loader (`override_global("CONFIG", ..)`); read-only at run time, so the
/// verifier folds its fields into constants and prunes branches that cannot run.
#[unsafe(no_mangle)]
pub static CONFIG: Global<Config> = Global::new(Config {
    sys_exit_ret_offset: 16,
    filter_pids: 0,
});

/// Records to userspace. The loader sets the real size (`--ring-buffer-size`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Records the ring buffer could not take, per CPU, indexed by `EventKind`.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(EventKind::COUNT, 0);

/// Watched thread-group ids when `CONFIG.filter_pids` is set.
#[map]
pub static WATCHED: HashMap<u32, u8> = HashMap::with_max_entries(WATCHED_MAX, 0);

/// Whether the current process passes the pid filter. First check in every handler.
#[inline(always)]
pub fn watched(tgid: u32) -> bool {
    if CONFIG.load().filter_pids == 0 {
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
