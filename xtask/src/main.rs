//! `cargo xtask`: bootstrap, build, run and test netwatch.
//!
//! xtask builds with the machine's default toolchain (there is deliberately no
//! rust-toolchain.toml at the workspace root, so that `cargo xtask setup` works before
//! the pinned toolchain is installed); everything it builds uses `cargo +1.98.0`.

mod bench;
mod cmd;
mod install;
mod setup;
mod storm;
mod vm;

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::cmd::{Cmd, is_root};
use crate::setup::{Need, TOOLCHAIN};
use crate::vm::{Kernel, Selection};

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  setup              install toolchain 1.98.0 (with rust-src, clippy, rustfmt),
                     bpf-linker 0.13.0, mount tracefs, install the Debian packages the
                     tests need (qemu and the kernel VMs' too); does nothing for what
                     is already there
  build              build target/release/netwatch (runs setup if something is missing)
  run [--] ARGS...   build, then run netwatch as root with ARGS (sudo when not root)
  test [--kernel K] [--kernel-tests subset|full] [--] ARGS...
                     the whole suite: fmt check, clippy, unprivileged tests, the
                     privileged tests as root, then the privileged tests inside Debian's
                     6.1 and 6.12 kernels booted in qemu; ARGS go to the test binaries
                     (e.g. a test name filter), in the VMs too
                     --kernel host       all of that but the VMs
                     --kernel 6.1|6.12|all
                                         only the privileged tests, only in those
                                         VMs (all: both; K may be a comma list)
                     --kernel-tests      in the VMs, `subset` (default: VM_TESTS in
                                         xtask/src/vm.rs, ~5 min per kernel; filters
                                         in ARGS add to it) or `full` (~17 min)
                     One VM at a time, each bounded by $NETWATCH_VM_TIMEOUT seconds
                     (default 1200, 3000 for full); kernels, virtme-ng and busybox are
                     cached in the tools directory's vm/, console logs in target/vm/
  install [--prefix DIR]
                     build, then install bin/netwatch, the man page netwatch(8) and
                     bash/zsh/fish completions under DIR (default /usr/local; $DESTDIR
                     is prepended)
  bench [--quick]    as root: overhead on nginx+wrk (vs bpftrace and strace), event
                     capacity, start-up and footprint; results in target/bench/
                     (`cargo xtask bench --help` for the options)
";

/// Packages other than netwatch whose tests run unprivileged (all their test targets).
const UNPRIVILEGED_PACKAGES: &[&str] = &["netwatch-common", "xtask"];
/// netwatch's integration test that needs root; every other test target runs without.
const PRIVILEGED_TEST: &str = "privileged";

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let root = workspace_root();
    env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;

    let mut args = env::args_os().skip(1);
    let Some(command) = args.next() else {
        eprint!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let raw: Vec<OsString> = args.collect();
    let rest = strip_separator(raw.clone());
    match command.to_str() {
        Some("setup") if rest.is_empty() => setup::setup()?,
        Some("build") if rest.is_empty() => {
            build(&root)?;
        }
        Some("run") => return Err(run(&root, &rest)),
        Some("install") => {
            let prefix = install::prefix(&to_strings(&rest)?)?;
            let bin = build(&root)?;
            for path in install::install(&bin, &prefix)? {
                println!("xtask: installed {}", path.display());
            }
        }
        Some("test") => test(&root, TestOptions::parse(raw)?)?,
        Some("bench") => return bench::main(&root, &to_strings(&rest)?),
        // Hidden: the failing-syscall generator the bench runs.
        Some("storm") => storm::main(&to_strings(&rest)?)?,
        Some("help" | "-h" | "--help") => print!("{USAGE}"),
        _ => {
            eprintln!(
                "xtask: unknown command or arguments: {}",
                env::args().skip(1).collect::<Vec<_>>().join(" ")
            );
            eprint!("{USAGE}");
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The workspace root, the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn to_strings(args: &[OsString]) -> Result<Vec<String>> {
    args.iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .with_context(|| format!("argument {a:?} is not UTF-8"))
        })
        .collect()
}

/// Accepts both `run -- ARGS` and `run ARGS`: drops one leading `--`.
fn strip_separator(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    args
}

/// `cargo +1.98.0`, through the rustup proxy.
fn cargo() -> Cmd {
    Cmd::new("cargo").arg(format!("+{TOOLCHAIN}"))
}

fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn build(root: &Path) -> Result<PathBuf> {
    setup::ensure(Need::Build)?;
    cargo()
        .args(["build", "--release", "--package", "netwatch"])
        .run()?;
    let bin = target_dir(root).join("release/netwatch");
    println!("xtask: built {}", bin.display());
    Ok(bin)
}

/// Builds, then replaces xtask with netwatch (via sudo when not root), so netwatch's
/// exit status, a death by a signal included, is what the caller sees, and Ctrl-C
/// reaches netwatch alone rather than killing xtask first. Returns only on failure.
fn run(root: &Path, args: &[OsString]) -> anyhow::Error {
    match build(root) {
        Ok(bin) => Cmd::new(bin).args(args).elevated().exec(),
        Err(e) => e,
    }
}

/// `cargo xtask test`'s arguments.
#[derive(Debug, PartialEq)]
struct TestOptions {
    /// Run the host's suite: fmt, clippy, unprivileged and privileged tests.
    host: bool,
    /// Then the privileged tests in these kernels' VMs.
    kernels: Vec<Kernel>,
    selection: Selection,
    /// For the test binaries.
    test_args: Vec<OsString>,
}

impl TestOptions {
    /// `[--kernel K]... [--kernel-tests subset|full] [--] ARGS...`; the options end at
    /// `--` or at the first other argument (so `cargo xtask test FILTER` still works).
    /// Without --kernel: the host and every VM kernel.
    fn parse(args: Vec<OsString>) -> Result<TestOptions> {
        let mut kernel_values = Vec::new();
        let mut selection = None;
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.peek() {
            let Some(a) = arg.to_str() else { break };
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (a, None),
            };
            if a == "--" {
                args.next();
                break;
            }
            if flag != "--kernel" && flag != "--kernel-tests" {
                break;
            }
            let flag = flag.to_owned();
            args.next();
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .with_context(|| format!("{flag} needs a value"))?,
            };
            if flag == "--kernel" {
                kernel_values.push(value);
            } else {
                selection = Some(Selection::parse(&value)?);
            }
        }
        let (host, kernels) = if kernel_values.is_empty() {
            (true, Kernel::ALL.to_vec())
        } else {
            let mut host = false;
            let mut kernels: Vec<Kernel> = Vec::new();
            for v in &kernel_values {
                let (h, ks) = vm::parse_kernels(v)?;
                host |= h;
                kernels.extend(
                    ks.into_iter()
                        .filter(|k| !kernels.contains(k))
                        .collect::<Vec<_>>(),
                );
            }
            (host, kernels)
        };
        if selection.is_some() && kernels.is_empty() {
            anyhow::bail!("--kernel-tests is for the VM kernels, and --kernel chose none");
        }
        Ok(TestOptions {
            host,
            kernels,
            selection: selection.unwrap_or_default(),
            test_args: args.collect(),
        })
    }
}

