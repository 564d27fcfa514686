//! The systemd unit, deploy/netwatch.service: systemd-analyze's verify, security and
//! syscall-filter, and what netwatch needs from it.

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::{CAPABILITIES, deploy, output, read, scratch, text};

/// What the unit runs.
const EXEC_START: &str = "/usr/local/bin/netwatch --metrics 127.0.0.1:9464 --quiet";

fn systemd_analyze<I: AsRef<OsStr>>(args: impl IntoIterator<Item = I>) -> Output {
    output(
        Command::new("systemd-analyze")
            .args(args)
            .env("SYSTEMD_COLORS", "0")
            .env("SYSTEMD_PAGER", ""),
        "systemd-analyze (Debian package: systemd)",
    )
}

/// A copy of `unit` as `netwatch.service` in a scratch directory, its ExecStart on
/// the netwatch binary this test built (systemd-analyze checks that it exists).
fn unit_copy(name: &str, unit: &str) -> PathBuf {
    assert!(
        unit.contains(&format!("ExecStart={EXEC_START}\n")),
        "the unit's ExecStart is not {EXEC_START:?}"
    );
    let path = scratch(name).join("netwatch.service");
    let unit = unit.replace(
        &format!("ExecStart={EXEC_START}"),
        &format!(
            "ExecStart={} --metrics 127.0.0.1:9464 --quiet",
            env!("CARGO_BIN_EXE_netwatch")
        ),
    );
    fs::write(&path, unit).unwrap();
    path
}

fn verify(unit: &Path) -> Output {
    systemd_analyze([OsStr::new("verify"), unit.as_os_str()])
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify_without_a_warning() {
    let unit = unit_copy("verify", &read(&deploy("netwatch.service")));
    let out = verify(&unit);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out), "", "systemd-analyze verify warned");
}

#[test]
fn systemd_analyze_verify_warns_about_a_misspelt_setting() {
    let unit = read(&deploy("netwatch.service")).replace(
        "NoNewPrivileges=yes",
        "NoNewPrivileges=yes\nCapabilityBoundngSet=CAP_BPF",
    );
    let out = verify(&unit_copy("verify-misspelt", &unit));
    assert!(
        text(&out).contains("CapabilityBoundngSet"),
        "{}",
        text(&out)
    );
}

/// systemd's own measure of what the unit leaves open: 2.7 of 10 with systemd 252.
#[test]
fn systemd_unit_exposure_stays_low() {
    let original = read(&deploy("netwatch.service"));
    let unit = unit_copy("security", &original);
    let security = |unit: &Path| {
        systemd_analyze([
            OsStr::new("security"),
            OsStr::new("--offline=yes"),
            OsStr::new("--threshold=35"),
            unit.as_os_str(),
        ])
    };
    let out = security(&unit);
    assert!(out.status.success(), "exposure above 3.5:\n{}", text(&out));

    let unsandboxed: String = original
        .lines()
        .filter(|l| !l.starts_with("Protect") && !l.starts_with("Restrict"))
        .map(|l| format!("{l}\n"))
        .collect();
    let unit = unit_copy("security-unsandboxed", &unsandboxed);
    assert!(!security(&unit).status.success());
}

/// A unit's settings as (section, key, value), comments and blank lines left out.
fn unit_settings(unit: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a setting: {line}"));
        assert!(!value.ends_with('\\'), "continued lines not parsed: {line}");
        settings.push((
            section.clone(),
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    settings
}

/// The value of a single-valued setting (the last assignment wins).
fn single<'a>(
    settings: &'a [(String, String, String)],
    section: &str,
    key: &str,
) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
}

/// The words of a list setting: assignments add up, an empty one resets.
fn list(settings: &[(String, String, String)], section: &str, key: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for (_, _, value) in settings.iter().filter(|(s, k, _)| s == section && k == key) {
        if value.is_empty() {
            words.clear();
        }
        words.extend(value.split_whitespace().map(str::to_owned));
    }
    words
}

fn is_yes(value: Option<&str>) -> bool {
    matches!(value, Some("yes" | "true" | "on" | "1"))
}

