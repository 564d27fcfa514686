//! Unit tests of the BTF reader: on the running kernel's BTF, and on hand-built blobs.

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
