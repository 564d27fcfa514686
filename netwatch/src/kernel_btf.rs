//! Offsets of kernel struct members, from the running kernel's BTF
//! (/sys/kernel/btf/vmlinux). Rust eBPF programs have no CO-RE relocations, so the
//! daemon finds each offset at start-up and hands them to the programs as load-time
//! constants ([`KernelOffsets`]).

use std::path::PathBuf;

use btf_rs::{Backend, Btf, Type};
use netwatch_common::KernelOffsets;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading the kernel's BTF from {path}: {message}")]
    Open { path: String, message: String },
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF: {strukt}.{member} is a bitfield, which netwatch cannot read")]
    Bitfield { strukt: String, member: String },
    #[error("kernel BTF: {0}")]
    Parse(String),
}

pub struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    /// The kernel's BTF: /sys/kernel/btf/vmlinux, or the file `NETWATCH_BTF` names
    /// (another kernel's, or none, to see how netwatch copes without).
    pub fn path() -> PathBuf {
        std::env::var_os("NETWATCH_BTF").map_or_else(|| PathBuf::from(VMLINUX), PathBuf::from)
    }

    pub fn load() -> Result<Self, BtfError> {
        let path = Self::path();
        if !path.exists() {
            return Err(BtfError::Open {
                path: path.display().to_string(),
                message: "not found".into(),
            });
        }
        // Mmap: only the few types netwatch asks for are parsed.
        let btf =
            Btf::from_file_with_backend(&path, Backend::Mmap).map_err(|e| BtfError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self { btf })
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
                    let inner = t.as_btf_type().expect("qualifier types carry a type id");
                    self.btf
                        .resolve_chained_type(inner)
                        .map_err(|e| BtfError::Parse(e.to_string()))?
                }
                other => return Ok(other),
            };
        }
        Err(BtfError::Parse("type chain too long".into()))
    }

    /// Byte offset of `member` in `s`, looking through anonymous structs and unions.
    fn find(
        &self,
        s: &btf_rs::Struct,
        member: &str,
        strukt: &str,
    ) -> Result<Option<(u32, Type)>, BtfError> {
        for m in &s.members {
            let name = self.btf.resolve_name(m).unwrap_or_default();
            if name == member {
                if m.bitfield_size().is_some_and(|n| n != 0) {
                    return Err(BtfError::Bitfield {
                        strukt: strukt.into(),
                        member: member.into(),
                    });
                }
                let ty = self
                    .btf
                    .resolve_chained_type(m)
                    .map_err(|e| BtfError::Parse(e.to_string()))?;
                return Ok(Some((m.bit_offset() / 8, ty)));
            }
            if name.is_empty() {
                let ty = self
                    .btf
                    .resolve_chained_type(m)
                    .map_err(|e| BtfError::Parse(e.to_string()))?;
                if let Type::Struct(inner) | Type::Union(inner) = self.resolve(ty)?
                    && let Some((off, ty)) = self.find(&inner, member, strukt)?
                {
                    return Ok(Some((m.bit_offset() / 8 + off, ty)));
                }
            }
        }
        Ok(None)
    }

    /// Byte offset of a member path like `__sk_common.skc_daddr` in `struct strukt`.
    pub fn offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let mut s = self.named_struct(strukt)?;
        let mut total = 0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let (off, ty) = self
                .find(&s, part, strukt)?
                .ok_or_else(|| BtfError::NoMember {
                    strukt: strukt.into(),
                    member: path.into(),
                })?;
            total += off;
            if parts.peek().is_some() {
                s = match self.resolve(ty)? {
                    Type::Struct(inner) | Type::Union(inner) => inner,
                    _ => {
                        return Err(BtfError::NoMember {
                            strukt: strukt.into(),
                            member: path.into(),
                        });
                    }
                };
            }
        }
        Ok(total)
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

    /// Every offset the kernel programs use.
    pub fn offsets(&self) -> Result<KernelOffsets, BtfError> {
        let sk = |m: &str| self.offset("sock", m);
        Ok(KernelOffsets {
            valid: 1,
            task_exit_code: self.offset("task_struct", "exit_code")?,
            task_files: self.offset("task_struct", "files")?,
            task_tgid: self.offset("task_struct", "tgid")?,
            task_pid: self.offset("task_struct", "pid")?,
            task_sighand: self.offset("task_struct", "sighand")?,
            files_fdt: self.offset("files_struct", "fdt")?,
            fdt_max_fds: self.offset("fdtable", "max_fds")?,
            fdt_fd: self.offset("fdtable", "fd")?,
            file_private_data: self.offset("file", "private_data")?,
            file_inode: self.offset("file", "f_inode")?,
            inode_mode: self.offset("inode", "i_mode")?,
            socket_sk: self.offset("socket", "sk")?,
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
            sk_userlocks: sk("sk_userlocks")?,
            sk_err: sk("sk_err")?,
            sighand_action: self.offset("sighand_struct", "action")?,
            k_sigaction_size: self.size("k_sigaction")?,
            inet_sport: self.offset("inet_sock", "inet_sport")?,
            task_comm: self.offset("task_struct", "comm")?,
            task_cgroups: self.offset("task_struct", "cgroups")?,
            css_set_dfl_cgrp: self.offset("css_set", "dfl_cgrp")?,
            cgroup_kn: self.offset("cgroup", "kn")?,
            kernfs_node_id: self.offset("kernfs_node", "id")?,
            socket_type: self.offset("socket", "type")?,
            tcp_srtt_us: self.offset("tcp_sock", "srtt_us")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the running kernel's BTF (no privileges needed: the file is world-readable).
    #[test]
    fn finds_every_offset_on_the_running_kernel() {
        let btf = KernelBtf::load().expect("this kernel has BTF");
        let o = btf.offsets().unwrap();
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
}
