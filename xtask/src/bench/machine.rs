//! The machine: what the results say about the host, the tools and the netwatch
//! binary.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cmd::find_command;

pub(super) struct Machine {
    pub(super) nproc: usize,
    pub(super) kernel: String,
    pub(super) cpu_model: String,
    pub(super) mem_mib: u64,
    pub(super) netwatch_commit: String,
    pub(super) netwatch_binary: String,
    pub(super) tools: Vec<(String, String)>,
    pub(super) date_unix: u64,
    /// kernel.bpf_stats_enabled when the bench started (it runs with 0).
    pub(super) bpf_stats_before: String,
}

fn first_line(mut c: Command) -> String {
    c.output()
        .ok()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .find(|l| !l.trim().is_empty() && !l.contains("RLIMIT_MEMLOCK"))
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "?".to_owned())
}

pub(super) fn machine_info(root: &Path, netwatch: &Path, nproc: usize) -> Machine {
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let mem_mib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |k| k / 1024);
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let mut commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "netwatch",
        "netwatch-common",
        "netwatch-ebpf",
    ]);
    if !dirty.is_empty() {
        commit.push_str(" + uncommitted changes in netwatch*/");
    }
    let netwatch_binary = fs::metadata(netwatch)
        .map(|m| {
            let age = m
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .map_or("?".to_owned(), |d| format!("{} s", d.as_secs()));
            format!("{} bytes, built {age} before the bench", m.len())
        })
        .unwrap_or_default();
    let tool = |name: &str, args: &[&str]| {
        let mut c = Command::new(name);
        c.args(args);
        (name.to_owned(), first_line(c))
    };
    let mut nw = Command::new(netwatch);
    nw.arg("--version");
    let tools = vec![
        ("netwatch".to_owned(), first_line(nw)),
        tool("nginx", &["-v"]),
        tool("wrk", &["-v"]),
        tool("bpftrace", &["--version"]),
        tool("strace", &["-V"]),
        (
            "bpftool".to_owned(),
            if find_command("bpftool").is_some() {
                let mut c = Command::new("bpftool");
                c.arg("--version");
                first_line(c)
            } else {
                "not installed".to_owned()
            },
        ),
    ];
    Machine {
        nproc,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        cpu_model,
        mem_mib,
        netwatch_commit: commit,
        netwatch_binary,
        tools,
        date_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        bpf_stats_before: String::new(),
    }
}
