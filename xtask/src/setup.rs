//! `cargo xtask setup`: installs what building and testing netwatch needs. Every step
//! checks first and does nothing when its piece is already there.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process;

use anyhow::{Context as _, Result, bail};

use crate::cmd::{Cmd, find_command};

/// The toolchain the real crates are built with (netwatch-ebpf/rust-toolchain.toml pins
/// the same one). xtask itself builds with the machine's default toolchain.
pub const TOOLCHAIN: &str = "1.98.0";
/// Components of [`TOOLCHAIN`] we need: rust-src for `-Z build-std=core` of the eBPF
/// crate, clippy and rustfmt for `cargo xtask test`.
const COMPONENTS: &[&str] = &["rust-src", "clippy", "rustfmt"];
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// Debian packages the tests need, each with a command whose presence shows that the
/// package is installed.
pub const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip"), // `ip netns`
    ("python3", "python3"),
    ("procps", "ps"),
    ("prometheus", "prometheus"), // the metrics test scrapes netwatch with it
    ("prometheus", "promtool"),   // `promtool check metrics`
    ("systemd", "systemd-analyze"), // deploy/netwatch.service is verified with it
    // netwatch/tests/cli.rs formats the manual pages with `man --warnings` (groff).
    ("man-db", "man"),
    ("groff-base", "groff"),
];

/// Debian packages the kernel matrix (`cargo xtask test --kernel ...`) needs besides
/// [`DEBIAN_PACKAGES`] (the guests run the host's own root file system, so those are
/// needed too): qemu, `depmod` (virtme-ng builds a `modules.dep` for the kernel
/// packages, which ship none) and `file` (virtme-ng reads the image's version with it).
pub const VM_DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "qemu-system-x86_64"),
    ("kmod", "depmod"),
    ("file", "file"),
];
/// The Debian package that lets [`SYSTEM_PYTHON`] create the virtme-ng venv. It has no
/// command of its own: it is there when `ensurepip` imports.
pub const VENV_PACKAGE: &str = "python3-venv";
/// Debian's own python, the one [`VENV_PACKAGE`] is for (a pyenv shim may come first
/// on `PATH`).
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

const TRACEFS: &str = "/sys/kernel/tracing";

/// What the caller is about to do, i.e. which pieces must be present.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Build,
    Test,
    /// The tests in Debian's kernels under qemu: [`Need::Test`] and the VM packages.
    Vm,
}

/// `$NETWATCH_TOOLS_DIR`, else `$HOME/.cache/netwatch/tools`.
pub fn tools_dir() -> Result<PathBuf> {
    if let Some(dir) = env::var_os("NETWATCH_TOOLS_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither NETWATCH_TOOLS_DIR nor HOME is set")?;
    Ok(Path::new(&home).join(".cache/netwatch/tools"))
}

/// The `--root` bpf-linker is installed into, one per (bpf-linker, toolchain) pair since
/// the linker is tied to that toolchain's libLLVM.
fn bpf_linker_root() -> Result<PathBuf> {
    Ok(tools_dir()?.join(format!("bpf-linker-{BPF_LINKER_VERSION}-rust-{TOOLCHAIN}")))
}

/// The directory holding bpf-linker: `<tools>/bpf-linker-0.13.0-rust-1.98.0/bin`.
///
/// netwatch/build.rs mirrors this computation (same variables, same layout) to find the
/// linker; change both together.
pub fn bpf_linker_dir() -> Result<PathBuf> {
    Ok(bpf_linker_root()?.join("bin"))
}

pub fn bpf_linker_path() -> Result<PathBuf> {
    Ok(bpf_linker_dir()?.join("bpf-linker"))
}

