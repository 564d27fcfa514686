//! Cgroups: every event carries its task's cgroup v2 id; this resolves ids to paths
//! (the id is the inode number of the cgroup's directory) and names the container or
//! systemd unit a path belongs to. `--cgroup PATH` becomes the id and depth the
//! kernel filter compares against.

use std::{
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Walk the hierarchy again for an unknown id at most this often.
const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// Cgroups remembered at most (a walk stops there).
const MAX_CGROUPS: usize = 65536;

/// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified
/// on hybrid hosts), from /proc/self/mountinfo.
pub fn mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        // "36 25 0:30 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw,..."
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(left.split_whitespace().nth(4)?))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("--cgroup {0}: no cgroup v2 hierarchy is mounted")]
    NoHierarchy(String),
    #[error("--cgroup {path}: not a cgroup: {why}")]
    NotACgroup { path: String, why: String },
    #[error("--cgroup {path}: no such cgroup under {root}")]
    NotFound {
        path: String,
        root: String,
        source: io::Error,
    },
}

/// A `--cgroup` filter: what the kernel compares against, and its path for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The cgroup's id: its directory's inode number.
    pub id: u64,
    /// Its depth below the hierarchy's root.
    pub level: u32,
    /// Its path below the root, `/`-separated, `.` and `..` resolved.
    pub path: String,
}

/// `--cgroup PATH` (relative to the hierarchy, or absolute under its mount) as a
/// [`Filter`]. Refused: what is not a cgroup directory (a file such as
/// `cgroup.procs`, a directory outside the hierarchy), which would filter out
/// everything.
pub fn resolve_filter(path: &str) -> Result<Filter, CgroupError> {
    let root = mount().ok_or_else(|| CgroupError::NoHierarchy(path.to_owned()))?;
    let relative = Path::new(path)
        .strip_prefix(&root)
        .unwrap_or(Path::new(path));
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    let not_found = |source| CgroupError::NotFound {
        path: path.to_owned(),
        root: root.display().to_string(),
        source,
    };
    let dir = fs::canonicalize(root.join(relative)).map_err(not_found)?;
    let not_a_cgroup = |why: &str| CgroupError::NotACgroup {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let below = dir
        .strip_prefix(&root)
        .map_err(|_| not_a_cgroup(&format!("outside the hierarchy at {}", root.display())))?;
    let meta = fs::metadata(&dir).map_err(not_found)?;
    if !meta.is_dir() {
        return Err(not_a_cgroup("a file, not a cgroup's directory"));
    }
    if !dir.join("cgroup.procs").exists() {
        return Err(not_a_cgroup("a directory without cgroup.procs"));
    }
    Ok(Filter {
        id: meta.ino(),
        level: below.components().count() as u32,
        path: format!("/{}", below.display()),
    })
}

/// What a cgroup path says about where a process runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// Path below the hierarchy's root, e.g. `/system.slice/nginx.service`.
    pub path: String,
    /// A container runtime's id (docker, containerd/CRI, CRI-O, podman), when the
    /// path names one.
    pub container: Option<String>,
    /// The systemd unit (`*.service`, or a scope that is not a container's).
    pub unit: Option<String>,
}

const RUNTIME_PREFIXES: [&str; 5] = [
    "docker-",
    "cri-containerd-",
    "crio-",
    "libpod-",
    "containerd-",
];

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Read a cgroup path: `/system.slice/docker-<64 hex>.scope`, `/docker/<64 hex>`,
/// `/kubepods.slice/.../cri-containerd-<64 hex>.scope`, `/kubepods/burstable/pod…/<64 hex>`,
/// `/system.slice/nginx.service`...
pub fn place(path: &str) -> Place {
    let mut p = Place {
        path: path.to_owned(),
        ..Place::default()
    };
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let bare = component.strip_suffix(".scope").unwrap_or(component);
        let bare = RUNTIME_PREFIXES
            .iter()
            .find_map(|pre| bare.strip_prefix(pre))
            .unwrap_or(bare);
        if is_container_id(bare) {
            p.container = Some(bare.to_owned());
        } else if component.ends_with(".service") || component.ends_with(".scope") {
            p.unit = Some(component.to_owned());
        }
    }
    if p.container.is_some() {
        p.unit = None;
    }
    p
}

