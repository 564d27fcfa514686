//! The deployment files in deploy/, checked without privileges: the systemd unit with
//! systemd-analyze (verify, security, syscall-filter), the DaemonSet manifest against
//! the Kubernetes schema with kubernetes-validate (from PyPI, installed on first use
//! into the tools directory of `cargo xtask`), and both for what netwatch needs.
//! Each check is also run on a broken copy, to show that it can fail.

use std::{
    collections::BTreeSet,
    env,
    ffi::OsStr,
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use serde_json::{Value, json};

/// What the unit runs.
const EXEC_START: &str = "/usr/local/bin/netwatch --metrics 127.0.0.1:9464 --quiet";
const METRICS_PORT: u16 = 9464;
/// The capabilities netwatch uses, as Kubernetes names them (systemd: CAP_ before
/// each). Why each is needed is said in both files.
const CAPABILITIES: [&str; 5] = [
    "BPF",
    "PERFMON",
    "SYS_ADMIN",
    "SYS_PTRACE",
    "DAC_READ_SEARCH",
];
/// Pinned: it ships the Kubernetes JSON schemas of each version it knows.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The oldest Kubernetes the manifest is for (securityContext.appArmorProfile is
/// 1.30's) and the newest that validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

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

// ---------------------------------------------------------------------------------
// systemd

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

// ---------------------------------------------------------------------------------
// Kubernetes

/// The Python of a virtual environment holding kubernetes-validate (and PyYAML, which
/// it uses), installed from PyPI on first use into `$NETWATCH_TOOLS_DIR`, else
/// `~/.cache/netwatch/tools`, like the tools of `cargo xtask setup`.
fn validator_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let tools = env::var_os("NETWATCH_TOOLS_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env::var_os("HOME").expect("HOME is not set"))
                    .join(".cache/netwatch/tools")
            });
        let name = KUBERNETES_VALIDATE.replace("==", "-");
        let venv = tools.join(&name);
        let done = |dir: &Path| dir.join(".installed").exists();
        if !done(&venv) {
            fs::create_dir_all(&tools).unwrap();
            // Built aside and renamed into place (the venv's python finds its
            // packages relative to itself), so that an interrupted install is redone.
            let tmp = tools.join(format!(".{name}.{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            let out = output(
                Command::new("python3").args(["-m", "venv"]).arg(&tmp),
                "python3 -m venv (Debian packages: python3, python3-venv)",
            );
            assert!(out.status.success(), "python3 -m venv: {}", text(&out));
            let out = output(
                Command::new(tmp.join("bin/python3"))
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "--no-input",
                    ])
                    .arg(KUBERNETES_VALIDATE)
                    .env_remove("PYTHONPATH")
                    .env_remove("PYTHONHOME"),
                "pip",
            );
            assert!(
                out.status.success(),
                "pip install {KUBERNETES_VALIDATE}: {}",
                text(&out)
            );
            fs::write(tmp.join(".installed"), "").unwrap();
            if !done(&venv) {
                let _ = fs::remove_dir_all(&venv);
                fs::rename(&tmp, &venv).unwrap();
            }
            let _ = fs::remove_dir_all(&tmp);
        }
        venv.join("bin/python3")
    })
}

fn python(args: &[&OsStr]) -> Output {
    output(
        Command::new(validator_python())
            .args(args)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME"),
        "python",
    )
}

fn kubernetes_validate(version: &str, manifest: &Path) -> Output {
    python(&[
        OsStr::new("-m"),
        OsStr::new("kubernetes_validate"),
        OsStr::new("--strict"),
        OsStr::new("-k"),
        OsStr::new(version),
        manifest.as_os_str(),
    ])
}

#[test]
fn daemonset_manifest_is_valid_against_the_kubernetes_schema() {
    let manifest = deploy("netwatch-daemonset.yaml");
    for version in KUBERNETES_VERSIONS {
        let out = kubernetes_validate(version, &manifest);
        let said = text(&out);
        assert!(out.status.success(), "Kubernetes {version}:\n{said}");
        let minor = version.rsplit_once('.').unwrap().0;
        for resource in ["namespace/netwatch", "daemonset/netwatch"] {
            assert!(
                said.contains(&format!(
                    "passed for resource {resource} against version {minor}"
                )),
                "Kubernetes {version}: {resource} not validated:\n{said}"
            );
        }
    }
}