enum ToolchainState {
    Ok,
    Missing,
    MissingComponents(Vec<&'static str>),
}

fn toolchain_state() -> ToolchainState {
    if !Cmd::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--version"])
        .probe()
    {
        return ToolchainState::Missing;
    }
    let Ok(installed) = Cmd::new("rustup")
        .args(["component", "list", "--toolchain", TOOLCHAIN, "--installed"])
        .read()
    else {
        return ToolchainState::Missing;
    };
    let missing = missing_components(&installed);
    if missing.is_empty() {
        ToolchainState::Ok
    } else {
        ToolchainState::MissingComponents(missing)
    }
}

/// Components absent from `rustup component list --installed` output, whose lines look
/// like `rust-src` or `clippy-x86_64-unknown-linux-gnu`.
fn missing_components(installed: &str) -> Vec<&'static str> {
    COMPONENTS
        .iter()
        .copied()
        .filter(|c| {
            !installed.lines().map(str::trim).any(|line| {
                line.strip_prefix(c)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
            })
        })
        .collect()
}

fn bpf_linker_ok() -> Result<bool> {
    let path = bpf_linker_path()?;
    Ok(path.is_file()
        && Cmd::new(&path)
            .arg("--version")
            .read()
            .is_ok_and(|v| v.contains(BPF_LINKER_VERSION)))
}

/// tracefs is mounted. The events directory is not readable by non-root users, so
/// /proc/self/mounts is consulted too.
fn tracefs_ok() -> bool {
    Path::new(TRACEFS).join("events").is_dir()
        || fs::read_to_string("/proc/self/mounts").is_ok_and(|mounts| {
            mounts.lines().any(|l| {
                let mut f = l.split_whitespace();
                f.next() == Some("tracefs") && f.next() == Some(TRACEFS)
            })
        })
}

