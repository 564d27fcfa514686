//! The deployment files in deploy/, checked without privileges: the systemd unit with
//! systemd-analyze (verify, security, syscall-filter), the DaemonSet manifest against
//! the Kubernetes schema with kubernetes-validate (from PyPI, installed on first use
//! into the tools directory of `cargo xtask`), and both for what netwatch needs.
//! Each check is also run on a broken copy, to show that it can fail.
//!
//! `systemd` checks the unit, `kubernetes` the manifest; what both use is here.

mod kubernetes;
mod systemd;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The capabilities netwatch uses, as Kubernetes names them (systemd: CAP_ before
/// each). Why each is needed is said in both files.
const CAPABILITIES: [&str; 5] = [
    "BPF",
    "PERFMON",
    "SYS_ADMIN",
    "SYS_PTRACE",
    "DAC_READ_SEARCH",
];

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An empty directory of this test's own (emptied again by the next run).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("deploy-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn output(cmd: &mut Command, what: &str) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", cmd.get_program()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
