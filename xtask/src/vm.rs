//! `cargo xtask test --kernel 6.1|6.12|all`: netwatch's privileged tests inside Debian's
//! own kernels, booted in qemu, against the binaries built on the host.
//!
//! The kernels are Debian 12's `linux-image-6.1.0-N-amd64-unsigned` and
//! `linux-image-6.12.N+deb12-amd64-unsigned` (the newest of each that apt knows),
//! fetched with `apt-get download` and unpacked with `dpkg -x` under
//! `<tools>/vm/kernels/<release>/`: nothing goes into /boot or /lib/modules.
//!
//! virtme-ng (in a venv under `<tools>/vm/venv`) boots them with the host's root file
//! system, read-only over 9p with tmpfs overlays, so the test binary and netwatch are
//! visible in the guest at the paths they have on the host (the test binary finds
//! netwatch through `CARGO_BIN_EXE_netwatch`, an absolute path under target/). What is
//! known about these machines and shapes this module:
//!
//! - KVM does not work here (nested, `kvm_pvm`): qemu runs with TCG, which reaches the
//!   guest's userspace in about 8 s, and then runs everything several times slower
//!   than the host. A qemu that went wrong may never exit: every run is bounded by a
//!   timeout, after which its whole process group is killed.
//! - virtme-ng needs a static busybox. Debian's `busybox-static` conflicts with
//!   `busybox`, which tests may install, so it is unpacked privately, not installed.
//! - Without udev, virtme-ng runs the command on the serial console: its stdout and
//!   stderr arrive merged with the kernel's messages (with CRs and NULs), and vng's own
//!   exit status means nothing. The guest script therefore frames the command's output
//!   with markers that carry the kernel release, the guest's uptime and the command's
//!   exit status, and the console log is parsed ([`parse_console`]).
//! - The guest's /tmp may be a tmpfs of its own: the guest script lives under target/.
//! - One VM at a time per tools directory (a lock file): the machines have 2 cores.

use std::cmp::Ordering;
use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::bench::procs::{check_interrupted, install_interrupt_handler};
use crate::cmd::{Cmd, quote};
use crate::setup::{SYSTEM_PYTHON, tools_dir};

/// The privileged tests run in a VM by default (`--kernel-tests subset`): substring
/// filters, one libtest run with all of them (libtest runs a test matching any one).
/// The whole suite takes 15 to 17 minutes per kernel under TCG on these machines
/// (`--kernel-tests full`); this list covers the five field reports, each source of
/// events, the lost exits and the kernel filters in about 3 minutes (a VM run of
/// 180 s, boot included).
pub const VM_TESTS: &[&str] = &[
    "on_this_kernel_every_source_attaches_without_a_warning",
    "report_1_daphne_exit_zero_after_bind_failure_is_flagged_and_check_fails",
    "report_2_eaddrinuse_time_wait_versus_live_listener",
    "report_2_eaddrnotavail_not_local_exhaustion_and_collision",
    "report_3_drogon_killed_by_sigpipe_mid_sendfile",
    "report_4_air_hot_reload_races_the_old_instance",
    "report_5_websockets_reset_during_close",
    "json_reports_each_failed_bind_with_pid_errno_address_and_port",
    "pid_filter_follows_children_forked_after_start",
    "connect_failures_exhaustion_in_a_netns_and_refused",
    "peer_reset_gives_econnreset_then_epipe_and_the_reset_goes_to_the_socket_owner",
    "sendfile_to_a_client_that_left_mid_transfer_is_epipe",
    "sigpipe_ignored_keeps_running_and_sigpipe_default_kills",
    "exit_status_is_reported_once_per_thread_group",
    "lost_exit_records_are_kept_by_the_kernel_and_check_still_fails",
    "a_non_blocking_connect_that_fails_later_is_caught",
    "events_name_their_cgroup_and_the_cgroup_filter_keeps_the_rest_out",
    "tracefs_not_mounted_is_mounted_by_netwatch",
    "port_filter_reports_that_port_only",
    "errno_filter_reports_and_counts_those_failures_only",
    "name_filter_matches_the_exact_comm",
    "uid_filter_reports_that_user_only",
    "a_server_out_of_descriptors_is_explained",
];

/// virtme-ng's version, pinned: it is what these runs were verified with.
const VIRTME_NG_VERSION: &str = "1.42";
/// Guest size. The machines have 2 cores; TCG uses one host thread per vCPU.
const GUEST_CPUS: &str = "2";
const GUEST_MEMORY: &str = "2G";
/// Overrides the per-run timeout (boot and tests), in seconds.
const TIMEOUT_VAR: &str = "NETWATCH_VM_TIMEOUT";
/// Host variables passed on to the tests in the guest when they are set.
const FORWARDED_VARS: &[&str] = &["RUST_BACKTRACE", "RUST_LOG"];
/// Frame the guest command's output on the console; see [`guest_script`].
const BEGIN_MARKER: &str = "@@@NETWATCH-VM-BEGIN ";
const END_MARKER: &str = "@@@NETWATCH-VM-END ";
const MARKER_CLOSE: &str = "@@@";
/// Console lines shown when a VM never got to the tests.
const CONSOLE_TAIL_LINES: usize = 25;

/// A Debian kernel the privileged tests run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Debian 12's own: `linux-image-6.1.0-N-amd64-unsigned`.
    Debian6_1,
    /// Debian 12's 6.12 (the backport): `linux-image-6.12.N+deb12-amd64-unsigned`.
    Debian6_12,
}

impl Kernel {
    pub const ALL: &[Kernel] = &[Kernel::Debian6_1, Kernel::Debian6_12];

    /// The name `--kernel` takes and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Debian6_1 => "6.1",
            Kernel::Debian6_12 => "6.12",
        }
    }

    /// The `apt-cache search --names-only` pattern of its packages.
    fn package_pattern(self) -> &'static str {
        match self {
            Kernel::Debian6_1 => r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$",
            Kernel::Debian6_12 => r"^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$",
        }
    }

    /// The kernel release a package of this kernel is for, e.g. `6.1.0-57-amd64` for
    /// `linux-image-6.1.0-57-amd64-unsigned`; None for other packages.
    fn release_of_package(self, package: &str) -> Option<&str> {
        let release = package
            .strip_prefix("linux-image-")?
            .strip_suffix("-unsigned")?;
        let (prefix, suffix) = match self {
            Kernel::Debian6_1 => ("6.1.0-", "-amd64"),
            Kernel::Debian6_12 => ("6.12.", "+deb12-amd64"),
        };
        let n = release.strip_prefix(prefix)?.strip_suffix(suffix)?;
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(release)
    }
}