/// The host's suite (when chosen), then the VM kernels'; a summary table at the end
/// when VMs ran. Fails naming each kernel whose tests failed or did not run.
fn test(root: &Path, opts: TestOptions) -> Result<()> {
    let host = if opts.host {
        let started = Instant::now();
        host_tests(&opts.test_args)?;
        Some(started.elapsed())
    } else {
        None
    };
    if opts.kernels.is_empty() {
        return Ok(());
    }
    setup::ensure(Need::Vm)?;
    let runs = vm::run(&vm::Plan {
        kernels: &opts.kernels,
        selection: opts.selection,
        test_args: &opts.test_args,
        package_dir: root.join("netwatch"),
        out_dir: target_dir(root).join("vm"),
    })?;
    let host_release = host_release();
    let host_row: Option<(&str, Duration)> = host.map(|d| (host_release.as_str(), d));
    println!("\nxtask: summary\n{}", vm::summary_table(host_row, &runs));
    vm::verdict(&runs)
}

/// `uname -r` of this machine, from /proc.
fn host_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

/// What `cargo xtask test` did before the kernel matrix: fmt, clippy, the unprivileged
/// tests, then the privileged tests on the host's kernel.
fn host_tests(test_args: &[OsString]) -> Result<()> {
    setup::ensure(Need::Test)?;

    cargo().args(["fmt", "--all", "--", "--check"]).run()?;
    // Default members only: netwatch-ebpf cannot be built for the host.
    cargo()
        .args(["clippy", "--all-targets", "--", "-D", "warnings"])
        .run()?;

    // Every test target of the default members except netwatch's privileged one.
    let mut c = cargo().arg("test");
    for package in UNPRIVILEGED_PACKAGES {
        c = c.args(["--package", package]);
    }
    with_test_args(c, test_args).run()?;

    let netwatch = Path::new("netwatch");
    let has_lib = netwatch.join("src/lib.rs").is_file();
    let c = cargo()
        .args(["test", "--package", "netwatch"])
        .args(netwatch_unprivileged_targets(
            has_lib,
            &test_target_names(netwatch)?,
        ));
    with_test_args(c, test_args).run()?;
    if has_lib {
        let c = cargo().args(["test", "--package", "netwatch", "--doc"]);
        with_test_args(c, test_args).run()?;
    }

    // The privileged end-to-end tests, one at a time, as root. When not root, cargo still
    // builds as the user (so target/ gets no root-owned files) and runs the test binary
    // through `sudo -E`.
    let mut c = cargo().args(["test", "--package", "netwatch", "--test", PRIVILEGED_TEST]);
    if !is_root() {
        c = c.args(["--config", "target.'cfg(all())'.runner = ['sudo', '-E']"]);
    }
    c.args(["--", "--test-threads=1"]).args(test_args).run()
}

