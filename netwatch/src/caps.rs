//! Checking, before anything is loaded, that netwatch has the capabilities it needs,
//! so that the error names the missing one instead of a bare EPERM.

use std::fs;

/// capability numbers from include/uapi/linux/capability.h.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, thiserror::Error)]
#[error(
    "missing capability {missing}: loading eBPF programs needs CAP_BPF and CAP_PERFMON \
     (or CAP_SYS_ADMIN); run as root: sudo netwatch"
)]
pub struct MissingCapability {
    pub missing: String,
}

/// The effective capability set from `/proc/self/status` (`CapEff:` hex mask).
fn effective() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

pub fn check() -> Result<(), MissingCapability> {
    // If the set cannot be read, let the kernel decide and report its error.
    let Some(eff) = effective() else {
        return Ok(());
    };
    missing(eff).map_or(Ok(()), |missing| Err(MissingCapability { missing }))
}

fn missing(eff: u64) -> Option<String> {
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return None;
    }
    let names: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| !has(cap))
        .map(|(_, name)| name)
        .collect();
    (!names.is_empty()).then(|| names.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing() {
        assert_eq!(missing(0).as_deref(), Some("CAP_BPF and CAP_PERFMON"));
        assert_eq!(missing(1 << CAP_BPF).as_deref(), Some("CAP_PERFMON"));
        assert_eq!(missing(1 << CAP_PERFMON).as_deref(), Some("CAP_BPF"));
        assert_eq!(missing((1 << CAP_BPF) | (1 << CAP_PERFMON)), None);
        assert_eq!(missing(1 << CAP_SYS_ADMIN), None);
        assert_eq!(missing(u64::MAX), None);
    }
}
