//! Reading a `struct sockaddr` from user memory.

use core::{ffi::c_void, mem::MaybeUninit};

use aya_ebpf::{EbpfContext, helpers::generated::bpf_probe_read_user};
use netwatch_common::{AF_INET, AF_INET6, SockAddr};

use crate::maps::{CONFIG, NO_PROGRAMS, global_field};

/// Keep the calling program on the task's kernel stack, where the user reads below
/// are cheaper. The verifier gives a tracing program whose stack exceeds 64 bytes a
/// per-CPU private stack, unless the program holds a tail call; and
/// `bpf_probe_read_user` into memory that is not on the task stack goes through
/// hardened usercopy's heap checks (about 40 ns of a failing bind, measured). The
/// tail call below is that reason: `CONFIG.never` is 0, so the verifier prunes it
/// and it never runs, but it is in the program when the stack is chosen.
#[inline(always)]
pub fn stay_on_kernel_stack<C: EbpfContext>(ctx: &C) {
    if global_field!(CONFIG, never) != 0 {
        // SAFETY: never runs (above); the map is empty, so it would return anyway.
        let _ = unsafe { NO_PROGRAMS.tail_call(ctx, 0) };
    }
}

/// Copy the first `N` bytes at user address `ptr` into 8-byte words, the rest zero.
#[inline(always)]
fn read_words<const N: u32>(ptr: u64) -> Option<[u64; 4]> {
    let mut raw = MaybeUninit::<[u64; 4]>::uninit();
    let words = raw.as_mut_ptr().cast::<u64>();
    // SAFETY: zero the four words first, with stores LLVM cannot turn into a call to
    // memset (a byte loop in BPF); then the helper checks the user address and writes
    // at most N <= 32 bytes.
    let rc = unsafe {
        for i in 0..4 {
            core::ptr::write_volatile(words.add(i), 0);
        }
        bpf_probe_read_user(words.cast::<c_void>(), N, ptr as *const c_void)
    };
    // SAFETY: every word was written above.
    (rc == 0).then(|| unsafe { raw.assume_init() })
}

/// Decode the sockaddr at user address `ptr` of length `len` (sockaddr_in or
/// sockaddr_in6; other families keep only the family). A failed read leaves
/// family 0, which the daemon shows as "?".
#[inline(always)]
pub fn read_user(ptr: u64, len: u64, out: &mut SockAddr) {
    // sockaddr_in6 is 28 bytes: family(2) port(2) flowinfo(4) addr(16) scope_id(4);
    // sockaddr_in 16: family(2) port(2) addr(4) zero(8).
    let raw = if len >= 28 {
        read_words::<28>(ptr)
    } else if len >= 16 {
        read_words::<16>(ptr)
    } else if len >= 2 {
        read_words::<2>(ptr)
    } else {
        None
    };
    let Some(w) = raw else { return };
    out.family = w[0] as u16;
    out.port = u16::from_be((w[0] >> 16) as u16);
    match out.family {
        AF_INET if len >= 16 => {
            out.addr[..4].copy_from_slice(&((w[0] >> 32) as u32).to_ne_bytes());
        }
        AF_INET6 if len >= 28 => {
            out.addr[..8].copy_from_slice(&w[1].to_ne_bytes());
            out.addr[8..].copy_from_slice(&w[2].to_ne_bytes());
        }
        _ => out.port = 0,
    }
}

/// The family of the sockaddr at user address `ptr` of length `len`, 0 when unreadable.
#[inline(always)]
pub fn user_family(ptr: u64, len: u64) -> u16 {
    if len < 2 {
        return 0;
    }
    read_words::<2>(ptr).map_or(0, |w| w[0] as u16)
}