/// The kernels of `--kernel VALUE`: `host`, `6.1`, `6.12`, `all` (6.1 and 6.12), or a
/// comma-separated list of those. Returns whether the host is one of them, and the
/// VM kernels in order, each once.
pub fn parse_kernels(value: &str) -> Result<(bool, Vec<Kernel>)> {
    let mut host = false;
    let mut kernels = Vec::new();
    for word in value.split(',') {
        let these: &[Kernel] = match word {
            "host" => {
                host = true;
                &[]
            }
            "all" => Kernel::ALL,
            _ => match Kernel::ALL.iter().find(|k| k.name() == word) {
                Some(k) => std::slice::from_ref(k),
                None => bail!("unknown kernel `{word}` (host, 6.1, 6.12 or all)"),
            },
        };
        for k in these {
            if !kernels.contains(k) {
                kernels.push(*k);
            }
        }
    }
    Ok((host, kernels))
}

/// Which of the privileged tests run in each VM (`--kernel-tests`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Those matching [`VM_TESTS`].
    #[default]
    Subset,
    /// All of them.
    Full,
}

impl Selection {
    pub fn parse(value: &str) -> Result<Selection> {
        match value {
            "subset" => Ok(Selection::Subset),
            "full" => Ok(Selection::Full),
            _ => bail!("unknown --kernel-tests `{value}` (subset or full)"),
        }
    }

    /// The default bound of one VM run: about three times what it takes here.
    fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Selection::Subset => 20 * 60,
            Selection::Full => 50 * 60,
        })
    }
}

/// What ran in the VMs and how.
pub struct Plan<'a> {
    pub kernels: &'a [Kernel],
    pub selection: Selection,
    /// Passed to the test binary after the selection's filters.
    pub test_args: &'a [OsString],
    /// Where the tests run from in the guest (cargo runs them from the package's
    /// directory).
    pub package_dir: PathBuf,
    /// Where the guest scripts and console logs are written (`target/vm`).
    pub out_dir: PathBuf,
}

/// How one kernel's run went.
pub struct KernelRun {
    pub kernel: Kernel,
    /// The Debian release booted, once resolved.
    pub release: Option<String>,
    pub outcome: Outcome,
    /// From before the VM started (the download of the kernel excluded) to its end.
    pub wall: Duration,
    /// The console log, when the VM ran.
    pub log: Option<PathBuf>,
}

pub enum Outcome {
    /// The tests never started: preparing or booting the VM failed (why, and the last
    /// console lines if it booted at all).
    NotStarted(String),
    /// The tests started; they may not have finished.
    Ran {
        console: Console,
        tests: TestResults,
        /// From starting vng to the begin marker on the console.
        boot_wall: Option<Duration>,
        /// The VM was killed at the timeout.
        timed_out: bool,
    },
}

impl KernelRun {
    /// Whether every test that ran passed and the command exited 0.
    pub fn ok(&self) -> bool {
        match &self.outcome {
            Outcome::NotStarted(_) => false,
            Outcome::Ran { console, .. } => console.end.as_ref().is_some_and(|e| e.rc == 0),
        }
    }

    /// One line saying what went wrong, None if nothing did.
    pub fn problem(&self) -> Option<String> {
        let name = match &self.release {
            Some(release) => format!("{} ({release})", self.kernel.name()),
            None => self.kernel.name().to_owned(),
        };
        match &self.outcome {
            Outcome::NotStarted(why) => Some(format!("kernel {name}: the VM never started: {why}")),
            Outcome::Ran {
                console,
                tests,
                timed_out,
                ..
            } => match &console.end {
                None if *timed_out => Some(format!(
                    "kernel {name}: the tests did not finish before the timeout \
                     (${TIMEOUT_VAR} raises it)"
                )),
                None => Some(format!(
                    "kernel {name}: the VM ended before the tests did (see {})",
                    self.log_name()
                )),
                Some(end) if end.rc == 0 => None,
                Some(_) if tests.failed > 0 => {
                    let names: Vec<&str> = tests.failures.iter().map(|f| f.name.as_str()).collect();
                    Some(format!(
                        "kernel {name}: {} failed: {}",
                        plural(tests.failed, "test"),
                        names.join(", ")
                    ))
                }
                Some(end) => Some(format!(
                    "kernel {name}: the test binary exited {} with no test failed (see {})",
                    end.rc,
                    self.log_name()
                )),
            },
        }
    }

    fn log_name(&self) -> String {
        self.log
            .as_deref()
            .map_or_else(|| "the console log".to_owned(), |p| p.display().to_string())
    }
}

/// Runs the plan: builds the test binary, prepares virtme-ng, then boots each kernel in
/// turn and runs the tests in it. A kernel that cannot be fetched or booted is
/// reported as such and the next one still runs; errors are for what stops them all.
pub fn run(plan: &Plan) -> Result<Vec<KernelRun>> {
    install_interrupt_handler();
    let exe = build_test_binary()?;
    let vm = VmTools::prepare().context("preparing virtme-ng")?;
    let timeout = run_timeout(plan.selection)?;
    let workdir = &plan.package_dir;
    let command = guest_command(&exe, plan.selection, plan.test_args);
    fs::create_dir_all(&plan.out_dir)
        .with_context(|| format!("creating {}", plan.out_dir.display()))?;

    let mut runs = Vec::new();
    for &kernel in plan.kernels {
        check_interrupted()?;
        let run = run_kernel(&vm, kernel, workdir, &command, &plan.out_dir, timeout)?;
        print_report(&run);
        runs.push(run);
    }
    Ok(runs)
}

/// `NETWATCH_VM_TIMEOUT` seconds, else the selection's default.
fn run_timeout(selection: Selection) -> Result<Duration> {
    match env::var(TIMEOUT_VAR) {
        Ok(s) if !s.is_empty() => {
            let secs: u64 = s
                .trim()
                .parse()
                .with_context(|| format!("{TIMEOUT_VAR}={s} is not a number of seconds"))?;
            Ok(Duration::from_secs(secs))
        }
        _ => Ok(selection.default_timeout()),
    }
}

/// Builds netwatch's privileged test binary (and netwatch) the way `cargo test` does,
/// without running it, and returns its path.
fn build_test_binary() -> Result<PathBuf> {
    let json = crate::cargo()
        .args(["test", "--package", "netwatch", "--test"])
        .arg(crate::PRIVILEGED_TEST)
        .args(["--no-run", "--message-format=json"])
        .run_stdout()?;
    test_executable(&json, crate::PRIVILEGED_TEST).with_context(|| {
        format!(
            "cargo reported no executable for test target `{}`",
            crate::PRIVILEGED_TEST
        )
    })
}

