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
mod tests {
    use super::*;

    /// Reads the running kernel's BTF (no privileges needed: the file is world-readable).
    #[test]
    fn finds_every_offset_on_the_running_kernel() {
        let btf = KernelBtf::load().expect("this kernel has BTF");
        let (o, missing) = btf.offsets().unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        // This kernel maps its BTF file; a copy reads the same offsets.
        assert_eq!(btf.source, Source::Mapped);
        let copy = KernelBtf::load_from(Path::new(VMLINUX), false).unwrap();
        assert_eq!(copy.source, Source::Copied);
        assert_eq!(copy.offsets().unwrap().0, o);
        // Layout facts stable across kernels: the address pair opens sock_common,
        // the port pair follows the hash.
        assert_eq!(o.sk_daddr, 0);
        assert_eq!(o.sk_rcv_saddr, 4);
        assert_eq!(o.sk_dport, 12);
        assert_eq!(o.sk_num, 14);
        assert_eq!(o.sk_family, 16);
        assert_eq!(o.sk_state, 18);
        assert!(o.task_exit_code > 0 && o.task_files > 0);
        // struct k_sigaction { struct sigaction sa; } on x86_64: 4 words.
        assert_eq!(o.k_sigaction_size, 32);
        assert!(matches!(
            btf.offset("sock", "no_such_member"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.offset("no_such_struct", "x"),
            Err(BtfError::NoStruct(_))
        ));
        let reasons = btf.enum_names("sk_rst_reason", "SK_RST_REASON_");
        assert!(
            reasons.contains(&(0, "NOT_SPECIFIED".to_owned())),
            "{reasons:?}"
        );
    }

    /// `(struct name, kind_flag, size, [(member, bit offset, bitfield width)])`.
    type StructSpec<'a> = (&'a str, bool, u32, &'a [(&'a str, u32, u32)]);

    /// A BTF blob with one `u8` and the structs `members` describe: `(struct name,
    /// kind_flag, size, [(member, bit offset, bitfield width)])`, every member of
    /// type `u8`.
    fn btf_blob(structs: &[StructSpec]) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut name = |n: &str| {
            let off = strings.len() as u32;
            strings.extend_from_slice(n.as_bytes());
            strings.push(0);
            off
        };
        let mut types = Vec::new();
        let word = |types: &mut Vec<u8>, w: u32| types.extend_from_slice(&w.to_le_bytes());
        // [1] int "u8": BTF_KIND_INT, size 1, 8 bits.
        word(&mut types, name("u8"));
        word(&mut types, 1 << 24);
        word(&mut types, 1);
        word(&mut types, 8);
        for (sname, kind_flag, size, members) in structs {
            word(&mut types, name(sname));
            word(
                &mut types,
                (u32::from(*kind_flag) << 31) | (4 << 24) | members.len() as u32,
            );
            word(&mut types, *size);
            for (mname, bit_offset, width) in *members {
                word(&mut types, name(mname));
                word(&mut types, 1);
                word(
                    &mut types,
                    if *kind_flag {
                        (width << 24) | bit_offset
                    } else {
                        *bit_offset
                    },
                );
            }
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&0xeb9f_u16.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        for w in [
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            blob.extend_from_slice(&w.to_le_bytes());
        }
        blob.extend_from_slice(&types);
        blob.extend_from_slice(&strings);
        blob
    }

    fn fixture(structs: &[StructSpec]) -> KernelBtf {
        let dir = std::env::temp_dir().join(format!("netwatch-btf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(structs[0].0);
        std::fs::write(&path, btf_blob(structs)).unwrap();
        // Mapped, as from /sys/kernel/btf/vmlinux on this kernel.
        let btf = KernelBtf::load_from(&path, true).unwrap();
        std::fs::remove_file(&path).unwrap();
        btf
    }

    /// Linux 6.1's `struct sock`: `u8 sk_padding:1, sk_kern_sock:1, sk_no_check_tx:1,
    /// sk_no_check_rx:1, sk_userlocks:4;` (here at byte 4).
    #[test]
    fn a_bitfield_is_read_as_its_byte_shifted_and_masked() {
        let btf = fixture(&[(
            "sock",
            true,
            8,
            &[
                ("sk_padding", 32, 1),
                ("sk_kern_sock", 33, 1),
                ("sk_no_check_tx", 34, 1),
                ("sk_no_check_rx", 35, 1),
                ("sk_userlocks", 36, 4),
                ("across", 46, 4),
                ("plain", 56, 0),
            ],
        )]);
        let bits = btf.bits("sock", "sk_userlocks").unwrap();
        assert_eq!(
            bits,
            Bits {
                byte: 4,
                shift: 4,
                mask: 0xf
            }
        );
        // What the kernel program computes from that byte: SOCK_BINDPORT_LOCK (8)
        // and SOCK_SNDBUF_LOCK (1) set, the four bits below them noise.
        let byte: u8 = (0b1001 << 4) | 0b0101;
        assert_eq!(
            (byte >> bits.shift) & bits.mask as u8,
            netwatch_common::SOCK_BINDPORT_LOCK | 1
        );
        assert_eq!(
            btf.bits("sock", "sk_padding").unwrap(),
            Bits {
                byte: 4,
                shift: 0,
                mask: 1
            }
        );
        assert!(matches!(
            btf.offset("sock", "sk_userlocks"),
            Err(BtfError::Bitfield { .. })
        ));
        let across = btf.bits("sock", "across").unwrap_err();
        assert!(across.to_string().contains("across two bytes"), "{across}");
        // A plain member of a struct whose kind_flag is set: width 0.
        assert_eq!(
            btf.bits("sock", "plain").unwrap(),
            Bits {
                byte: 7,
                shift: 0,
                mask: 0xff
            }
        );
    }

    /// Linux 6.2 and later: `u8 sk_userlocks;`.
    #[test]
    fn a_plain_byte_is_read_whole() {
        let btf = fixture(&[("sock_plain", false, 4, &[("sk_userlocks", 16, 0)])]);
        assert_eq!(
            btf.bits("sock_plain", "sk_userlocks").unwrap(),
            Bits {
                byte: 2,
                shift: 0,
                mask: 0xff
            }
        );
        assert_eq!(btf.offset("sock_plain", "sk_userlocks").unwrap(), 2);
    }

    /// Kernels before 6.16 refuse to map /sys/kernel/btf/vmlinux (ENODEV): the copy
    /// reads the same types.
    #[test]
    fn a_copy_reads_what_the_map_reads() {
        let structs: &[StructSpec] = &[("sock_copy", true, 8, &[("sk_userlocks", 36, 4)])];
        let dir = std::env::temp_dir().join(format!("netwatch-btf-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vmlinux");
        std::fs::write(&path, btf_blob(structs)).unwrap();
        let copy = KernelBtf::load_from(&path, false).unwrap();
        assert_eq!(copy.source, Source::Copied);
        assert_eq!(
            copy.bits("sock_copy", "sk_userlocks").unwrap(),
            Bits {
                byte: 4,
                shift: 4,
                mask: 0xf
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            KernelBtf::load_from(&path, false),
            Err(BtfError::Open { .. })
        ));
    }
}
