//! Offsets of kernel struct members, from the running kernel's BTF
//! (/sys/kernel/btf/vmlinux). Rust eBPF programs have no CO-RE relocations, so the
//! daemon finds each offset at start-up and hands them to the programs as load-time
//! constants ([`KernelOffsets`]).

use std::{
    fs::File,
    io::{self, Write as _},
    os::fd::{AsRawFd as _, FromRawFd as _},
    path::{Path, PathBuf},
};

use btf_rs::{Backend, Btf, Type};
use netwatch_common::{
    FEATURE_CGROUP_WALK, FEATURE_EXIT_CODE, FEATURE_SIGHAND, FEATURE_SK_ERR, FEATURE_USERLOCKS,
    KernelOffsets,
};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading the kernel's BTF from {path}: {message}")]
    Open { path: String, message: String },
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF: {strukt}.{member} is a bitfield")]
    Bitfield { strukt: String, member: String },
    #[error("kernel BTF: {strukt}.{member} is {shape}, which netwatch cannot read")]
    Shape {
        strukt: String,
        member: String,
        shape: String,
    },
    #[error("kernel BTF: {0}")]
    Parse(String),
}

/// How the BTF was read: mapped (Linux 6.16 and later map /sys/kernel/btf/vmlinux),
/// or copied into memory and mapped from there (older kernels refuse the mmap with
/// ENODEV; a plain read works).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Mapped,
    Copied,
}

/// A member read as bits: the byte at `byte`, shifted right by `shift`, masked with
/// `mask`. A plain `u8` is shift 0, mask 0xff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bits {
    pub byte: u32,
    pub shift: u32,
    pub mask: u32,
}

/// An optional feature the running kernel's BTF could not give, and why.
#[derive(Debug)]
pub struct Missing {
    /// What is not traced without it, in the words of a warning.
    pub feature: &'static str,
    pub error: BtfError,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} on kernel {}",
            self.error,
            self.feature,
            release()
        )
    }
}

/// The running kernel's release (`uname -r`), for warnings.
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_owned(), |r| r.trim().to_owned())
}

pub struct KernelBtf {
    btf: Btf,
    pub source: Source,
}

impl KernelBtf {
    /// The kernel's BTF: /sys/kernel/btf/vmlinux, or the file `NETWATCH_BTF` names
    /// (another kernel's, or none, to see how netwatch copes without).
    pub fn path() -> PathBuf {
        std::env::var_os("NETWATCH_BTF").map_or_else(|| PathBuf::from(VMLINUX), PathBuf::from)
    }

    pub fn load() -> Result<Self, BtfError> {
        Self::load_from(&Self::path(), true)
    }

