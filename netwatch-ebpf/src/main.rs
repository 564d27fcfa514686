//! netwatch's kernel programs. One module per event source, named as in
//! netwatch-common and in the daemon's decoder; `emit`, `kernel`, `maps`, `regs`
//! and `sockaddr` are what they share.
#![no_std]
#![no_main]

mod bind;
mod connect;
mod emit;
mod kernel;
mod listen;
mod maps;
mod process;
mod regs;
mod reset;
mod signal;
mod sockaddr;
mod sockio;
mod syscalls;
mod tp;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this; it exists to satisfy no_std.
    loop {}
}

// bpf_probe_read_* and bpf_get_current_task_btf are GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
