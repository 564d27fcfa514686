//! Reading a `struct sockaddr` from user memory.

use aya_ebpf::helpers::bpf_probe_read_user_buf;
use netwatch_common::{AF_INET, AF_INET6, SockAddr};

/// Decode the sockaddr at user address `ptr` of length `len` (sockaddr_in or
/// sockaddr_in6; other families keep only the family). A failed read leaves
/// family 0, which the daemon shows as "?".
#[inline(always)]
pub fn read_user(ptr: u64, len: u64, out: &mut SockAddr) {
    // sockaddr_in6 is 28 bytes: family(2) port(2) flowinfo(4) addr(16) scope_id(4).
    let mut raw = [0u8; 28];
    // SAFETY: the helper checks the user address; sizes are constants for the verifier.
    let ok = unsafe {
        if len >= 28 {
            bpf_probe_read_user_buf(ptr as *const u8, &mut raw[..28]).is_ok()
        } else if len >= 16 {
            bpf_probe_read_user_buf(ptr as *const u8, &mut raw[..16]).is_ok()
        } else if len >= 2 {
            bpf_probe_read_user_buf(ptr as *const u8, &mut raw[..2]).is_ok()
        } else {
            false
        }
    };
    if !ok {
        return;
    }
    out.family = u16::from_ne_bytes([raw[0], raw[1]]);
    out.port = u16::from_be_bytes([raw[2], raw[3]]);
    match out.family {
        AF_INET if len >= 16 => out.addr[..4].copy_from_slice(&raw[4..8]),
        AF_INET6 if len >= 28 => out.addr.copy_from_slice(&raw[8..24]),
        _ => out.port = 0,
    }
}

/// The family of the sockaddr at user address `ptr` of length `len`, 0 when unreadable.
#[inline(always)]
pub fn user_family(ptr: u64, len: u64) -> u16 {
    let mut raw = [0u8; 2];
    // SAFETY: the helper checks the user address.
    if len < 2 || unsafe { bpf_probe_read_user_buf(ptr as *const u8, &mut raw) }.is_err() {
        return 0;
    }
    u16::from_ne_bytes(raw)
}
