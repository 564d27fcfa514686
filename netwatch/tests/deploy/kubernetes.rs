//! The DaemonSet manifest, deploy/netwatch-daemonset.yaml: valid against the
//! Kubernetes schema (kubernetes-validate), and what netwatch needs from it.

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

use crate::{CAPABILITIES, deploy, output, read, scratch, text};

const METRICS_PORT: u16 = 9464;
/// Pinned: it ships the Kubernetes JSON schemas of each version it knows.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The oldest Kubernetes the manifest is for (securityContext.appArmorProfile is
/// 1.30's) and the newest that validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

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
