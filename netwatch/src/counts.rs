//! The kernel's per-process counts of failures whose records were lost (PROC_COUNTS):
//! read and deleted when a process has exited, and for every process left at the end
//! of the run; added to the stream's counts, they make them exact. And the exit
//! records the ring buffer could not take (LOST_EXITS), handed back as records.

use aya::{
    Ebpf,
    maps::{HashMap, MapData, MapError, PerCpuHashMap},
};
use netwatch_common::{LOST_EXITS_MAP, PROC_COUNTS_MAP, ProcCounts, process::ExitEvent};

#[derive(Debug, thiserror::Error)]
pub enum CountsError {
    #[error("map {0} is missing from the eBPF object")]
    Missing(&'static str),
    #[error("map {0}")]
    Map(&'static str, #[source] MapError),
}

pub struct KernelCounts {
    map: PerCpuHashMap<MapData, u32, ProcCounts>,
}

impl KernelCounts {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self, CountsError> {
        let map = ebpf
            .take_map(PROC_COUNTS_MAP)
            .ok_or(CountsError::Missing(PROC_COUNTS_MAP))?;
        Ok(Self {
            map: PerCpuHashMap::try_from(map).map_err(|e| CountsError::Map(PROC_COUNTS_MAP, e))?,
        })
    }

    /// The counts of `pid`, summed over CPUs, and its entry removed.
    pub fn take(&mut self, pid: u32) -> Option<ProcCounts> {
        let values = self.map.get(&pid, 0).ok()?;
        let _ = self.map.remove(&pid);
        Some(sum(values.iter()))
    }

    /// Every entry left, removed.
    pub fn take_all(&mut self) -> Vec<(u32, ProcCounts)> {
        let pids: Vec<u32> = self.map.keys().filter_map(Result::ok).collect();
        pids.into_iter()
            .filter_map(|pid| self.take(pid).map(|c| (pid, c)))
            .collect()
    }

    /// Entries in the map now.
    pub fn occupancy(&self) -> usize {
        self.map.keys().filter(Result::is_ok).count()
    }
}

/// Exit records the ring buffer could not take (LOST_EXITS), kept by the kernel.
pub struct LostExits {
    map: HashMap<MapData, u32, [u8; size_of::<ExitEvent>()]>,
}

impl LostExits {
    pub fn new(ebpf: &mut Ebpf) -> Result<Self, CountsError> {
        let map = ebpf
            .take_map(LOST_EXITS_MAP)
            .ok_or(CountsError::Missing(LOST_EXITS_MAP))?;
        Ok(Self {
            map: HashMap::try_from(map).map_err(|e| CountsError::Map(LOST_EXITS_MAP, e))?,
        })
    }

    /// Every record kept, as the ring buffer would have handed it over; removed.
    pub fn take_all(&mut self) -> Vec<[u8; size_of::<ExitEvent>()]> {
        let pids: Vec<u32> = self.map.keys().filter_map(Result::ok).collect();
        pids.into_iter()
            .filter_map(|pid| {
                let record = self.map.get(&pid, 0).ok()?;
                let _ = self.map.remove(&pid);
                Some(record)
            })
            .collect()
    }
}

fn sum<'a>(per_cpu: impl Iterator<Item = &'a ProcCounts>) -> ProcCounts {
    let mut total = ProcCounts::ZERO;
    for c in per_cpu {
        for (t, n) in total.n.iter_mut().zip(c.n) {
            *t += n;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use netwatch_common::{ErrorClass, Family};

    use super::*;

    #[test]
    fn sums_over_cpus() {
        let mut a = ProcCounts::ZERO;
        let mut b = ProcCounts::ZERO;
        a.n[ProcCounts::index(ErrorClass::AddrInUse, Family::Bind)] = 3;
        b.n[ProcCounts::index(ErrorClass::AddrInUse, Family::Bind)] = 4;
        b.n[ProcCounts::index(ErrorClass::Pipe, Family::Sendfile)] = 1;
        let s = sum([a, b].iter());
        assert_eq!(s.n[0], 7);
        assert_eq!(s.n[2 * 5 + 4], 1);
        assert_eq!(s.n.iter().sum::<u64>(), 8);
    }
}