#[test]
fn kubernetes_validate_rejects_a_misspelt_field() {
    let dir = scratch("k8s-misspelt");
    let manifest = dir.join("netwatch-daemonset.yaml");
    let yaml = read(&deploy("netwatch-daemonset.yaml"));
    assert!(yaml.contains("hostPID: true"));
    fs::write(&manifest, yaml.replace("hostPID: true", "hostPid: true")).unwrap();
    let out = kubernetes_validate(KUBERNETES_VERSIONS[1], &manifest);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("'hostPid' was unexpected"),
        "{}",
        text(&out)
    );
}

/// The manifest's documents, parsed by PyYAML (as kubernetes-validate does).
fn manifest_documents() -> Vec<Value> {
    let out = python(&[
        OsStr::new("-c"),
        OsStr::new(
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ),
        deploy("netwatch-daemonset.yaml").as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn str_of(v: &Value) -> Option<&str> {
    v.as_str()
}

/// What netwatch needs from its DaemonSet.
fn daemonset_problems(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    let sets: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "DaemonSet").collect();
    if sets.len() != 1 {
        return vec![format!("{} DaemonSets, not one", sets.len())];
    }
    let ds = sets[0];
    expect(ds["apiVersion"] == "apps/v1", "apiVersion apps/v1");

    if let Some(ns) = str_of(&ds["metadata"]["namespace"]) {
        let allowed = docs.iter().any(|d| {
            d["kind"] == "Namespace"
                && d["metadata"]["name"] == ns
                && d["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
        });
        expect(
            allowed,
            "namespace created with pod-security.kubernetes.io/enforce: privileged",
        );
    }

    let template = &ds["spec"]["template"];
    let selector = ds["spec"]["selector"]["matchLabels"].as_object();
    expect(
        selector.is_some_and(|labels| {
            !labels.is_empty()
                && labels
                    .iter()
                    .all(|(k, v)| &template["metadata"]["labels"][k] == v)
        }),
        "selector matchLabels matching the pod template's labels",
    );
    let annotations = &template["metadata"]["annotations"];
    expect(
        annotations["prometheus.io/scrape"] == "true",
        "annotation prometheus.io/scrape: \"true\"",
    );
    expect(
        annotations["prometheus.io/port"] == METRICS_PORT.to_string().as_str(),
        "annotation prometheus.io/port: \"9464\"",
    );
    expect(
        annotations["prometheus.io/path"] == "/metrics",
        "annotation prometheus.io/path: /metrics",
    );

    let pod = &template["spec"];
    expect(pod["hostPID"] == true, "hostPID: true");
    expect(pod["hostNetwork"] != true, "no hostNetwork");

    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    let Some(c) = containers.iter().find(|c| c["name"] == "netwatch") else {
        problems.push("a container named netwatch".into());
        return problems;
    };
    expect(
        str_of(&c["image"]).is_some_and(|i| !i.is_empty()),
        "an image",
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(str_of)
        .collect();
    let metrics = args
        .iter()
        .position(|a| *a == "--metrics")
        .and_then(|i| args.get(i + 1))
        .and_then(|a| a.parse::<SocketAddr>().ok());
    expect(
        metrics.is_some_and(|a| a.port() == METRICS_PORT && a.ip().is_unspecified()),
        "args: --metrics 0.0.0.0:9464 (reachable from Prometheus)",
    );
    expect(args.contains(&"--quiet"), "args: --quiet");
    expect(
        c["ports"].as_array().into_iter().flatten().any(|p| {
            p["containerPort"] == METRICS_PORT
                && p["name"] == "metrics"
                && matches!(str_of(&p["protocol"]), None | Some("TCP"))
        }),
        "containerPort 9464 named metrics",
    );

    let sc = &c["securityContext"];
    expect(sc["privileged"] != true, "not privileged");
    let added: BTreeSet<&str> = sc["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(str_of)
        .collect();
    expect(
        added == CAPABILITIES.into(),
        "capabilities add: exactly netwatch's (BPF, PERFMON, ...)",
    );
    expect(
        sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.contains(&json!("ALL"))),
        "capabilities drop ALL",
    );
    expect(
        sc["runAsUser"] == 0,
        "runAsUser: 0 (added capabilities apply to uid 0 only)",
    );
    expect(
        !(added.contains("SYS_ADMIN") && sc["allowPrivilegeEscalation"] == false),
        "no allowPrivilegeEscalation: false with SYS_ADMIN (the API server refuses it)",
    );
    expect(
        sc["readOnlyRootFilesystem"] == true,
        "readOnlyRootFilesystem: true",
    );

    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    for path in ["/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup"] {
        let mounted = c["volumeMounts"].as_array().into_iter().flatten().any(|m| {
            m["mountPath"] == path
                && m["readOnly"] == true
                && volumes
                    .iter()
                    .any(|v| v["name"] == m["name"] && v["hostPath"]["path"] == path)
        });
        expect(mounted, &format!("{path} mounted read-only from the host"));
    }
    problems
}

#[test]
fn daemonset_manifest_has_what_netwatch_needs() {
    let docs = manifest_documents();
    assert_eq!(daemonset_problems(&docs), Vec::<String>::new());

    let daemonset = docs.iter().position(|d| d["kind"] == "DaemonSet").unwrap();
    let pod = "/spec/template/spec";
    let container = "/spec/template/spec/containers/0";
    let sc = format!("{container}/securityContext");
    let annotations = "/spec/template/metadata/annotations";
    for (at, key, problem) in [
        (pod, "hostPID", "hostPID"),
        (container, "image", "image"),
        (&sc, "runAsUser", "runAsUser"),
        (&sc, "readOnlyRootFilesystem", "readOnlyRootFilesystem"),
        (annotations, "prometheus.io/scrape", "prometheus.io/scrape"),
        (annotations, "prometheus.io/port", "prometheus.io/port"),
        (annotations, "prometheus.io/path", "prometheus.io/path"),
        (container, "ports", "containerPort"),
        (container, "args", "--metrics"),
        (pod, "volumes", "/sys/kernel/btf"),
        (pod, "volumes", "/sys/kernel/tracing"),
        (pod, "volumes", "/sys/fs/cgroup"),
        ("/spec/selector", "matchLabels", "selector"),
    ] {
        let mut docs = docs.clone();
        docs[daemonset]
            .pointer_mut(at)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{at}"))
            .remove(key)
            .unwrap_or_else(|| panic!("{at}/{key}"));
        let problems = daemonset_problems(&docs);
        assert!(
            problems.iter().any(|p| p.contains(problem)),
            "without {at}/{key}: {problems:?}"
        );
    }

    for (at, value, problem) in [
        (format!("{sc}/privileged"), json!(true), "not privileged"),
        (
            format!("{sc}/capabilities/add"),
            json!(["BPF", "SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"]),
            "capabilities add",
        ),
        (format!("{sc}/capabilities/drop"), json!([]), "drop ALL"),
        (
            format!("{container}/args"),
            json!(["--metrics", "127.0.0.1:9464", "--quiet"]),
            "--metrics",
        ),
        (
            format!("{container}/args"),
            json!(["--metrics", "0.0.0.0:9464"]),
            "--quiet",
        ),
        (
            format!("{container}/volumeMounts/0/readOnly"),
            json!(false),
            "/sys/kernel/btf",
        ),
        (format!("{pod}/hostNetwork"), json!(true), "hostNetwork"),
        (format!("{pod}/hostPID"), json!(false), "hostPID"),
        (
            "/apiVersion".to_owned(),
            json!("extensions/v1beta1"),
            "apiVersion",
        ),
        (
            "/spec/template/metadata/labels".to_owned(),
            json!({"app": "other"}),
            "selector",
        ),
        (
            "/spec/template/metadata/annotations/prometheus.io~1port".to_owned(),
            json!("9100"),
            "prometheus.io/port",
        ),
    ] {
        let mut docs = docs.clone();
        let (parent, key) = at.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/");
        docs[daemonset]
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{parent}"))
            .insert(key, value.clone());
        let problems = daemonset_problems(&docs);
        assert!(
            problems.iter().any(|p| p.contains(problem)),
            "{at} = {value}: {problems:?}"
        );
    }

    let mut docs = docs.clone();
    docs.retain(|d| d["kind"] != "Namespace");
    assert!(
        daemonset_problems(&docs)
            .iter()
            .any(|p| p.contains("pod-security"))
    );
}