    /// Map `path` (when `map` is set and the file allows it), else copy it.
    fn load_from(path: &Path, map: bool) -> Result<Self, BtfError> {
        let open_error = |message: String| BtfError::Open {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() {
            return Err(open_error("not found".into()));
        }
        // Mapped, only the few types netwatch asks for are parsed.
        if map && let Ok(btf) = Btf::from_file_with_backend(path, Backend::Mmap) {
            return Ok(Self {
                btf,
                source: Source::Mapped,
            });
        }
        let btf = copied(path).map_err(open_error)?;
        Ok(Self {
            btf,
            source: Source::Copied,
        })
    }

    fn named_struct(&self, name: &str) -> Result<btf_rs::Struct, BtfError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|_| BtfError::NoStruct(name.into()))?;
        types
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) if !s.members.is_empty() => Some(s),
                _ => None,
            })
            .ok_or_else(|| BtfError::NoStruct(name.into()))
    }

    /// Strip typedefs and qualifiers.
    fn resolve(&self, mut t: Type) -> Result<Type, BtfError> {
        for _ in 0..16 {
            t = match t {
                Type::Typedef(_)
                | Type::Const(_)
                | Type::Volatile(_)
                | Type::Restrict(_)
                | Type::TypeTag(_) => {
                    let inner = t.as_btf_type().ok_or_else(|| {
                        BtfError::Parse("a typedef or qualifier without a type".into())
                    })?;
                    self.btf
                        .resolve_chained_type(inner)
                        .map_err(|e| BtfError::Parse(e.to_string()))?
                }
                other => return Ok(other),
            };
        }
        Err(BtfError::Parse("type chain too long".into()))
    }

    /// `member` of `s`, looking through anonymous structs and unions: its bit offset
    /// from the start of `s`, its width when it is a bitfield, and its type.
    fn find(&self, s: &btf_rs::Struct, member: &str) -> Result<Option<Found>, BtfError> {
        for m in &s.members {
            let name = self.btf.resolve_name(m).unwrap_or_default();
            if name == member {
                let ty = self
                    .btf
                    .resolve_chained_type(m)
                    .map_err(|e| BtfError::Parse(e.to_string()))?;
                return Ok(Some(Found {
                    bit_offset: m.bit_offset(),
                    bits: m.bitfield_size().filter(|n| *n != 0),
                    ty,
                }));
            }
            if name.is_empty() {
                let ty = self
                    .btf
                    .resolve_chained_type(m)
                    .map_err(|e| BtfError::Parse(e.to_string()))?;
                if let Type::Struct(inner) | Type::Union(inner) = self.resolve(ty)?
                    && let Some(found) = self.find(&inner, member)?
                {
                    return Ok(Some(Found {
                        bit_offset: m.bit_offset() + found.bit_offset,
                        ..found
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The member at a path like `__sk_common.skc_daddr` in `struct strukt`, its bit
    /// offset counted from the start of `strukt`.
    fn member(&self, strukt: &str, path: &str) -> Result<Found, BtfError> {
        let mut s = self.named_struct(strukt)?;
        let mut total = 0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let found = self.find(&s, part)?.ok_or_else(|| BtfError::NoMember {
                strukt: strukt.into(),
                member: path.into(),
            })?;
            total += found.bit_offset;
            if parts.peek().is_none() {
                return Ok(Found {
                    bit_offset: total,
                    ..found
                });
            }
            s = match self.resolve(found.ty)? {
                Type::Struct(inner) | Type::Union(inner) => inner,
                _ => {
                    return Err(BtfError::NoMember {
                        strukt: strukt.into(),
                        member: path.into(),
                    });
                }
            };
        }
        Err(BtfError::NoMember {
            strukt: strukt.into(),
            member: path.into(),
        })
    }

    /// Byte offset of a member path like `__sk_common.skc_daddr` in `struct strukt`;
    /// a bitfield is an error (see [`KernelBtf::bits`]).
    pub fn offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let found = self.member(strukt, path)?;
        if found.bits.is_some() {
            return Err(BtfError::Bitfield {
                strukt: strukt.into(),
                member: path.into(),
            });
        }
        Ok(found.bit_offset / 8)
    }

    /// A member of at most 8 bits, read as the byte that holds it: a bitfield (BTF
    /// gives its bit offset and width), or a plain one-byte integer.
    pub fn bits(&self, strukt: &str, path: &str) -> Result<Bits, BtfError> {
        let found = self.member(strukt, path)?;
        let shape = |shape: String| BtfError::Shape {
            strukt: strukt.into(),
            member: path.into(),
            shape,
        };
        let (shift, width) = match found.bits {
            Some(width) => (found.bit_offset % 8, width),
            None => match self.resolve(found.ty)? {
                Type::Int(i) if i.size() == 1 && found.bit_offset % 8 == 0 => (0, 8),
                Type::Int(i) => return Err(shape(format!("a {}-byte integer", i.size()))),
                _ => return Err(shape("not an integer".into())),
            },
        };
        // Little-endian: bit 0 is the low bit of the first byte.
        if shift + width > 8 {
            return Err(shape(format!(
                "a {width}-bit field at bit {} (across two bytes)",
                found.bit_offset
            )));
        }
        Ok(Bits {
            byte: found.bit_offset / 8,
            shift,
            mask: (1 << width) - 1,
        })
    }

    /// `sizeof(struct name)`.
    pub fn size(&self, strukt: &str) -> Result<u32, BtfError> {
        let s = self.named_struct(strukt)?;
        Ok(s.size() as u32)
    }

    /// The names of an enum's values, e.g. `sk_rst_reason` (prefix stripped).
    pub fn enum_names(&self, name: &str, prefix: &str) -> Vec<(u32, String)> {
        let Ok(types) = self.btf.resolve_types_by_name(name) else {
            return Vec::new();
        };
        types
            .into_iter()
            .find_map(|t| match t {
                Type::Enum(e) => Some(
                    e.members
                        .iter()
                        .filter_map(|m| {
                            let n = self.btf.resolve_name(m).ok()?;
                            Some((m.val(), n.strip_prefix(prefix).unwrap_or(&n).to_owned()))
                        })
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Every offset the kernel programs use. A member they all need missing is an
    /// error; one an optional feature alone needs turns that feature off (its
    /// `FEATURE_*` bit left clear) and is returned with the offsets.
    pub fn offsets(&self) -> Result<(KernelOffsets, Vec<Missing>), BtfError> {
        let sk = |m: &str| self.offset("sock", m);
        let mut o = KernelOffsets {
            valid: 1,
            task_files: self.offset("task_struct", "files")?,
            task_tgid: self.offset("task_struct", "tgid")?,
            task_pid: self.offset("task_struct", "pid")?,
            task_comm: self.offset("task_struct", "comm")?,
            files_fdt: self.offset("files_struct", "fdt")?,
            fdt_max_fds: self.offset("fdtable", "max_fds")?,
            fdt_fd: self.offset("fdtable", "fd")?,
            file_private_data: self.offset("file", "private_data")?,
            file_inode: self.offset("file", "f_inode")?,
            inode_mode: self.offset("inode", "i_mode")?,
            socket_sk: self.offset("socket", "sk")?,
            socket_type: self.offset("socket", "type")?,
            sk_daddr: sk("__sk_common.skc_daddr")?,
            sk_rcv_saddr: sk("__sk_common.skc_rcv_saddr")?,
            sk_dport: sk("__sk_common.skc_dport")?,
            sk_num: sk("__sk_common.skc_num")?,
            sk_family: sk("__sk_common.skc_family")?,
            sk_state: sk("__sk_common.skc_state")?,
            sk_v6_daddr: sk("__sk_common.skc_v6_daddr")?,
            sk_v6_rcv_saddr: sk("__sk_common.skc_v6_rcv_saddr")?,
            sk_type: sk("sk_type")?,
            sk_protocol: sk("sk_protocol")?,
            inet_sport: self.offset("inet_sock", "inet_sport")?,
            ..KernelOffsets::default()
        };
        let mut missing = Vec::new();
        let mut take = |feature: &'static str, r| match r {
            Ok(v) => Some(v),
            Err(error) => {
                missing.push(Missing { feature, error });
                None
            }
        };
        if let Some(v) = take(
            "exit statuses are not traced",
            self.offset("task_struct", "exit_code").map(|v| [v, 0, 0]),
        ) {
            o.task_exit_code = v[0];
            o.features |= FEATURE_EXIT_CODE;
        }
        if let Some(v) = take(
            "the fate of a SIGPIPE (ignored, caught, fatal) is not known",
            (|| {
                Ok([
                    self.offset("task_struct", "sighand")?,
                    self.offset("sighand_struct", "action")?,
                    self.size("k_sigaction")?,
                ])
            })(),
        ) {
            [o.task_sighand, o.sighand_action, o.k_sigaction_size] = v;
            o.features |= FEATURE_SIGHAND;
        }
        if let Some(v) = take(
            "a connect from an explicitly bound port is not told from port exhaustion",
            self.bits("sock", "sk_userlocks")
                .map(|b| [b.byte, b.shift, b.mask]),
        ) {
            [o.sk_userlocks, o.sk_userlocks_shift, o.sk_userlocks_mask] = v;
            o.features |= FEATURE_USERLOCKS;
        }
        if let Some(v) = take(
            "errors of non-blocking connects after connect(2) returned are not traced",
            (|| Ok([sk("sk_err")?, self.offset("tcp_sock", "srtt_us")?, 0]))(),
        ) {
            [o.sk_err, o.tcp_srtt_us, _] = v;
            o.features |= FEATURE_SK_ERR;
        }
        // Without, the programs call bpf_get_current_cgroup_id: nothing is lost.
        if let Ok((a, b, c, d)) = (|| {
            Ok::<_, BtfError>((
                self.offset("task_struct", "cgroups")?,
                self.offset("css_set", "dfl_cgrp")?,
                self.offset("cgroup", "kn")?,
                self.offset("kernfs_node", "id")?,
            ))
        })() {
            (
                o.task_cgroups,
                o.css_set_dfl_cgrp,
                o.cgroup_kn,
                o.kernfs_node_id,
            ) = (a, b, c, d);
            o.features |= FEATURE_CGROUP_WALK;
        }
        Ok((o, missing))
    }
}

/// A struct member as [`KernelBtf::find`] finds it.
struct Found {
    bit_offset: u32,
    /// Width of a bitfield.
    bits: Option<u32>,
    ty: Type,
}

/// The BTF at `path` read whole into an anonymous memory file and mapped from there:
/// the same lazy parsing as a mapped file, for a kernel that cannot map its own (a
/// parse of every type up front would cost tens of MiB).
fn copied(path: &Path) -> Result<Btf, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let memfd = memfd("netwatch-btf").map_err(|e| format!("memfd_create: {e}"))?;
    (&memfd)
        .write_all(&bytes)
        .map_err(|e| format!("copying into memory: {e}"))?;
    drop(bytes);
    let fd_path = format!("/proc/self/fd/{}", memfd.as_raw_fd());
    match Btf::from_file_with_backend(&fd_path, Backend::Mmap) {
        Ok(btf) => Ok(btf),
        // No /proc: parse it all.
        Err(_) => Btf::from_file(path).map_err(|e| e.to_string()),
    }
}

fn memfd(name: &str) -> io::Result<File> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a valid NUL-terminated name; the returned fd is owned by the File.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests;
