//! The `--metrics` endpoint: scraped by a real Prometheus, and under a connection
//! flood with file descriptors running out.

use std::{fs, time::Duration};

use serde_json::Value;

use crate::support::{self, Actor, Netwatch, run};
use crate::{is_bind_of, require_root};

// ---------------------------------------------------------------------------------
// Fleet: metrics scraped by a real Prometheus.
// ---------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET on loopback; returns (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn prometheus_scrapes_a_provoked_eaddrinuse_and_promtool_accepts_the_exposition() {
    require_root();
    let port = free_port();
    let mut nw = Netwatch::start(&["-j", "--metrics", &port.to_string()]);
    // A distinctive comm, so the series is this test's own.
    let mut actor = Actor::spawn(
        r#"
import ctypes
ctypes.CDLL(None).prctl(15, b"nw-prom-test", 0, 0, 0)
hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen()
s = socket.socket()
try:
    s.bind(hold.getsockname())
except OSError as e:
    say(err=e.errno)
go()
"#,
    );
    assert_eq!(actor.read("err"), "98");
    nw.wait_json("the failure", |v| {
        v["kind"] == "bind" && v["pid"] == actor.pid()
    });
    actor.go();
    assert!(actor.wait().success());

    let (status, body) = http_get(port, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(
        body.contains(
            r#"netwatch_errors_total{class="EADDRINUSE",syscall="bind",comm="nw-prom-test"} 1"#
        ),
        "{body}"
    );
    let exposition =
        std::env::temp_dir().join(format!("netwatch-test-metrics-{}", std::process::id()));
    fs::write(&exposition, &body).unwrap();
    let (status, out, err) = support::run_program(
        "sh",
        &[
            "-c",
            &format!("promtool check metrics < {}", exposition.display()),
        ],
        &[],
    );
    fs::remove_file(&exposition).unwrap();
    assert!(status.success(), "promtool check metrics: {out} {err}");
    assert_eq!(
        http_get(port, "/nothing").0.split_whitespace().nth(1),
        Some("404")
    );

    // A real Prometheus scraping it every second.
    let dir = std::env::temp_dir().join(format!("netwatch-test-prometheus-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netwatch\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let web = free_port();
    let mut prometheus = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus (Debian package `prometheus`)");
    let query = "/api/v1/query?query=netwatch_errors_total%7Bclass%3D%22EADDRINUSE%22%2Ccomm%3D%22nw-prom-test%22%7D";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let seen = loop {
        if std::net::TcpStream::connect(("127.0.0.1", web)).is_ok() {
            let (_, body) = http_get(web, query);
            if let Ok(v) = serde_json::from_str::<Value>(&body)
                && v["data"]["result"][0]["value"][1] == "1"
            {
                break true;
            }
            last = body;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let _ = fs::remove_dir_all(&dir);
    assert!(
        seen,
        "Prometheus never reported the counter; last answer: {last}"
    );
    nw.finish();
}

#[test]
fn a_metrics_port_in_use_stops_netwatch_with_the_reason() {
    require_root();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (status, out, err) = run(&["--metrics", &format!("127.0.0.1:{port}")], &[]);
    assert_eq!(status.code(), Some(1), "{out} {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "netwatch: --metrics 127.0.0.1:{port}: cannot listen: Address already in use (os error 98)"
        )
    );
}

// ---------------------------------------------------------------------------------
// Metrics under load: a connection flood and file descriptors running out.
// ---------------------------------------------------------------------------------

/// Raise this process's RLIMIT_NOFILE soft limit to `want` (at most the hard limit).
fn raise_nofile(want: libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(
        rc,
        0,
        "getrlimit(RLIMIT_NOFILE): {}",
        std::io::Error::last_os_error()
    );
    if limit.rlim_cur < want {
        limit.rlim_cur = want.min(limit.rlim_max);
        // SAFETY: setrlimit reads the struct it is given.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(
            rc,
            0,
            "setrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        );
    }
    assert!(
        limit.rlim_cur >= want,
        "RLIMIT_NOFILE: the hard limit {} is below the {want} this test needs",
        limit.rlim_max
    );
}

/// One GET /metrics on a fresh connection, every step bounded; returns (status line,
/// body).
fn try_scrape(addr: std::net::SocketAddr) -> std::io::Result<(String, String)> {
    use std::io::{Read as _, Write as _};
    let step = Duration::from_secs(2);
    let mut s = std::net::TcpStream::connect_timeout(&addr, step)?;
    s.set_read_timeout(Some(step))?;
    s.set_write_timeout(Some(step))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

/// The metrics address the ready line names.
fn metrics_addr(nw: &Netwatch) -> std::net::SocketAddr {
    let ready = nw.ready_line();
    let port: u16 = ready
        .split_once("; metrics on http://127.0.0.1:")
        .and_then(|(_, rest)| rest.split_once("/metrics"))
        .and_then(|(port, _)| port.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in the ready line {ready:?}"));
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// Up to `n` idle connections to `addr`, bounded in time; and what stopped it early.
fn open_flood(
    addr: std::net::SocketAddr,
    n: usize,
) -> (Vec<std::net::TcpStream>, Option<std::io::Error>) {
    // Connecting outpaces netwatch's accepts: a SYN that finds the accept queue full
    // is dropped and sent again a second later, hence a timeout above that.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut flood = Vec::with_capacity(n);
    while flood.len() < n && std::time::Instant::now() < deadline {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(s) => flood.push(s),
            Err(e) => return (flood, Some(e)),
        }
    }
    (flood, None)
}

/// An open-files limit barely above netwatch's own descriptors: a connection flood
/// must not take the ones the trace needs (a per-CPU map lookup opens sysfs), which
/// once ended netwatch with EMFILE. The ring buffer keeps being read; scrapes answer
/// again once the flood has gone.
#[test]
fn metrics_connections_leave_netwatch_its_own_descriptors() {
    require_root();
    let mut nw = Netwatch::start_under(
        &["prlimit", "--nofile=80:80"],
        &["-j", "--metrics", "0"],
        &[],
    );
    let addr = metrics_addr(&nw);
    let (flood, stopped_by) = open_flood(addr, 300);
    assert!(
        flood.len() >= 100,
        "only {} connections ({stopped_by:?})",
        flood.len()
    );
    let mut actor = Actor::spawn("fail_bind()");
    assert_eq!(actor.read("err"), "99", "EADDRNOTAVAIL");
    let pid = actor.pid();
    assert!(actor.wait().success());
    nw.wait_json("the failed bind while out of descriptors", |v| {
        is_bind_of(v, pid, 99)
    });
    drop(flood);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match try_scrape(addr) {
            Ok((status, body)) if status.split_whitespace().nth(1) == Some("200") => {
                assert!(body.contains("netwatch_events"), "{body}");
                break;
            }
            other => assert!(
                std::time::Instant::now() < deadline,
                "no scrape answered within 15 s of the flood's end: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // A second later the lost-record counters are read again (a per-CPU map lookup
    // opens sysfs): the trace must still be running.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(support::alive(nw.pid()), "netwatch ended");
    let (status, _, stderr) = nw.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("--metrics: at most 1 connections at once"),
        "{stderr}"
    );
}

/// With 256 file descriptors and 2,000 idle connections to its metrics port, netwatch
/// keeps reading the ring buffer (an event arrives) and answers a scrape soon after:
/// connections over its cap are closed at once, idle ones time out, and failed
/// accepts back off instead of spinning the thread the reader shares.
#[test]
fn metrics_survive_a_connection_flood() {
    require_root();
    const FLOOD: usize = 2_000;
    // The flood's client ends are this process's descriptors.
    raise_nofile(FLOOD as libc::rlim_t + 100);
    let mut nw = Netwatch::start_under(
        &["prlimit", "--nofile=256:256"],
        &["-j", "--metrics", "0"],
        &[],
    );
    let addr = metrics_addr(&nw);
    let (flood, stopped_by) = open_flood(addr, FLOOD);
    // More connections than netwatch has descriptors: without the cap it runs out.
    assert!(
        flood.len() > 256,
        "only {} connections opened ({stopped_by:?}): no flood",
        flood.len()
    );

    // The ring buffer is still read: a failure during the flood is reported.
    let mut actor = Actor::spawn("fail_bind()\ngo()");
    assert_eq!(actor.read("err"), "99", "EADDRNOTAVAIL");
    let pid = actor.pid();
    nw.wait_json("the failed bind during the flood", |v| {
        is_bind_of(v, pid, 99)
    });
    actor.go();
    assert!(actor.wait().success());

    // And a scrape is answered, the flood still open.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut tries = 0;
    let body = loop {
        tries += 1;
        let last = match try_scrape(addr) {
            Ok((status, body)) if status.split_whitespace().nth(1) == Some("200") => break body,
            Ok((status, _)) => format!("status {status:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            std::time::Instant::now() < deadline,
            "no scrape answered within 15 s ({tries} tries, {} flood connections open); last: {last}",
            flood.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.contains("netwatch_events"), "{body}");
    assert!(
        body.contains(
            r#"netwatch_errors_total{class="EADDRNOTAVAIL",syscall="bind",comm="python3"}"#
        ),
        "{body}"
    );
    drop(flood);
    nw.finish();
}