/// What netwatch needs from its unit, and the sandboxing that would break it.
fn unit_problems(unit: &str) -> Vec<String> {
    let s = unit_settings(unit);
    let service = |key| single(&s, "Service", key);
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    expect(
        service("ExecStart") == Some(EXEC_START),
        "ExecStart: netwatch --metrics 127.0.0.1:9464 --quiet",
    );
    expect(service("Type") == Some("simple"), "Type=simple");
    expect(
        service("Restart") == Some("on-failure"),
        "Restart=on-failure",
    );
    expect(service("RestartSec").is_some(), "a RestartSec");
    let wanted: BTreeSet<String> = CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect();
    expect(
        list(&s, "Service", "CapabilityBoundingSet") == wanted,
        "CapabilityBoundingSet: exactly netwatch's capabilities",
    );
    expect(
        list(&s, "Service", "AmbientCapabilities") == wanted,
        "AmbientCapabilities: exactly netwatch's capabilities",
    );
    expect(
        is_yes(service("DynamicUser")) && service("User").is_none(),
        "DynamicUser=yes, no User=",
    );
    expect(is_yes(service("NoNewPrivileges")), "NoNewPrivileges=yes");
    expect(
        service("ProtectSystem") == Some("strict"),
        "ProtectSystem=strict",
    );
    expect(is_yes(service("ProtectHome")), "ProtectHome=yes");
    // Each of these hides what netwatch reads or serves.
    expect(
        matches!(service("ProtectProc"), None | Some("default")),
        "no ProtectProc: netwatch reads every /proc/PID",
    );
    expect(
        service("ProcSubset") != Some("pid"),
        "no ProcSubset=pid: netwatch reads /proc/sys",
    );
    expect(
        !is_yes(service("PrivateNetwork")),
        "no PrivateNetwork: /metrics and sock_diag",
    );
    expect(
        matches!(
            service("PrivateUsers"),
            None | Some("no" | "false" | "off" | "0")
        ),
        "no PrivateUsers: BPF needs capabilities in the initial user namespace",
    );
    let namespaces = service("RestrictNamespaces").unwrap_or("no");
    let net_allowed = match namespaces {
        "no" | "false" | "off" | "0" => true,
        "yes" | "true" | "on" | "1" => false,
        v if v.starts_with('~') => !v
            .split_whitespace()
            .any(|w| w.trim_start_matches('~') == "net"),
        v => v.split_whitespace().any(|w| w == "net"),
    };
    expect(net_allowed, "RestrictNamespaces must allow net (setns)");
    let families = list(&s, "Service", "RestrictAddressFamilies");
    expect(
        families.is_empty()
            || ["AF_NETLINK", "AF_INET", "AF_INET6"]
                .iter()
                .all(|f| families.contains(*f)),
        "RestrictAddressFamilies: AF_NETLINK, AF_INET, AF_INET6",
    );
    for key in ["Wants", "After"] {
        expect(
            list(&s, "Unit", key).contains("sys-kernel-tracing.mount"),
            &format!("{key}=sys-kernel-tracing.mount"),
        );
    }
    expect(
        single(&s, "Install", "WantedBy") == Some("multi-user.target"),
        "WantedBy=multi-user.target",
    );
    problems
}

#[test]
fn systemd_unit_grants_what_netwatch_needs_and_nothing_that_breaks_it() {
    let unit = read(&deploy("netwatch.service"));
    assert_eq!(unit_problems(&unit), Vec::<String>::new());

    for (from, to, problem) in [
        (
            EXEC_START,
            "/usr/local/bin/netwatch --metrics 127.0.0.1:9464",
            "ExecStart",
        ),
        (
            "AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN CAP_SYS_PTRACE ",
            "AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN ",
            "AmbientCapabilities",
        ),
        (
            "CapabilityBoundingSet=CAP_BPF ",
            "CapabilityBoundingSet=CAP_NET_ADMIN CAP_BPF ",
            "CapabilityBoundingSet",
        ),
        (
            "ProtectSystem=strict\n",
            "ProtectSystem=strict\nProtectProc=invisible\n",
            "ProtectProc",
        ),
        (
            "ProtectSystem=strict\n",
            "ProtectSystem=strict\nPrivateNetwork=yes\n",
            "PrivateNetwork",
        ),
        (
            "RestrictNamespaces=net",
            "RestrictNamespaces=yes",
            "RestrictNamespaces",
        ),
        (
            "AF_INET AF_INET6 AF_NETLINK",
            "AF_INET AF_INET6",
            "RestrictAddressFamilies",
        ),
        ("Restart=on-failure", "Restart=no", "Restart"),
    ] {
        assert!(unit.contains(from), "{from:?}");
        let problems = unit_problems(&unit.replacen(from, to, 1));
        assert!(
            problems.iter().any(|p| p.contains(problem)),
            "{from:?} -> {to:?}: {problems:?}"
        );
    }
}

/// The system calls a filter allows, its @groups expanded by systemd-analyze.
fn syscalls(filter: &BTreeSet<String>) -> BTreeSet<String> {
    let mut calls = BTreeSet::new();
    let mut groups: Vec<String> = Vec::new();
    for word in filter {
        if word.starts_with('@') {
            groups.push(word.clone());
        } else {
            calls.insert(word.clone());
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(group) = groups.pop() {
        if !seen.insert(group.clone()) {
            continue;
        }
        let out = systemd_analyze(["syscall-filter", group.as_str()]);
        assert!(out.status.success(), "{group}: {}", text(&out));
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(str::trim)
        {
            if line.starts_with('@') {
                groups.push(line.to_owned());
            } else if !line.is_empty() && !line.starts_with('#') {
                calls.insert(line.to_owned());
            }
        }
    }
    calls
}

#[test]
fn systemd_unit_syscall_filter_allows_bpf_perf_event_open_and_setns_but_not_mount() {
    let settings = unit_settings(&read(&deploy("netwatch.service")));
    let filter = list(&settings, "Service", "SystemCallFilter");
    assert!(!filter.is_empty() && !filter.iter().any(|w| w.starts_with('~')));
    let allowed = syscalls(&filter);
    for call in [
        "bpf",
        "perf_event_open",
        "setns",
        "socket",
        "openat",
        "readlinkat",
        "mmap",
        "epoll_wait",
    ] {
        assert!(allowed.contains(call), "{call} is filtered out");
    }
    // tracefs is mounted by sys-kernel-tracing.mount, not by netwatch.
    assert!(!allowed.contains("mount"));
    // Blocked calls fail with EPERM: netwatch then says what failed, instead of dying
    // of SIGSYS.
    assert_eq!(
        single(&settings, "Service", "SystemCallErrorNumber"),
        Some("EPERM")
    );

    let without: BTreeSet<String> = ["@system-service".to_owned()].into();
    assert!(!syscalls(&without).contains("bpf"));
}