/// The `executable` of the `compiler-artifact` message of test target `target` in
/// `cargo --message-format=json` output (one JSON object per line).
pub fn test_executable(messages: &str, target: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["target"]["name"] == target)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "test"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// The shell command run in the guest: the test binary, one test at a time, without
/// colours (the console is a terminal), then the selection's filters and the user's
/// arguments.
fn guest_command(exe: &Path, selection: Selection, test_args: &[OsString]) -> String {
    let mut words = vec![
        exe.as_os_str().to_owned(),
        OsString::from("--test-threads=1"),
    ];
    let user_sets_color = test_args
        .iter()
        .any(|a| a == "--color" || a.to_string_lossy().starts_with("--color="));
    if !user_sets_color {
        words.extend(["--color", "never"].map(OsString::from));
    }
    if selection == Selection::Subset {
        words.extend(VM_TESTS.iter().map(OsString::from));
    }
    words.extend(test_args.iter().cloned());
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The script virtme-ng runs in the guest (as root): quiet printk, a plain PATH (no
/// pyenv shim: the tests' `python3` must be Debian's), the begin marker with the
/// kernel release and the guest uptime, `command` from `workdir` (cargo runs tests
/// from the package directory), the end marker with its exit status.
fn guest_script(workdir: &Path, command: &str, forwarded: &[(String, String)]) -> String {
    let mut exports = String::new();
    for (k, v) in forwarded {
        let _ = writeln!(exports, "export {k}={}", quote(v.as_ref()));
    }
    format!(
        r#"#!/bin/bash
# Written by `cargo xtask test --kernel`; virtme-ng runs it in the guest.
dmesg -n 1 2>/dev/null
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
{exports}up() {{ cut -d' ' -f1 /proc/uptime; }}
echo "{BEGIN_MARKER}release=$(uname -r) uptime=$(up){MARKER_CLOSE}"
cd {workdir} && {command} </dev/null 2>&1
rc=$?
echo
echo "{END_MARKER}rc=$rc uptime=$(up){MARKER_CLOSE}"
"#,
        workdir = quote(workdir.as_os_str()),
    )
}

/// What virtme-ng needs, cached under `<tools>/vm`.
struct VmTools {
    dir: PathBuf,
    vng: PathBuf,
    busybox: PathBuf,
}

impl VmTools {
    /// Installs what is missing: the virtme-ng venv, the private static busybox.
    fn prepare() -> Result<VmTools> {
        let dir = tools_dir()?.join("vm");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let vng = ensure_virtme_ng(&dir)?;
        let busybox = ensure_busybox(&dir)?;
        Ok(VmTools { dir, vng, busybox })
    }

    /// The kernel image of Debian kernel release `release`, downloaded and unpacked if
    /// it is not cached yet.
    fn kernel_image(&self, release: &str) -> Result<PathBuf> {
        let dir = self.dir.join("kernels").join(release);
        let image = dir.join("boot").join(format!("vmlinuz-{release}"));
        if !image.is_file() {
            println!("xtask: fetching Debian kernel {release}");
            unpack_deb(&self.dir, &format!("linux-image-{release}-unsigned"), &dir)?;
            if !image.is_file() {
                bail!("the kernel package has no {}", image.display());
            }
        }
        Ok(image)
    }
}

/// `<vm>/venv/bin/vng`, creating the venv with [`SYSTEM_PYTHON`] and installing
/// virtme-ng into it unless that version is there.
fn ensure_virtme_ng(vm: &Path) -> Result<PathBuf> {
    let venv = vm.join("venv");
    let vng = venv.join("bin/vng");
    let version_ok = || {
        Cmd::new(&vng)
            .arg("--version")
            .read()
            .is_ok_and(|v| v.split_whitespace().any(|w| w == VIRTME_NG_VERSION))
    };
    if version_ok() {
        return Ok(vng);
    }
    println!(
        "xtask: installing virtme-ng {VIRTME_NG_VERSION} into {}",
        venv.display()
    );
    if venv.exists() {
        fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    Cmd::new(SYSTEM_PYTHON)
        .args(["-m", "venv"])
        .arg(&venv)
        .run()?;
    Cmd::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("virtme-ng=={VIRTME_NG_VERSION}"))
        .run()?;
    if !version_ok() {
        bail!(
            "{} does not report version {VIRTME_NG_VERSION} after installing it",
            vng.display()
        );
    }
    Ok(vng)
}

/// `<vm>/busybox/bin/busybox`, unpacked from Debian's `busybox-static` unless there.
fn ensure_busybox(vm: &Path) -> Result<PathBuf> {
    let dir = vm.join("busybox");
    let busybox = dir.join("bin/busybox");
    if !busybox.is_file() {
        println!("xtask: fetching a static busybox for virtme-ng");
        unpack_deb(vm, "busybox-static", &dir)?;
        if !busybox.is_file() {
            bail!("busybox-static has no {}", busybox.display());
        }
    }
    Ok(busybox)
}

/// `apt-get download`s `package` into `<vm>/debs` (after an `apt-get update` if apt
/// does not know it) and `dpkg -x`es it into `dest`, through a temporary directory
/// so that an interrupted unpack leaves no half tree; the .deb is removed then.
fn unpack_deb(vm: &Path, package: &str, dest: &Path) -> Result<()> {
    let debs = vm.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let download = Cmd::new("apt-get")
        .args(["download", package])
        .current_dir(&debs);
    if download.run().is_err() {
        apt_update()?;
        download.run()?;
    }
    let deb = newest_deb(&debs, package)?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    if partial.exists() {
        fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    Cmd::new("dpkg").arg("-x").arg(&deb).arg(&partial).run()?;
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    fs::rename(&partial, dest)
        .with_context(|| format!("renaming {} to {}", partial.display(), dest.display()))?;
    fs::remove_file(&deb).with_context(|| format!("removing {}", deb.display()))
}

/// The most recently modified `<package>_*.deb` in `dir`.
fn newest_deb(dir: &Path, package: &str) -> Result<PathBuf> {
    let prefix = format!("{package}_");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            let mtime = entry.metadata()?.modified()?;
            found.push((mtime, entry.path()));
        }
    }
    found.sort();
    found.pop().map(|(_, p)| p).with_context(|| {
        format!(
            "apt-get download left no {prefix}*.deb in {}",
            dir.display()
        )
    })
}

fn apt_update() -> Result<()> {
    Cmd::new("apt-get").arg("update").elevated().run()
}

/// The newest release of `kernel` that apt knows, after an `apt-get update` if it
/// knows none.
fn newest_release(kernel: Kernel) -> Result<String> {
    let search = || -> Result<Option<String>> {
        let out = Cmd::new("apt-cache")
            .args(["search", "--names-only", kernel.package_pattern()])
            .read()?;
        Ok(newest_package_release(kernel, &out))
    };
    if let Some(release) = search()? {
        return Ok(release);
    }
    apt_update()?;
    search()?.with_context(|| {
        format!(
            "apt knows no package matching {} (Debian 12's apt sources are needed)",
            kernel.package_pattern()
        )
    })
}

/// The newest release among `apt-cache search` output lines (`PACKAGE - DESCRIPTION`).
fn newest_package_release(kernel: Kernel, search_output: &str) -> Option<String> {
    search_output
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|p| kernel.release_of_package(p))
        .max_by(|a, b| compare_versions(a, b))
        .map(str::to_owned)
}