/// Cgroup id -> where it is, from walks of the hierarchy (each path read once).
pub struct Cgroups {
    root: Option<PathBuf>,
    places: foldhash::HashMap<u64, Place>,
    last_scan: Option<Instant>,
}

impl Default for Cgroups {
    fn default() -> Self {
        Self::new()
    }
}

impl Cgroups {
    pub fn new() -> Self {
        Self {
            root: mount(),
            places: foldhash::HashMap::default(),
            last_scan: None,
        }
    }

    /// Where cgroup `id` is, if it can be found (0, or no hierarchy: None).
    pub fn place(&mut self, id: u64) -> Option<&Place> {
        if id == 0 {
            return None;
        }
        if !self.places.contains_key(&id)
            && self.last_scan.is_none_or(|t| t.elapsed() >= RESCAN_EVERY)
        {
            self.scan();
        }
        self.places.get(&id)
    }

    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let Some(root) = self.root.clone() else {
            return;
        };
        if self.places.len() >= MAX_CGROUPS {
            self.places.clear();
        }
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            let rel = dir
                .strip_prefix(&root)
                .map(|r| format!("/{}", r.display()))
                .unwrap_or_default();
            self.places.entry(meta.ino()).or_insert_with(|| place(&rel));
            if self.places.len() >= MAX_CGROUPS {
                return;
            }
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

    #[test]
    fn names_containers_and_units() {
        assert_eq!(
            place(&format!("/system.slice/docker-{ID}.scope"))
                .container
                .as_deref(),
            Some(ID)
        );
        assert_eq!(
            place(&format!("/docker/{ID}")).container.as_deref(),
            Some(ID)
        );
        let k8s = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(place(&k8s).container.as_deref(), Some(ID));
        assert_eq!(
            place(&format!("/kubepods/burstable/pod7/{ID}"))
                .container
                .as_deref(),
            Some(ID)
        );
        assert_eq!(
            place(&format!("/machine.slice/libpod-{ID}.scope"))
                .container
                .as_deref(),
            Some(ID)
        );
        let nginx = place("/system.slice/nginx.service");
        assert_eq!(
            (nginx.container, nginx.unit.as_deref()),
            (None, Some("nginx.service"))
        );
        let root = place("/");
        assert_eq!((root.container, root.unit), (None, None));
        assert_eq!(
            place("/user.slice/user-0.slice/session-3.scope")
                .unit
                .as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(place("/docker/abc").container, None, "not a 64-hex id");
    }

    #[test]
    fn finds_the_hierarchy_and_resolves_its_root() {
        let Some(root) = mount() else { return };
        let Filter { id, level, path } = resolve_filter("/").unwrap();
        assert_eq!(id, fs::metadata(&root).unwrap().ino());
        assert_eq!((level, path.as_str()), (0, "/"));
        assert!(matches!(
            resolve_filter("/no/such/netwatch/cgroup"),
            Err(CgroupError::NotFound { .. })
        ));
        // The hierarchy's own files, and the way out of it, are not cgroups.
        for not_a_cgroup in ["/cgroup.procs", "/.."] {
            assert!(
                matches!(
                    resolve_filter(not_a_cgroup),
                    Err(CgroupError::NotACgroup { .. })
                ),
                "{not_a_cgroup}: {:?}",
                resolve_filter(not_a_cgroup)
            );
        }
        let absolute = resolve_filter(&root.join(".").display().to_string()).unwrap();
        assert_eq!((absolute.id, absolute.level), (id, 0));
        let mut c = Cgroups::new();
        assert_eq!(c.place(id).map(|p| p.path.as_str()), Some("/"));
    }
}
