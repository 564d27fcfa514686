//! Reading the ring buffer and the kernel's lost-record counters.
//!
//! The kernel programs submit most records without waking the reader (a wake-up per
//! record costs the producer more than the record itself) and force a wake-up only
//! every few hundred KiB. So the reader waits for readiness *or* a short timeout,
//! then drains whatever is there either way: the timeout bounds the latency of a
//! quiet stream, the forced wake-ups keep a busy one from overflowing.

use std::{io, os::fd::AsRawFd as _, time::Duration};

use aya::{
    Ebpf,
    maps::{MapData, MapError, PerCpuArray, RingBuf},
};
use netwatch_common::{EVENTS_MAP, EventKind, LOST_MAP};
use tokio::io::{Interest, unix::AsyncFd};

#[derive(Debug, thiserror::Error)]
pub enum RingBufError {
    #[error("map {0} is missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("registering the ring buffer fd {fd} with the event loop")]
    Register { fd: i32, source: io::Error },
}

pub struct Reader {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl Reader {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self, RingBufError> {
        let map = ebpf
            .take_map(EVENTS_MAP)
            .ok_or(RingBufError::MissingMap(EVENTS_MAP))?;
        let ring = RingBuf::try_from(map).map_err(|source| RingBufError::Map {
            name: EVENTS_MAP,
            source,
        })?;
        let fd = ring.as_raw_fd();
        // SAFETY: the RingBuf owns its map fd, keeps it open and returns the same fd
        // for as long as it lives, and it lives inside the AsyncFd.
        let ring =
            unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|e| {
                RingBufError::Register {
                    fd,
                    source: io::Error::from(e),
                }
            })?;
        Ok(Self { ring })
    }

    /// Wait until the kernel signals data or `timeout` passes.
    pub async fn wait(&mut self, timeout: Duration) {
        if let Ok(Ok(mut guard)) = tokio::time::timeout(timeout, self.ring.readable_mut()).await {
            guard.clear_ready();
        }
    }

    /// Hand every record now in the ring buffer to `f`; returns how many there were.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let ring = self.ring.get_mut();
        let mut n = 0;
        while let Some(item) = ring.next() {
            f(&item);
            n += 1;
        }
        n
    }
}

/// The kernel's per-CPU counts of records the ring buffer could not take.
pub struct Lost {
    map: PerCpuArray<MapData, u64>,
    reported: u64,
}

impl Lost {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self, RingBufError> {
        let map = ebpf
            .take_map(LOST_MAP)
            .ok_or(RingBufError::MissingMap(LOST_MAP))?;
        let map = PerCpuArray::try_from(map).map_err(|source| RingBufError::Map {
            name: LOST_MAP,
            source,
        })?;
        Ok(Self { map, reported: 0 })
    }

    /// Total lost so far, over every kind and CPU.
    pub fn total(&self) -> Result<u64, RingBufError> {
        Ok(self.by_kind()?.iter().map(|(_, n)| n).sum())
    }

    /// Lost so far per record kind (summed over CPUs), kinds with none left out.
    pub fn by_kind(&self) -> Result<Vec<(EventKind, u64)>, RingBufError> {
        let mut out = Vec::new();
        for k in 1..EventKind::COUNT {
            let per_cpu = self.map.get(&k, 0).map_err(|source| RingBufError::Map {
                name: LOST_MAP,
                source,
            })?;
            let n = per_cpu.iter().sum::<u64>();
            if let Some(kind) = EventKind::from_u32(k)
                && n > 0
            {
                out.push((kind, n));
            }
        }
        Ok(out)
    }

    /// Records lost since the last call (and the total), if any.
    pub fn newly_lost(&mut self) -> Result<Option<(u64, u64)>, RingBufError> {
        let total = self.total()?;
        let new = total - self.reported;
        self.reported = total;
        Ok((new > 0).then_some((new, total)))
    }
}