/// Packages of `packages` (package, command) whose command is missing.
pub fn missing_packages(packages: &[(&'static str, &str)]) -> Vec<&'static str> {
    packages
        .iter()
        .filter(|(_, command)| find_command(command).is_none())
        .map(|(package, _)| *package)
        .collect()
}

/// The cheap check: runs the full setup only if something `need` requires is missing.
pub fn ensure(need: Need) -> Result<()> {
    let mut missing = Vec::new();
    if !matches!(toolchain_state(), ToolchainState::Ok) {
        missing.push(format!("toolchain {TOOLCHAIN}"));
    }
    if !bpf_linker_ok()? {
        missing.push(format!("bpf-linker {BPF_LINKER_VERSION}"));
    }
    if !tracefs_ok() {
        missing.push("tracefs".to_owned());
    }
    if matches!(need, Need::Test | Need::Vm) {
        missing.extend(
            missing_packages(DEBIAN_PACKAGES)
                .into_iter()
                .map(str::to_owned),
        );
    }
    if need == Need::Vm {
        missing.extend(missing_vm_packages().into_iter().map(str::to_owned));
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: missing {}; running setup", missing.join(", "));
    setup()
}

pub fn setup() -> Result<()> {
    setup_toolchain().context("setting up the Rust toolchain")?;
    setup_bpf_linker().context("setting up bpf-linker")?;
    setup_tracefs().context("mounting tracefs")?;
    setup_packages().context("installing Debian packages")?;
    setup_vm_packages().context("installing the Debian packages of the kernel matrix")?;
    println!("setup: done");
    Ok(())
}

fn setup_toolchain() -> Result<()> {
    match toolchain_state() {
        ToolchainState::Ok => println!("setup: toolchain {TOOLCHAIN} ok"),
        ToolchainState::Missing => {
            println!("setup: installing toolchain {TOOLCHAIN}");
            let mut c = Cmd::new("rustup").args([
                "toolchain",
                "install",
                TOOLCHAIN,
                "--profile",
                "minimal",
            ]);
            for component in COMPONENTS {
                c = c.args(["-c", component]);
            }
            c.run()?;
        }
        ToolchainState::MissingComponents(missing) => {
            println!(
                "setup: installing components {} of toolchain {TOOLCHAIN}",
                missing.join(" ")
            );
            Cmd::new("rustup")
                .args(["component", "add", "--toolchain", TOOLCHAIN])
                .args(&missing)
                .run()?;
        }
    }
    if !matches!(toolchain_state(), ToolchainState::Ok) {
        bail!("toolchain {TOOLCHAIN} or one of its components {COMPONENTS:?} is still missing");
    }
    Ok(())
}

fn setup_bpf_linker() -> Result<()> {
    let path = bpf_linker_path()?;
    if bpf_linker_ok()? {
        println!(
            "setup: bpf-linker {BPF_LINKER_VERSION} ok ({})",
            path.display()
        );
        return Ok(());
    }
    let root = bpf_linker_root()?;
    println!(
        "setup: installing bpf-linker {BPF_LINKER_VERSION} into {} (about a minute)",
        root.display()
    );

    // Link bpf-linker against the pinned toolchain's own libLLVM, so that it reads the
    // bitcode that toolchain emits (a bpf-linker built for another LLVM major cannot).
    let sysroot = Cmd::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--print", "sysroot"])
        .read()?;
    let llvm_dir = Path::new(sysroot.trim()).join("lib");
    let (llvm_lib, llvm_major) = find_libllvm(&llvm_dir)?;
    let nl = llvm_dir
        .to_str()
        .filter(|s| !s.contains(char::is_whitespace))
        .with_context(|| {
            format!(
                "toolchain library directory {} contains whitespace or non-UTF-8, \
                 which RUSTFLAGS cannot carry",
                llvm_dir.display()
            )
        })?;
    let rustflags = format!("-L native={nl} -l dylib={llvm_lib} -C link-arg=-Wl,-rpath,{nl}");

    // A private target directory keeps the workspace's target/ clean, and running from
    // the temporary directory keeps the workspace's .cargo/config.toml out of it.
    let tmp = env::temp_dir();
    let target_dir = tmp.join(format!("netwatch-bpf-linker-build-{}", process::id()));
    let result = Cmd::new("cargo")
        .arg(format!("+{TOOLCHAIN}"))
        .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
        .args(["--locked", "--force", "--no-default-features", "--features"])
        .arg(format!("llvm-{llvm_major},no-llvm-linking"))
        .arg("--root")
        .arg(&root)
        .env("RUSTFLAGS", &rustflags)
        .env("CARGO_TARGET_DIR", &target_dir)
        // Would override RUSTFLAGS above, or add to it.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .current_dir(&tmp)
        .run();
    if target_dir.exists() {
        fs::remove_dir_all(&target_dir)
            .with_context(|| format!("removing {}", target_dir.display()))?;
    }
    result?;

    let version = Cmd::new(&path)
        .arg("--version")
        .read()
        .context("the freshly installed bpf-linker does not run")?;
    if !version.contains(BPF_LINKER_VERSION) {
        bail!(
            "{} reports `{}`, expected {BPF_LINKER_VERSION}",
            path.display(),
            version.trim()
        );
    }
    println!(
        "setup: bpf-linker {BPF_LINKER_VERSION} installed ({})",
        path.display()
    );
    Ok(())
}

/// Finds `libLLVM-<major>-rust-<toolchain>-stable.so` in `dir`; returns the name to pass
/// to `-l dylib=` and the LLVM major version.
fn find_libllvm(dir: &Path) -> Result<(String, u32)> {
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut found: Vec<(String, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| parse_libllvm_name(&name))
        .collect();
    found.sort_by_key(|(_, major)| *major);
    match found.pop() {
        Some(lib) if found.is_empty() => Ok(lib),
        Some(_) => bail!(
            "several libLLVM-*-rust-{TOOLCHAIN}-stable.so in {}",
            dir.display()
        ),
        None => bail!(
            "no libLLVM-*-rust-{TOOLCHAIN}-stable.so in {}",
            dir.display()
        ),
    }
}

fn parse_libllvm_name(file_name: &str) -> Option<(String, u32)> {
    let stem = file_name.strip_prefix("lib")?.strip_suffix(".so")?;
    let major = stem
        .strip_prefix("LLVM-")?
        .strip_suffix(&format!("-rust-{TOOLCHAIN}-stable"))?;
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.to_owned(), major.parse().ok()?))
}

pub fn setup_tracefs() -> Result<()> {
    if tracefs_ok() {
        println!("setup: tracefs ok ({TRACEFS})");
        return Ok(());
    }
    println!("setup: mounting tracefs on {TRACEFS}");
    Cmd::new("mount")
        .args(["-t", "tracefs", "tracefs", TRACEFS])
        .elevated()
        .run()?;
    if !tracefs_ok() {
        bail!("{TRACEFS}/events still does not exist after mounting");
    }
    Ok(())
}

fn setup_packages() -> Result<()> {
    install_packages(DEBIAN_PACKAGES)
}

/// Packages of the kernel matrix that are missing: [`VM_DEBIAN_PACKAGES`] whose command
/// is missing, and [`VENV_PACKAGE`] when [`SYSTEM_PYTHON`] cannot import `ensurepip`.
fn missing_vm_packages() -> Vec<&'static str> {
    let mut missing = missing_packages(VM_DEBIAN_PACKAGES);
    if !Cmd::new(SYSTEM_PYTHON)
        .args(["-c", "import ensurepip, venv"])
        .probe()
    {
        missing.push(VENV_PACKAGE);
    }
    missing
}

fn setup_vm_packages() -> Result<()> {
    let missing = missing_vm_packages();
    if missing.is_empty() {
        let mut all: Vec<&str> = VM_DEBIAN_PACKAGES.iter().map(|(p, _)| *p).collect();
        all.push(VENV_PACKAGE);
        println!("setup: packages ok ({})", all.join(" "));
        return Ok(());
    }
    apt_install(&missing)?;
    let still = missing_vm_packages();
    if !still.is_empty() {
        bail!(
            "packages {} still missing after apt-get install",
            still.join(" ")
        );
    }
    Ok(())
}

/// apt-get installs those of `packages` (package, command) whose command is missing.
pub fn install_packages(packages: &[(&'static str, &str)]) -> Result<()> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        let all: Vec<&str> = packages.iter().map(|(p, _)| *p).collect();
        println!("setup: packages ok ({})", all.join(" "));
        return Ok(());
    }
    apt_install(&missing)?;
    let still = missing_packages(packages);
    if !still.is_empty() {
        bail!(
            "commands of packages {} still missing after apt-get install",
            still.join(" ")
        );
    }
    Ok(())
}

/// `apt-get update`, then `apt-get install` of `missing` (as root).
fn apt_install(missing: &[&str]) -> Result<()> {
    println!("setup: installing packages {}", missing.join(" "));
    if find_command("apt-get").is_none() {
        bail!(
            "apt-get not found; install these packages by hand: {}",
            missing.join(" ")
        );
    }
    Cmd::new("apt-get").arg("update").elevated().run()?;
    Cmd::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .elevated()
        .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libllvm_name() {
        assert_eq!(
            parse_libllvm_name("libLLVM-22-rust-1.98.0-stable.so"),
            Some(("LLVM-22-rust-1.98.0-stable".to_owned(), 22))
        );
        assert_eq!(
            parse_libllvm_name("libLLVM.so.22.1-rust-1.98.0-stable"),
            None
        );
        assert_eq!(parse_libllvm_name("libLLVM-22-rust-1.97.0-stable.so"), None);
        assert_eq!(parse_libllvm_name("libLLVM--rust-1.98.0-stable.so"), None);
    }

    #[test]
    fn components() {
        let installed = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\n\
                         rust-src\nrust-std-x86_64-unknown-linux-gnu\n";
        assert_eq!(missing_components(installed), ["rustfmt"]);
        assert_eq!(missing_components(""), COMPONENTS);
    }
}
