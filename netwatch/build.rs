//! Builds the kernel programs (netwatch-ebpf) with aya-build and leaves the object in
//! OUT_DIR, where src/loader.rs embeds it: the built binary needs nothing at run time.

use std::{env, path::PathBuf};

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

/// Must match xtask's `TOOLCHAIN` and netwatch-ebpf/rust-toolchain.toml.
const TOOLCHAIN: &str = "1.98.0";
/// Must match xtask's `BPF_LINKER_VERSION`.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Where `cargo xtask setup` installs bpf-linker (mirrors xtask's `bpf_linker_dir`).
fn bpf_linker_dir() -> Option<PathBuf> {
    let tools = match env::var_os("NETWATCH_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env::var_os("HOME")?).join(".cache/netwatch/tools"),
    };
    Some(tools.join(format!(
        "bpf-linker-{BPF_LINKER_VERSION}-rust-{TOOLCHAIN}/bin"
    )))
}

fn main() -> anyhow::Result<()> {
    println!("cargo::rerun-if-env-changed=NETWATCH_TOOLS_DIR");
    let dir = bpf_linker_dir().ok_or_else(|| anyhow!("HOME is not set"))?;
    if dir.join("bpf-linker").is_file() {
        let path = env::var_os("PATH").unwrap_or_default();
        let joined = env::join_paths(std::iter::once(dir).chain(env::split_paths(&path)))
            .context("joining PATH")?;
        // SAFETY: build scripts are single-threaded; the child cargo inherits PATH.
        unsafe { env::set_var("PATH", joined) };
    } else if which_bpf_linker().is_none() {
        return Err(anyhow!(
            "bpf-linker not found in {} nor on PATH: run `cargo xtask setup`",
            dir.display()
        ));
    }
    // The pinned toolchain is a stable release: allow -Z build-std for the child cargo
    // that builds netwatch-ebpf, and only there.
    // SAFETY: as above.
    unsafe { env::set_var("RUSTC_BOOTSTRAP", "1") };

    let ebpf = Package {
        name: "netwatch-ebpf",
        root_dir: "../netwatch-ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::Custom(TOOLCHAIN))
}

fn which_bpf_linker() -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}