/// Compares like `sort -V` does, as far as kernel releases need: runs of digits as
/// numbers, everything else byte by byte.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..na]), trim_zeros(&b[..nb]));
                let o = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if o != Ordering::Equal {
                    return o;
                }
                (a, b) = (&a[na..], &b[nb..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    &digits[zeros..]
}

/// Fetches, boots and runs one kernel; failures to do so become
/// [`Outcome::NotStarted`]. Fails only when interrupted.
fn run_kernel(
    vm: &VmTools,
    kernel: Kernel,
    workdir: &Path,
    command: &str,
    out_dir: &Path,
    timeout: Duration,
) -> Result<KernelRun> {
    let name = kernel.name();
    let not_started = |release: Option<String>, why: String, wall: Duration| KernelRun {
        kernel,
        release,
        outcome: Outcome::NotStarted(why),
        wall,
        log: None,
    };
    println!("xtask: kernel {name}");
    let release = match newest_release(kernel) {
        Ok(release) => release,
        Err(e) => {
            check_interrupted()?;
            return Ok(not_started(None, format!("{e:#}"), Duration::ZERO));
        }
    };
    let image = match vm.kernel_image(&release) {
        Ok(image) => image,
        Err(e) => {
            check_interrupted()?;
            return Ok(not_started(Some(release), format!("{e:#}"), Duration::ZERO));
        }
    };
    let started = Instant::now();
    match boot(vm, kernel, &image, workdir, command, out_dir, timeout) {
        Ok((outcome, log)) => Ok(KernelRun {
            kernel,
            release: Some(release),
            outcome,
            wall: started.elapsed(),
            log: Some(log),
        }),
        Err(e) => {
            check_interrupted()?;
            Ok(not_started(
                Some(release),
                format!("{e:#}"),
                started.elapsed(),
            ))
        }
    }
}

/// Writes the guest script, boots `image` with virtme-ng under the VM lock, follows
/// the console until the VM ends or `timeout` passes, and parses the console log.
fn boot(
    vm: &VmTools,
    kernel: Kernel,
    image: &Path,
    workdir: &Path,
    command: &str,
    out_dir: &Path,
    timeout: Duration,
) -> Result<(Outcome, PathBuf)> {
    let name = kernel.name();
    let script = out_dir.join(format!("{name}.sh"));
    let log_path = out_dir.join(format!("{name}.log"));
    let forwarded: Vec<(String, String)> = FORWARDED_VARS
        .iter()
        .filter_map(|k| Some((k.to_string(), env::var(k).ok()?)))
        .collect();
    fs::write(&script, guest_script(workdir, command, &forwarded))
        .with_context(|| format!("writing {}", script.display()))?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", script.display()))?;
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

    let _lock = VmLock::acquire(&vm.dir.join(".vm.lock"), timeout)?;
    let path = env::join_paths(
        [vm.vng.parent().map(Path::to_path_buf).unwrap_or_default()]
            .into_iter()
            .chain(env::split_paths(&env::var_os("PATH").unwrap_or_default())),
    )
    .context("building PATH for vng")?;
    println!(
        "xtask: booting {} (TCG, {GUEST_CPUS} vCPUs, {GUEST_MEMORY}), timeout {} s, console log {}",
        image.display(),
        timeout.as_secs(),
        log_path.display()
    );
    let mut child = Cmd::new(&vm.vng)
        .args(["--verbose", "--disable-kvm", "--user", "root"])
        .arg("--run")
        .arg(image)
        .arg("--busybox")
        .arg(&vm.busybox)
        .args(["--cpus", GUEST_CPUS, "--memory", GUEST_MEMORY])
        // vng hands this to a shell in the guest.
        .arg("--exec")
        .arg(quote(script.as_os_str()))
        .env("PATH", path)
        .current_dir(workdir)
        .spawn_in_group(&log)?;

    let mut follower = ConsoleFollower::new(&log_path, name)?;
    let waited = wait_bounded(&mut child, timeout, || follower.poll());
    follower.poll();
    let timed_out = waited?.is_none();
    if timed_out {
        println!(
            "xtask: [{name}] timeout after {} s: killed the VM",
            timeout.as_secs()
        );
    }

    let raw = fs::read(&log_path).with_context(|| format!("reading {}", log_path.display()))?;
    let console = parse_console(&raw);
    if console.begin.is_none() {
        let why = if timed_out {
            format!("no guest userspace within {} s", timeout.as_secs())
        } else {
            "vng exited before the guest ran the tests".to_owned()
        };
        bail!(
            "{why}; last console lines ({}):\n{}",
            log_path.display(),
            console_tail(&raw, CONSOLE_TAIL_LINES)
        );
    }
    let tests = parse_libtest(&console.lines);
    Ok((
        Outcome::Ran {
            console,
            tests,
            boot_wall: follower.boot_wall,
            timed_out,
        },
        log_path,
    ))
}

/// Waits for `child` (the leader of its own process group) to exit, calling `tick`
/// between polls. After `timeout`, or on an interrupt, the whole group is killed
/// (SIGTERM, then SIGKILL 5 s later); Ok(None) is the timeout. Whatever is left of the
/// group once the child has exited is killed too (a qemu vng did not wait for).
fn wait_bounded(
    child: &mut Child,
    timeout: Duration,
    mut tick: impl FnMut(),
) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let pgid = libc::pid_t::try_from(child.id()).context("vng's pid")?;
    let result = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(Some(status)),
            Ok(None) => {}
            Err(e) => break Err(anyhow::Error::new(e).context("waiting for vng")),
        }
        tick();
        if let Err(e) = check_interrupted() {
            kill_group(child, pgid);
            break Err(e);
        }
        if Instant::now() >= deadline {
            kill_group(child, pgid);
            break Ok(None);
        }
        thread::sleep(Duration::from_millis(250));
    };
    // SAFETY: plain syscall. The group keeps its id while it has members, so the id
    // cannot name another group; ESRCH when it is empty.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    result
}