fn with_test_args(c: Cmd, test_args: &[OsString]) -> Cmd {
    if test_args.is_empty() {
        c
    } else {
        c.arg("--").args(test_args)
    }
}

/// Names of the integration test targets cargo discovers in `<package>/tests`:
/// `tests/<name>.rs` and `tests/<name>/main.rs`.
fn test_target_names(package: &Path) -> Result<Vec<String>> {
    let dir = package.join("tests");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let name = if path.is_dir() && path.join("main.rs").is_file() {
            path.file_name()
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            path.file_stem()
        } else {
            None
        };
        if let Some(name) = name.and_then(|n| n.to_str()) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// cargo target-selection flags for every netwatch test target but the privileged one.
fn netwatch_unprivileged_targets(has_lib: bool, tests: &[String]) -> Vec<String> {
    let mut flags = Vec::new();
    if has_lib {
        flags.push("--lib".to_owned());
    }
    flags.push("--bins".to_owned());
    for name in tests.iter().filter(|n| *n != PRIVILEGED_TEST) {
        flags.push("--test".to_owned());
        flags.push(name.clone());
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separator_is_optional() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            strip_separator(v(&["--", "-j", "-p", "5"])),
            v(&["-j", "-p", "5"])
        );
        assert_eq!(strip_separator(v(&["-j"])), v(&["-j"]));
        assert_eq!(strip_separator(v(&["--", "--"])), v(&["--"]));
        assert_eq!(strip_separator(v(&[])), v(&[]));
    }

    #[test]
    fn test_options() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let parse = |a: &[&str]| TestOptions::parse(v(a));
        let opts = |host, kernels: &[Kernel], selection, args: &[&str]| TestOptions {
            host,
            kernels: kernels.to_vec(),
            selection,
            test_args: v(args),
        };
        use Kernel::{Debian6_1 as K61, Debian6_12 as K612};
        use Selection::{Full, Subset};

        assert_eq!(parse(&[]).unwrap(), opts(true, &[K61, K612], Subset, &[]));
        assert_eq!(
            parse(&["--", "report_1"]).unwrap(),
            opts(true, &[K61, K612], Subset, &["report_1"])
        );
        // Options end at the first other argument, and after `--`.
        assert_eq!(
            parse(&["report_1", "--kernel", "6.1"]).unwrap(),
            opts(true, &[K61, K612], Subset, &["report_1", "--kernel", "6.1"])
        );
        assert_eq!(
            parse(&["--kernel", "host", "--", "--kernel", "x"]).unwrap(),
            opts(true, &[], Subset, &["--kernel", "x"])
        );
        assert_eq!(
            parse(&["--kernel", "6.12", "--", "report_1", "--nocapture"]).unwrap(),
            opts(false, &[K612], Subset, &["report_1", "--nocapture"])
        );
        assert_eq!(
            parse(&["--kernel=all", "--kernel-tests=full"]).unwrap(),
            opts(false, &[K61, K612], Full, &[])
        );
        assert_eq!(
            parse(&[
                "--kernel", "6.12", "--kernel", "6.1,6.12", "--kernel", "host"
            ])
            .unwrap(),
            opts(true, &[K612, K61], Subset, &[])
        );
        assert_eq!(
            parse(&["--kernel-tests", "subset", "--nocapture"]).unwrap(),
            opts(true, &[K61, K612], Subset, &["--nocapture"])
        );
        for bad in [
            &["--kernel"][..],
            &["--kernel", "5.10"],
            &["--kernel="],
            &["--kernel-tests", "some"],
            &["--kernel", "host", "--kernel-tests", "full"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn privileged_test_is_left_out() {
        let tests = ["cli".to_owned(), "privileged".to_owned()];
        assert_eq!(
            netwatch_unprivileged_targets(true, &tests),
            ["--lib", "--bins", "--test", "cli"]
        );
        assert_eq!(netwatch_unprivileged_targets(false, &[]), ["--bins"]);
    }
}
