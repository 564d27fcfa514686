//! Reading the ring buffer and the kernel's lost-record counters.
//!
//! The kernel programs submit most records without waking the reader (a wake-up per
//! record costs the producer more than the record itself) and force a wake-up only
//! every few hundred KiB. So the reader waits for readiness *or* a short timeout,
//! then drains whatever is there either way: the timeout bounds the latency of a
//! quiet stream, the forced wake-ups keep a busy one from overflowing.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd, RawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
    time::Duration,
};

use aya::{
    Ebpf,
    maps::{Map, MapData, MapError, PerCpuArray},
};
use netwatch_common::{EVENTS_MAP, EventKind, LOST_MAP};
use tokio::io::{Interest, unix::AsyncFd};

#[derive(Debug, thiserror::Error)]
pub enum RingBufError {
    #[error("map {0} is missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("map {0} is not a ring buffer")]
    NotRingBuf(&'static str),
    #[error("map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("mapping the ring buffer {name} ({len} bytes at offset {offset})")]
    Mmap {
        name: &'static str,
        len: usize,
        offset: usize,
        source: io::Error,
    },
    #[error("registering the ring buffer fd {fd} with the event loop")]
    Register { fd: i32, source: io::Error },
}

pub struct Reader {
    ring: AsyncFd<Ring>,
}

impl Reader {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self, RingBufError> {
        let map = ebpf
            .take_map(EVENTS_MAP)
            .ok_or(RingBufError::MissingMap(EVENTS_MAP))?;
        let Map::RingBuf(data) = map else {
            return Err(RingBufError::NotRingBuf(EVENTS_MAP));
        };
        let ring = Ring::new(data)?;
        let fd = ring.as_raw_fd();
        // SAFETY: the Ring owns the map's fd (in its MapData) and keeps it open for as
        // long as it lives, and it lives inside the AsyncFd.
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
    pub fn drain(&mut self, f: impl FnMut(&[u8])) -> usize {
        self.ring.get_mut().drain(f)
    }
}

/// A BPF ring buffer's memory, read in batches.
///
/// aya's `RingBuf` publishes the consumer position after every record. The producer
/// reads that position at every reservation, so a reader on another CPU keeping pace
/// with a storm made each reservation miss the cache for it (measured: a failing bind
/// traced cost hundreds of ns more with the reader keeping up than without). Here the
/// position is published once per [`PUBLISH_BYTES`] and at the end of each drain.
///
/// Layout (kernel/bpf/ringbuf.c): one page with the consumer position (read-write),
/// one page with the producer position, then the data pages, mapped twice in a row so
/// that a record wrapping around the end reads as one slice.
struct Ring {
    /// Keeps the map's fd open for as long as the mappings live.
    map: MapData,
    consumer: Mapping,
    producer: Mapping,
    page_size: usize,
    /// Ring size minus one (a power of two).
    mask: usize,
    /// Our consumer position, published to the kernel in batches.
    pos: usize,
}

/// Publish the consumer position at least this often while draining, so the
/// producer can reuse space in the middle of a long drain.
const PUBLISH_BYTES: usize = 256 * 1024;
/// Record header: length and flags (u32), page offset (u32).
const HEADER: usize = 8;
const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;

impl Ring {
    fn new(map: MapData) -> Result<Self, RingBufError> {
        // SAFETY: sysconf has no preconditions.
        let page_size =
            usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let size = map.info().map_err(|source| RingBufError::Map {
            name: EVENTS_MAP,
            source,
        })?;
        let size = size.max_entries() as usize;
        let fd = map.fd().as_fd().as_raw_fd();
        let consumer = Mapping::new(fd, page_size, 0, libc::PROT_READ | libc::PROT_WRITE)?;
        let producer = Mapping::new(fd, page_size + 2 * size, page_size, libc::PROT_READ)?;
        let pos = consumer.atomic_usize(0).load(Ordering::Acquire);
        Ok(Self {
            map,
            consumer,
            producer,
            page_size,
            mask: size - 1,
            pos,
        })
    }

    fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        let mut published = self.pos;
        // The kernel writes the producer position with release semantics after the
        // record headers it covers.
        let mut end = self.producer.atomic_usize(0).load(Ordering::Acquire);
        loop {
            if self.pos == end {
                // Caught up: publish, then look once more for records that came meanwhile.
                self.publish();
                published = self.pos;
                end = self.producer.atomic_usize(0).load(Ordering::Acquire);
                if self.pos == end {
                    return n;
                }
            }
            let offset = self.page_size + (self.pos & self.mask);
            // Pairs with the kernel's xchg that commits the record.
            let header = self.producer.atomic_u32(offset).load(Ordering::Acquire);
            if header & BUSY_BIT != 0 {
                // Reserved but not yet submitted: the next drain will have it.
                self.publish();
                return n;
            }
            let len = (header & !(BUSY_BIT | DISCARD_BIT)) as usize;
            if header & DISCARD_BIT == 0 {
                f(self.producer.bytes(offset + HEADER, len));
                n += 1;
            }
            self.pos += (HEADER + len).next_multiple_of(8);
            if self.pos - published >= PUBLISH_BYTES {
                self.publish();
                published = self.pos;
            }
        }
    }

    /// Tell the kernel the space up to `pos` is free, after reading it.
    fn publish(&self) {
        self.consumer
            .atomic_usize(0)
            .store(self.pos, Ordering::Release);
    }
}

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.map.fd().as_fd().as_raw_fd()
    }
}

/// A shared mapping of part of a map's memory, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, read through atomics and immutable
// slices; the kernel is the only other writer.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(fd: RawFd, len: usize, offset: usize, prot: i32) -> Result<Self, RingBufError> {
        let error = |source| RingBufError::Mmap {
            name: EVENTS_MAP,
            len,
            offset,
            source,
        };
        let off = libc::off_t::try_from(offset)
            .map_err(|_| error(io::Error::from(io::ErrorKind::InvalidInput)))?;
        // SAFETY: a fresh shared mapping of the map's fd; nothing else refers to it.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, off) };
        if ptr == libc::MAP_FAILED {
            return Err(error(io::Error::last_os_error()));
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| error(io::Error::other("NULL")))?;
        Ok(Self { ptr, len })
    }

    fn atomic_usize(&self, offset: usize) -> &AtomicUsize {
        assert!(offset + size_of::<AtomicUsize>() <= self.len && offset.is_multiple_of(8));
        // SAFETY: in bounds and aligned (checked above); the kernel updates the word
        // atomically.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicUsize>() }
    }

    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + size_of::<AtomicU32>() <= self.len && offset.is_multiple_of(4));
        // SAFETY: as in `atomic_usize`.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        assert!(
            offset + len <= self.len,
            "record out of the ring buffer's mapping"
        );
        // SAFETY: in bounds (checked above); a submitted record is not written again
        // until the consumer position passes it.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
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