/// SIGTERM to the group, SIGKILL 5 s later if the leader is still there; reaps it.
fn kill_group(child: &mut Child, pgid: libc::pid_t) {
    // SAFETY: plain syscall on the group we created.
    unsafe { libc::killpg(pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// An exclusive `flock` on the VM lock file, held while it lives: one VM at a time.
struct VmLock(File);

impl VmLock {
    /// Waits up to `timeout` for the lock.
    fn acquire(path: &Path, timeout: Duration) -> Result<VmLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let deadline = Instant::now() + timeout;
        let mut said = false;
        loop {
            // SAFETY: plain syscall on a file descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(VmLock(file));
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(anyhow::Error::new(err).context(format!("locking {}", path.display())));
            }
            if !said {
                println!(
                    "xtask: waiting for another VM to end (lock {})",
                    path.display()
                );
                said = true;
            }
            check_interrupted()?;
            if Instant::now() >= deadline {
                bail!(
                    "another VM still held {} after {} s",
                    path.display(),
                    timeout.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for VmLock {
    fn drop(&mut self) {
        // SAFETY: plain syscall; closing the file would release it anyway.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Prints the guest command's lines as they reach the console log, prefixed with the
/// kernel's name; the kernel's own boot messages stay in the log.
struct ConsoleFollower {
    file: File,
    name: &'static str,
    pending: Vec<u8>,
    state: Frame,
    started: Instant,
    /// When the begin marker arrived, after `started`.
    boot_wall: Option<Duration>,
}

#[derive(PartialEq, Eq)]
enum Frame {
    Before,
    Inside,
    After,
}

impl ConsoleFollower {
    fn new(path: &Path, name: &'static str) -> Result<ConsoleFollower> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(ConsoleFollower {
            file,
            name,
            pending: Vec::new(),
            state: Frame::Before,
            started: Instant::now(),
            boot_wall: None,
        })
    }

    fn poll(&mut self) {
        let mut buf = Vec::new();
        // Whatever was read before an error is kept; the next poll goes on from there.
        let _ = self.file.read_to_end(&mut buf);
        self.pending.extend_from_slice(&buf);
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            self.line(&clean_line(&line));
        }
    }

    fn line(&mut self, line: &str) {
        let name = self.name;
        match (classify(line), &self.state) {
            (ConsoleLine::Begin(b), Frame::Before) => {
                let wall = self.started.elapsed();
                self.boot_wall = Some(wall);
                println!(
                    "xtask: [{name}] guest {} reached userspace at {:.1} s uptime ({:.1} s wall)",
                    b.release,
                    b.uptime,
                    wall.as_secs_f64()
                );
                self.state = Frame::Inside;
            }
            (ConsoleLine::End(before, e), Frame::Inside) => {
                if !before.trim().is_empty() {
                    println!("[{name}] {before}");
                }
                println!(
                    "xtask: [{name}] tests exited {} at {:.1} s uptime",
                    e.rc, e.uptime
                );
                self.state = Frame::After;
            }
            (ConsoleLine::Text, Frame::Inside) => println!("[{name}] {line}"),
            _ => {}
        }
    }
}

/// The begin marker: the guest's kernel release, and its uptime when the tests started.
#[derive(Debug, Clone, PartialEq)]
pub struct Begin {
    pub release: String,
    pub uptime: f64,
}

/// The end marker: the command's exit status and the guest's uptime then.
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    pub rc: i32,
    pub uptime: f64,
}

/// The console log, parsed: the markers, and the lines between them.
#[derive(Debug, Default, PartialEq)]
pub struct Console {
    pub begin: Option<Begin>,
    pub lines: Vec<String>,
    pub end: Option<End>,
}

impl Console {
    /// Guest seconds the tests took.
    pub fn tests_secs(&self) -> Option<f64> {
        Some(self.end.as_ref()?.uptime - self.begin.as_ref()?.uptime)
    }
}

enum ConsoleLine<'a> {
    Begin(Begin),
    /// The text before the marker on its line, and the marker.
    End(&'a str, End),
    Text,
}

/// What a cleaned console line is. A marker may follow kernel noise on its line; a
/// marker that does not parse is text.
fn classify(line: &str) -> ConsoleLine<'_> {
    if let Some((_, rest)) = line.split_once(BEGIN_MARKER) {
        let fields = marker_fields(rest);
        let begin = (|| {
            Some(Begin {
                release: field(&fields, "release")?.to_owned(),
                uptime: field(&fields, "uptime")?.parse().ok()?,
            })
        })();
        if let Some(b) = begin {
            return ConsoleLine::Begin(b);
        }
    }
    if let Some((before, rest)) = line.split_once(END_MARKER) {
        let fields = marker_fields(rest);
        let end = (|| {
            Some(End {
                rc: field(&fields, "rc")?.parse().ok()?,
                uptime: field(&fields, "uptime")?.parse().ok()?,
            })
        })();
        if let Some(e) = end {
            return ConsoleLine::End(before, e);
        }
    }
    ConsoleLine::Text
}

/// `key=value` words of a marker up to its closing `@@@`.
fn marker_fields(rest: &str) -> Vec<(&str, &str)> {
    let Some((inside, _)) = rest.split_once(MARKER_CLOSE) else {
        return Vec::new();
    };
    inside
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

fn field<'a>(fields: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// A console line as text: no NULs, CRs, terminal escape sequences nor line end.
fn clean_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\0' | '\r' | '\n' => {}
            '\u{1b}' => {
                // CSI: ESC [ parameters, then a final byte in @..~.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses a whole console log: the first begin marker, the lines after it up to the
/// first end marker (kernel messages among them included), and the end marker.
pub fn parse_console(raw: &[u8]) -> Console {
    let mut console = Console::default();
    for raw_line in raw.split(|&b| b == b'\n') {
        let line = clean_line(raw_line);
        match (classify(&line), &console.begin) {
            (ConsoleLine::Begin(b), None) => console.begin = Some(b),
            (ConsoleLine::End(before, e), Some(_)) => {
                if !before.trim().is_empty() {
                    console.lines.push(before.to_owned());
                }
                console.end = Some(e);
                break;
            }
            (_, Some(_)) => console.lines.push(line),
            (_, None) => {}
        }
    }
    // The guest script prints an empty line before the end marker.
    if console.end.is_some() && console.lines.last().is_some_and(|l| l.trim().is_empty()) {
        console.lines.pop();
    }
    console
}

/// The last `n` non-blank lines of a console log, indented.
fn console_tail(raw: &[u8], n: usize) -> String {
    let lines: Vec<String> = raw
        .split(|&b| b == b'\n')
        .map(clean_line)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A test that failed, and the first line saying why.
#[derive(Debug, PartialEq)]
pub struct Failure {
    pub name: String,
    pub first_error: Option<String>,
}

/// libtest's output, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct TestResults {
    /// `test NAME ... ok|FAILED|ignored` lines, as printed.
    pub result_lines: Vec<String>,
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    /// Failed tests in the order they ran.
    pub failures: Vec<Failure>,
    /// Whether the `test result:` line was seen (the run finished).
    pub finished: bool,
}

/// Parses libtest's (human) output. Counts come from the `test result:` line when it
/// is there, else from the result lines seen so far (a run cut short); the failed
/// tests from the `failures:` list that precedes it, else from the result lines.
///
/// A child process writing to the console (the tests' children inherit it) can split
/// a result line: `test NAME ... Traceback...`, its lines, then `FAILED`; the verdict
/// on a line of its own is taken as the pending test's.
pub fn parse_libtest(lines: &[String]) -> TestResults {
    let mut r = TestResults::default();
    let mut verdicts: Vec<(String, String)> = Vec::new();
    let mut pending: Option<&str> = None;
    let mut failures_list: Option<Vec<String>> = None;
    let mut in_list = false;
    for line in lines {
        if let Some(rest) = line.strip_prefix("test result: ") {
            r.finished = true;
            r.passed += summary_count(rest, "passed");
            r.failed += summary_count(rest, "failed");
            r.ignored += summary_count(rest, "ignored");
            in_list = false;
        } else if let Some((name, verdict)) = result_line(line) {
            verdicts.push((name.to_owned(), verdict.to_owned()));
            pending = None;
        } else if let Some(name) = unfinished_result_line(line) {
            pending = Some(name);
        } else if let (Some(name), Some(verdict)) = (pending, bare_verdict(line)) {
            verdicts.push((name.to_owned(), verdict.to_owned()));
            pending = None;
        } else if line.trim_end() == "failures:" {
            // The second `failures:` heading (after the sections) lists the names.
            in_list = true;
            failures_list = Some(Vec::new());
        } else if in_list {
            match (line.strip_prefix("    "), failures_list.as_mut()) {
                (Some(name), Some(list)) if !name.trim().is_empty() && !name.contains(' ') => {
                    list.push(name.trim().to_owned());
                }
                _ if line.trim().is_empty() => {}
                _ => in_list = false,
            }
        }
    }
    r.result_lines = verdicts
        .iter()
        .map(|(name, verdict)| format!("test {name} ... {verdict}"))
        .collect();
    let failed_from_lines = || -> Vec<String> {
        verdicts
            .iter()
            .filter(|(_, v)| v == "FAILED")
            .map(|(n, _)| n.clone())
            .collect()
    };
    let failed_names = match failures_list {
        Some(list) if r.finished && !list.is_empty() => list,
        _ => failed_from_lines(),
    };
    if !r.finished {
        r.passed = verdicts.iter().filter(|(_, v)| v == "ok").count();
        r.failed = failed_names.len();
        r.ignored = verdicts.iter().filter(|(_, v)| v == "ignored").count();
    }
    r.failures = failed_names
        .into_iter()
        .map(|name| Failure {
            first_error: first_error(lines, &name),
            name,
        })
        .collect();
    r
}

/// `test NAME ... VERDICT` (VERDICT possibly followed by a time or a reason) as
/// (NAME, VERDICT).
fn result_line(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = line.strip_prefix("test ")?.split_once(" ... ")?;
    let verdict = bare_verdict(rest)?;
    (!name.contains(' ')).then_some((name, verdict))
}

/// NAME of `test NAME ... ` followed by something other than a verdict.
fn unfinished_result_line(line: &str) -> Option<&str> {
    let (name, _) = line.strip_prefix("test ")?.split_once(" ... ")?;
    (!name.contains(' ') && !name.is_empty()).then_some(name)
}

/// `ok`, `FAILED` or `ignored` when `text` is just that, possibly followed by libtest's
/// time (`<1.2s>`) or an ignore reason (`ignored, REASON`).
fn bare_verdict(text: &str) -> Option<&'static str> {
    let text = text.trim();
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    match word {
        "ok" | "FAILED" if rest.is_empty() || rest.starts_with('<') => {
            Some(if word == "ok" { "ok" } else { "FAILED" })
        }
        "ignored" | "ignored," => Some("ignored"),
        _ => None,
    }
}

/// N of `N <what>` in a `test result:` line.
fn summary_count(rest: &str, what: &str) -> usize {
    rest.split(';')
        .filter_map(|part| {
            let mut words = part.split_whitespace().rev();
            let (w, n) = (words.next()?, words.next()?);
            (w == what).then(|| n.parse::<usize>().ok()).flatten()
        })
        .sum()
}

/// The first line explaining `name`'s failure, from its `---- NAME stdout ----`
/// section: where it panicked and the panic message's first line.
fn first_error(lines: &[String], name: &str) -> Option<String> {
    let header = format!("---- {name} stdout ----");
    let start = lines.iter().position(|l| l.trim() == header)? + 1;
    let section = lines[start..]
        .iter()
        .take_while(|l| !l.starts_with("---- ") && l.trim() != "failures:");
    let mut location: Option<&str> = None;
    for line in section {
        if location.is_none() {
            if let Some((_, at)) = line.split_once(" panicked at ") {
                location = Some(at.trim_end_matches(':'));
            }
        } else if !line.trim().is_empty() {
            let message = truncate(line.trim(), 300);
            return Some(format!("{}: {message}", location.unwrap_or("?")));
        }
    }
    location.map(str::to_owned)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The report printed after each kernel's run.
fn print_report(run: &KernelRun) {
    let name = run.kernel.name();
    let release = run.release.as_deref().unwrap_or("?");
    match &run.outcome {
        // Said by problem() below.
        Outcome::NotStarted(_) => {}
        Outcome::Ran {
            console,
            tests,
            boot_wall,
            ..
        } => {
            let boot = console.begin.as_ref().map_or(0.0, |b| b.uptime);
            let boot_wall = boot_wall.map_or(0.0, |d| d.as_secs_f64());
            let took = console
                .tests_secs()
                .map_or_else(|| "did not finish".to_owned(), |s| format!("took {s:.1} s"));
            println!(
                "xtask: kernel {name} ({release}): userspace at {boot:.1} s uptime \
                 ({boot_wall:.1} s wall), tests {took}, VM wall {:.1} s: \
                 {} passed, {} failed, {} ignored",
                run.wall.as_secs_f64(),
                tests.passed,
                tests.failed,
                tests.ignored
            );
            for f in &tests.failures {
                println!(
                    "xtask: kernel {name}: FAILED {}: {}",
                    f.name,
                    f.first_error.as_deref().unwrap_or("(no panic message)")
                );
            }
        }
    }
    if let Some(problem) = run.problem() {
        println!("xtask: {problem}");
    }
}

/// The table printed at the end: one row per kernel (the host's first when its tests
/// ran, with its wall time), tests passed and failed, wall seconds, verdict.
pub fn summary_table(host: Option<(&str, Duration)>, runs: &[KernelRun]) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "kernel".into(),
        "release".into(),
        "passed".into(),
        "failed".into(),
        "wall s".into(),
        "result".into(),
    ]];
    if let Some((release, wall)) = host {
        rows.push([
            "host".into(),
            release.into(),
            "-".into(),
            "-".into(),
            format!("{:.0}", wall.as_secs_f64()),
            "ok".into(),
        ]);
    }
    for run in runs {
        let (passed, failed, result) = match &run.outcome {
            Outcome::NotStarted(_) => ("-".into(), "-".into(), "no VM"),
            Outcome::Ran {
                tests, timed_out, ..
            } => (
                tests.passed.to_string(),
                tests.failed.to_string(),
                match (run.ok(), *timed_out) {
                    (true, _) => "ok",
                    (false, true) => "timeout",
                    (false, false) => "FAILED",
                },
            ),
        };
        rows.push([
            run.kernel.name().into(),
            run.release.clone().unwrap_or_else(|| "?".into()),
            passed,
            failed,
            format!("{:.0}", run.wall.as_secs_f64()),
            result.into(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| match i {
                // Numbers right-aligned.
                2..=4 => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
    out
}

/// Ok if every kernel's tests ran and passed, else an error naming each that did not.
pub fn verdict(runs: &[KernelRun]) -> Result<()> {
    let problems: Vec<String> = runs.iter().filter_map(KernelRun::problem).collect();
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_values() {
        use Kernel::*;
        assert_eq!(parse_kernels("host").unwrap(), (true, vec![]));
        assert_eq!(parse_kernels("6.1").unwrap(), (false, vec![Debian6_1]));
        assert_eq!(parse_kernels("6.12").unwrap(), (false, vec![Debian6_12]));
        assert_eq!(
            parse_kernels("all").unwrap(),
            (false, vec![Debian6_1, Debian6_12])
        );
        assert_eq!(
            parse_kernels("6.12,host,6.1,6.12").unwrap(),
            (true, vec![Debian6_12, Debian6_1])
        );
        for bad in ["", "6", "6.1.0-57-amd64", "host,", "ALL"] {
            assert!(parse_kernels(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kernel_packages() {
        let out = "linux-image-6.1.0-9-amd64-unsigned - Linux 6.1 for 64-bit PCs\n\
                   linux-image-6.1.0-57-amd64-unsigned - Linux 6.1 for 64-bit PCs\n\
                   linux-image-6.1.0-57-rt-amd64-unsigned - Linux 6.1 for 64-bit PCs, PREEMPT_RT\n\
                   linux-image-6.1.0-100-cloud-amd64-unsigned - Linux 6.1 for cloud\n\
                   linux-image-6.12.9+deb12-amd64-unsigned - Linux 6.12\n\
                   linux-image-6.12.118+deb12-amd64-unsigned - Linux 6.12\n\
                   linux-image-6.12.38+deb12-amd64-unsigned - Linux 6.12\n";
        assert_eq!(
            newest_package_release(Kernel::Debian6_1, out).as_deref(),
            Some("6.1.0-57-amd64")
        );
        assert_eq!(
            newest_package_release(Kernel::Debian6_12, out).as_deref(),
            Some("6.12.118+deb12-amd64")
        );
        assert_eq!(newest_package_release(Kernel::Debian6_1, ""), None);
        assert_eq!(compare_versions("6.1.0-9", "6.1.0-10"), Ordering::Less);
        assert_eq!(compare_versions("6.12.010", "6.12.9"), Ordering::Greater);
        assert_eq!(compare_versions("6.1", "6.1"), Ordering::Equal);
    }

    /// What a serial console gives: boot noise, kernel messages in the middle of the
    /// output and before the end marker on its line, CR LF line ends, NULs, colours.
    const CONSOLE: &[u8] = b"\
[    0.000000] Linux version 6.12.118+deb12-amd64 (debian-kernel@lists.debian.org)\r\n\
[    0.000000] Command line: virtme.exec=`L3dvcmsvbWFpbi90YXJnZXQvdm0vNi4xMi5zaA==` console=ttyS0\r\n\
\0\0[    1.584265] virtme initramfs: initramfs does not have module crypto-hmac(sha256)\r\r\n\
echo \"@@@NETWATCH-VM-BEGIN release=$(uname -r) uptime=$(up)@@@\"\r\n\
[    7.1] virtme-ng-init: @@@NETWATCH-VM-BEGIN release=6.12.118+deb12-amd64 uptime=8.46@@@\r\n\
\r\n\
running 3 tests\r\n\
test a_first ... \x1b[32mok\x1b[m\r\n\
[   20.123456] traps: python3[2211] general protection fault\r\n\
test b_second ... FAILED\r\n\
test c_third ... ok\r\n\
\r\n\
failures:\r\n\
\r\n\
---- b_second stdout ----\r\n\
\r\n\
thread 'b_second' (21454) panicked at netwatch/tests/privileged.rs:1669:5:\r\n\
assertion `left == right` failed: [\"{\\\"kind\\\":\\\"exit\\\"}\"]\r\n\
  left: Some(143)\r\n\
 right: Some(7)\r\n\
\r\n\
\r\n\
failures:\r\n\
    b_second\r\n\
\r\n\
test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 14 filtered out; finished in 99.50s\r\n\
\r\n\
[  108.2] random: crng reseeded\0@@@NETWATCH-VM-END rc=101 uptime=108.96@@@\r\n\
[  109.0] reboot: Power down\r\n";

    #[test]
    fn console_markers_and_exit_status() {
        let c = parse_console(CONSOLE);
        assert_eq!(
            c.begin,
            Some(Begin {
                release: "6.12.118+deb12-amd64".into(),
                uptime: 8.46
            })
        );
        assert_eq!(
            c.end,
            Some(End {
                rc: 101,
                uptime: 108.96
            })
        );
        assert!((c.tests_secs().unwrap() - 100.5).abs() < 1e-9);
        assert_eq!(c.lines[1], "running 3 tests");
        assert_eq!(c.lines[2], "test a_first ... ok");
        assert_eq!(c.lines.last().unwrap(), "[  108.2] random: crng reseeded");
        assert!(c.lines.iter().all(|l| !l.contains(['\r', '\0', '\u{1b}'])));

        let t = parse_libtest(&c.lines);
        assert!(t.finished);
        assert_eq!((t.passed, t.failed, t.ignored), (2, 1, 0));
        assert_eq!(
            t.result_lines,
            [
                "test a_first ... ok",
                "test b_second ... FAILED",
                "test c_third ... ok"
            ]
        );
        assert_eq!(
            t.failures,
            [Failure {
                name: "b_second".into(),
                first_error: Some(
                    "netwatch/tests/privileged.rs:1669:5: assertion `left == right` failed: \
                     [\"{\\\"kind\\\":\\\"exit\\\"}\"]"
                        .into()
                ),
            }]
        );
    }

    #[test]
    fn console_without_markers_or_end() {
        let never = parse_console(b"[    0.0] Linux version 6.1.0-57-amd64\r\n\0\0");
        assert_eq!(never, Console::default());

        let cut = parse_console(
            b"@@@NETWATCH-VM-BEGIN release=6.1.0-57-amd64 uptime=7.9@@@\r\n\
              test a ... ok\r\ntest b ... FAILED\r\ntest c ... ",
        );
        assert_eq!(cut.begin.as_ref().unwrap().release, "6.1.0-57-amd64");
        assert_eq!(cut.end, None);
        assert_eq!(cut.tests_secs(), None);
        let t = parse_libtest(&cut.lines);
        assert!(!t.finished);
        assert_eq!((t.passed, t.failed), (1, 1));
        assert_eq!(t.failures[0].first_error, None);

        // A marker that does not parse (the script's own source, say) is text.
        let odd = parse_console(b"@@@NETWATCH-VM-BEGIN release=x uptime=$(up)@@@\n");
        assert_eq!(odd.begin, None);
    }

    #[test]
    fn result_lines_split_by_a_child_writing_to_the_console() {
        let lines: Vec<String> = [
            "test a_first ... ok <0.732s>",
            "test b_second ... Traceback (most recent call last):",
            "  File \"<string>\", line 7, in say",
            "RuntimeError: reentrant call inside <_io.BufferedWriter name='<stdout>'>",
            "FAILED <11.178s>",
            "test c_third ... ignored, needs a NIC",
            "test d_fourth ... ok",
            "",
            "failures:",
            "",
            "---- b_second stdout ----",
            "",
            "thread 'b_second' (22233) panicked at netwatch/tests/support/mod.rs:314:32:",
            "actor said \"\"",
            "",
            "",
            "failures:",
            "    b_second",
            "",
            "test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; \
             finished in 870.30s",
        ]
        .map(String::from)
        .to_vec();
        let t = parse_libtest(&lines);
        assert_eq!(
            t.result_lines,
            [
                "test a_first ... ok",
                "test b_second ... FAILED",
                "test c_third ... ignored",
                "test d_fourth ... ok"
            ]
        );
        assert_eq!((t.passed, t.failed, t.ignored), (2, 1, 1));
        assert_eq!(
            t.failures,
            [Failure {
                name: "b_second".into(),
                first_error: Some("netwatch/tests/support/mod.rs:314:32: actor said \"\"".into()),
            }]
        );
    }

    #[test]
    fn artifact_path() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/netwatch#0.1.0","manifest_path":"/w/netwatch/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"netwatch","src_path":"/w/netwatch/src/main.rs","edition":"2024","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/w/target/debug/netwatch"],"executable":"/w/target/debug/netwatch","fresh":true}"#,
            "\n",
            r#"{"reason":"build-script-executed","package_id":"path+file:///w/netwatch#0.1.0","linked_libs":[],"linked_paths":[],"cfgs":[],"env":[],"out_dir":"/w/target/debug/build/netwatch-1/out"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/netwatch#0.1.0","manifest_path":"/w/netwatch/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"privileged","src_path":"/w/netwatch/tests/privileged.rs","edition":"2024","doc":false,"doctest":false,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":true},"features":[],"filenames":["/w/target/debug/deps/privileged-217dc1c3c4864210"],"executable":"/w/tar\"get\\/debug\/deps\/privileged-217dc1c3c4864210","fresh":false}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n",
        );
        assert_eq!(
            test_executable(messages, "privileged"),
            Some(PathBuf::from(
                r#"/w/tar"get\/debug/deps/privileged-217dc1c3c4864210"#
            ))
        );
        assert_eq!(test_executable(messages, "cli"), None);
        // The bin target named netwatch is not a test target.
        assert_eq!(test_executable(messages, "netwatch"), None);
        assert_eq!(test_executable("", "privileged"), None);
        assert_eq!(test_executable("not json\n{", "privileged"), None);
    }

    #[test]
    fn guest_command_and_script() {
        let exe = Path::new("/w/target/debug/deps/privileged-1");
        let full = guest_command(exe, Selection::Full, &[OsString::from("report_1")]);
        assert_eq!(
            full,
            "/w/target/debug/deps/privileged-1 --test-threads=1 --color never report_1"
        );
        let subset = guest_command(exe, Selection::Subset, &[OsString::from("--color=always")]);
        assert!(subset.ends_with(&format!(
            "--test-threads=1 {} --color=always",
            VM_TESTS.join(" ")
        )));
        let script = guest_script(
            Path::new("/w/my checkout/netwatch"),
            &full,
            &[("RUST_BACKTRACE".into(), "1".into())],
        );
        assert!(script.contains("\ncd '/w/my checkout/netwatch' && /w/target/debug"));
        assert!(script.contains("\nexport RUST_BACKTRACE=1\n"));
        // The markers' source text does not parse as markers.
        assert!(parse_console(script.as_bytes()).begin.is_none());
    }

    #[test]
    fn summary() {
        let ran = KernelRun {
            kernel: Kernel::Debian6_12,
            release: Some("6.12.118+deb12-amd64".into()),
            outcome: Outcome::Ran {
                console: parse_console(CONSOLE),
                tests: parse_libtest(&parse_console(CONSOLE).lines),
                boot_wall: None,
                timed_out: false,
            },
            wall: Duration::from_secs_f64(123.4),
            log: None,
        };
        let never = KernelRun {
            kernel: Kernel::Debian6_1,
            release: None,
            outcome: Outcome::NotStarted("apt-get download failed".into()),
            wall: Duration::ZERO,
            log: None,
        };
        let table = summary_table(Some(("6.18.4", Duration::from_secs(300))), &[never, ran]);
        assert_eq!(
            table,
            "  kernel  release               passed  failed  wall s  result\n\
             \x20 host    6.18.4                     -       -     300  ok\n\
             \x20 6.1     ?                          -       -       0  no VM\n\
             \x20 6.12    6.12.118+deb12-amd64       2       1     123  FAILED\n"
        );
    }

    /// A renamed test would leave its filter matching nothing, and the VM runs would
    /// pass without it.
    #[test]
    fn vm_tests_name_privileged_tests() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../netwatch/tests")
            .join(crate::PRIVILEGED_TEST);
        // Every .rs file of the test binary, in subdirectories too.
        let mut source = String::new();
        let mut files = 0;
        let mut dirs = vec![dir.clone()];
        while let Some(d) = dirs.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    source += &fs::read_to_string(&path).unwrap();
                    files += 1;
                }
            }
        }
        assert!(files > 0, "no .rs file in {}", dir.display());
        for name in VM_TESTS {
            assert!(
                source.contains(&format!("fn {name}(")),
                "{name} is not a test in {}",
                dir.display()
            );
        }
    }

    #[test]
    fn vm_tests_are_distinct() {
        for (i, a) in VM_TESTS.iter().enumerate() {
            assert!(!VM_TESTS[i + 1..].contains(a), "{a} twice");
        }
    }
}
