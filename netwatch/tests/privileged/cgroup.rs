//! Containers: cgroup attribution and the --cgroup filter.

use std::fs;

use serde_json::Value;

use crate::require_root;
use crate::support::{Actor, Netwatch, run};

/// A cgroup of the test's own, removed on drop (after its processes are gone).
struct TestCgroup {
    dir: std::path::PathBuf,
    name: String,
}

impl TestCgroup {
    fn new() -> Self {
        let name = format!("netwatch-test-{}", std::process::id());
        let dir = netwatch::cgroup::mount()
            .expect("a cgroup v2 hierarchy")
            .join(&name);
        let _ = fs::remove_dir(&dir);
        fs::create_dir(&dir).unwrap();
        Self { dir, name }
    }

    fn enter(&self, pid: u32) {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

const ONE_BIND_FAILURE: &str = r#"
go()
fail_bind()
"#;

#[test]
fn events_name_their_cgroup_and_the_cgroup_filter_keeps_the_rest_out() {
    require_root();
    let cg = TestCgroup::new();
    let mut inside = Actor::spawn(ONE_BIND_FAILURE);
    let mut outside = Actor::spawn(ONE_BIND_FAILURE);
    cg.enter(inside.pid());
    let mut nw = Netwatch::start(&["-j", "--cgroup", &format!("/{}", cg.name)]);
    let mut text = Netwatch::start(&[]);
    inside.go();
    outside.go();
    assert_eq!(inside.read("err"), "99");
    assert_eq!(outside.read("err"), "99");
    let (ipid, opid) = (inside.pid(), outside.pid());
    assert!(inside.wait().success() && outside.wait().success());

    let v = nw.wait_json("the event inside the cgroup", |v| {
        v["kind"] == "bind" && v["pid"] == ipid
    });
    assert_eq!(v["cgroup"]["path"], format!("/{}", cg.name), "{v}");
    assert!(v["cgroup"]["id"].as_u64().unwrap() > 1);
    assert!(
        nw.ready_line().contains(&format!("in cgroup /{}", cg.name)),
        "{}",
        nw.ready_line()
    );
    // Stopping drains everything the kernel recorded.
    let (status, seen, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        seen.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .all(|v| v["pid"] != opid),
        "an event from outside the cgroup: {seen:?}"
    );
    // Text output tags the line with the cgroup.
    let line = text.wait_line("the text line", |l| {
        l.split_whitespace().nth(1) == Some(&ipid.to_string())
    });
    assert!(line.ends_with(&format!("[cgroup /{}]", cg.name)), "{line}");
    text.finish();

    let (status, _, err) = run(&["--cgroup", "/netwatch-no-such-cgroup"], &[]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.starts_with("netwatch: --cgroup /netwatch-no-such-cgroup: no such cgroup under "),
        "{err}"
    );
}
