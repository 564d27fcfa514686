//! Filling the common record header and handing records to the ring buffer.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_PROD_POS},
    helpers::{bpf_get_current_comm, generated::bpf_ktime_get_ns},
    maps::ring_buf::RingBufEntry,
};
use netwatch_common::{EventKind, Header};

use crate::maps::{EVENTS, count_lost};

/// Wake the reader each time the producer position crosses a multiple of this many
/// bytes; every other record is submitted without a wake-up. A wake-up costs the
/// producer several microseconds and a reader that keeps catching up would be woken
/// for a large share of records (../shared/TOOLCHAIN.md); the daemon drains on a
/// short timer as well, which bounds latency when traffic is light.
const WAKEUP_BYTES: u64 = 256 * 1024;

/// A reserved record and whether its submission should wake the reader.
pub struct Slot<T: 'static> {
    entry: RingBufEntry<T>,
    wake: bool,
}

#[inline(always)]
pub fn header(kind: EventKind, pid_tgid: u64) -> Header {
    Header {
        // SAFETY: helper without preconditions.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        kind: kind as u32,
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        _pad: 0,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    }
}

/// Reserve a record; counts it as lost when the ring buffer is full.
#[inline(always)]
pub fn reserve<T: 'static>(kind: EventKind) -> Option<Slot<T>> {
    let before = EVENTS.query(BPF_RB_PROD_POS as u64);
    match EVENTS.reserve::<T>(0) {
        Some(entry) => {
            // Record size as the ring buffer accounts it: 8-byte header, 8-byte aligned.
            let after = before + ((core::mem::size_of::<T>() as u64 + 8 + 7) & !7);
            let wake = before / WAKEUP_BYTES != after / WAKEUP_BYTES;
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
