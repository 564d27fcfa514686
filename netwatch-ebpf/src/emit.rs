//! Filling the common record header and handing records to the ring buffer.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::generated::bpf_ktime_get_ns,
    maps::ring_buf::RingBufEntry,
};
use netwatch_common::{EventKind, Family, Header, SockAddr};

use crate::{
    kernel::{self, Current},
    maps::{self, EVENTS, PRODUCED, count_lost},
};

/// Wake the reader each time a CPU's own output crosses a multiple of this many
/// bytes (so the reader is woken once per this many bytes overall, whatever the
/// spread across CPUs); every other record is submitted without a wake-up. A wake-up
/// costs the producer several microseconds and a reader that keeps catching up would
/// be woken for a large share of records (../shared/TOOLCHAIN.md); the daemon drains
/// on a short timer as well, which bounds latency when traffic is light. Counting
/// per CPU (an inlined per-CPU array access) instead of asking the ring buffer for
/// its producer position saves a helper call per record.
const WAKEUP_BYTES: u64 = 256 * 1024;

/// A reserved record and whether its submission should wake the reader.
pub struct Slot<T: 'static> {
    entry: RingBufEntry<T>,
    wake: bool,
}

/// The header of an event about the current task.
#[inline(always)]
pub fn header(kind: EventKind, current: Current) -> Header {
    Header {
        // SAFETY: helper without preconditions.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        cgroup_id: current.cgroup_id(),
        kind: kind as u32,
        tgid: current.tgid(),
        tid: current.tid(),
        _pad: 0,
        comm: kernel::comm_bytes(current.comm()),
    }
}

/// A header for an event about another task than the current one (a socket's
/// owner, a signal's target).
#[inline(always)]
pub fn header_for(kind: EventKind, tgid: u32, tid: u32, comm: [u8; 16], cgroup_id: u64) -> Header {
    Header {
        // SAFETY: helper without preconditions.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        cgroup_id,
        kind: kind as u32,
        tgid,
        tid,
        _pad: 0,
        comm,
    }
}

/// Reserve the record of a failure (`errno` > 0) of `tgid` in syscall family
/// `family`; when the ring buffer is full, count the record lost and the failure in
/// the process's counts (PROC_COUNTS), which keeps its totals exact.
#[inline(always)]
pub fn reserve_failure<T: 'static>(
    kind: EventKind,
    tgid: u32,
    errno: i32,
    family: Family,
) -> Option<Slot<T>> {
    if errno != 0 && !maps::errno_selected(errno) {
        return None;
    }
    let slot = reserve(kind);
    if slot.is_none() && errno != 0 {
        maps::count(tgid, errno, family);
    }
    slot
}

/// Reserve a record; counts it as lost when the ring buffer is full.
#[inline(always)]
pub fn reserve<T: 'static>(kind: EventKind) -> Option<Slot<T>> {
    match EVENTS.reserve::<T>(0) {
        Some(entry) => {
            // Record size as the ring buffer accounts it: 8-byte header, 8-byte aligned.
            let size = (core::mem::size_of::<T>() as u64 + 8 + 7) & !7;
            let wake = match PRODUCED.get_ptr_mut(0) {
                // SAFETY: this CPU's slot; nothing else runs on this CPU meanwhile.
                Some(n) => unsafe {
                    let before = *n;
                    *n = before + size;
                    before / WAKEUP_BYTES != (before + size) / WAKEUP_BYTES
                },
                None => false,
            };
            Some(Slot { entry, wake })
        }
        None => {
            count_lost(kind);
            None
        }
    }
}

impl<T: 'static> Slot<T> {
    #[inline(always)]
    pub fn write(&mut self, value: T) {
        self.entry.write(value);
    }

    /// The record, zeroed, to fill in place: records are too large to build on the
    /// 512-byte BPF stack and copy.
    #[inline(always)]
    pub fn zeroed(&mut self) -> &mut T {
        const { assert!(core::mem::size_of::<T>() % 8 == 0) };
        let p = self.entry.as_mut_ptr();
        let words = p.cast::<u64>();
        // SAFETY: the reservation is exclusive, sized for T and 8-byte aligned; T is
        // plain old data (integers and byte arrays), for which all-zero bytes are a
        // valid value. Word stores, volatile so that LLVM does not turn them back into
        // a call to memset (a byte loop in BPF: 3 % of a bind storm's CPU, measured).
        unsafe {
            for i in 0..core::mem::size_of::<T>() / 8 {
                core::ptr::write_volatile(words.add(i), 0);
            }
            &mut *p
        }
    }

    /// Give the reservation back: the record turned out to be filtered out.
    #[inline(always)]
    pub fn discard(self) {
        self.entry.discard(BPF_RB_NO_WAKEUP as u64);
    }

    /// Submit the record of a socket event if `-4`/`-6` and `-P` let it through.
    #[inline(always)]
    pub fn submit_sock(self, family: u16, local: &SockAddr, remote: &SockAddr) {
        if maps::sock_selected(family, local, remote) {
            self.submit();
        } else {
            self.discard();
        }
    }

    #[inline(always)]
    pub fn submit(self) {
        let flags = if self.wake {
            BPF_RB_FORCE_WAKEUP
        } else {
            BPF_RB_NO_WAKEUP
        };
        self.entry.submit(flags as u64);
    }
}
