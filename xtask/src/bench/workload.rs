//! Workload overhead: nginx (sendfile on, one worker) on loopback, driven by wrk, in
//! alternating runs untraced / netwatch / bpftrace-equivalent / strace.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::procfs::{self, OtherLoad, ProgStat, children, count_anon_fds, cpus_allowed};
use super::procs::{self, Lines, Proc, Stop, kill_if_named, pin_command};

/// Size of the file nginx serves (with sendfile).
pub const FILE_SIZE: usize = 4096;

/// The tracepoints netwatch attaches that the bpftrace-equivalent attaches too.
pub const SYSCALL_EXITS: &[&str] = &[
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "write",
    "writev",
    "pwritev",
    "pwritev2",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "sendfile64",
    "splice",
    "read",
    "readv",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
];
const OTHER_TRACEPOINTS: usize = 4;

/// strace's syscall selection (`-e trace=`).
pub const STRACE_FILTER: &str = "trace=network,read,write,writev,sendfile";

/// The bpftrace program: the same tracepoints as netwatch, the same in-kernel errno
/// filter (`ret < 0`), counts per pid in maps (printed when bpftrace exits).
pub fn bpftrace_script() -> String {
    let exits: Vec<String> = SYSCALL_EXITS
        .iter()
        .map(|s| format!("tracepoint:syscalls:sys_exit_{s}"))
        .collect();
    format!(
        "BEGIN {{ printf(\"bench: ready\\n\"); }}\n\
         {} /args->ret < 0/ {{ @[pid, args->ret] = count(); }}\n\
         tracepoint:tcp:tcp_receive_reset {{ @rst_in[pid] = count(); }}\n\
         tracepoint:tcp:tcp_send_reset {{ @rst_out[pid] = count(); }}\n\
         tracepoint:signal:signal_generate {{ @sig[pid, args->sig] = count(); }}\n\
         tracepoint:sched:sched_process_exit {{ @exit[pid] = count(); }}\n",
        exits.join(",\n")
    )
}

/// The floor: one syscall tracepoint that neither workload's calls reach
/// (`sys_exit_bind`). Any syscall tracepoint puts every syscall of the host on the
/// slow path of syscall exit (`syscall_exit_work`); this measures that alone, which
/// every tracer of syscalls pays, netwatch and the bpftrace-equivalent included.
pub fn floor_script() -> String {
    "BEGIN { printf(\"bench: ready\\n\"); }\n\
     tracepoint:syscalls:sys_exit_bind /args->ret < 0/ { @[pid] = count(); }\n"
        .to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    KeepAlive,
    Close,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::KeepAlive, Variant::Close];

    pub fn name(self) -> &'static str {
        match self {
            Variant::KeepAlive => "keep-alive",
            Variant::Close => "connection-close",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracer {
    Untraced,
    Netwatch,
    Bpftrace,
    /// [`floor_script`].
    Floor,
    Strace,
}

impl Tracer {
    /// One round: A B C D E.
    pub const ROUND: [Tracer; 5] = [
        Tracer::Untraced,
        Tracer::Netwatch,
        Tracer::Bpftrace,
        Tracer::Floor,
        Tracer::Strace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tracer::Untraced => "untraced",
            Tracer::Netwatch => "netwatch",
            Tracer::Bpftrace => "bpftrace-equivalent",
            Tracer::Floor => "floor (one syscall tracepoint)",
            Tracer::Strace => "strace",
        }
    }
}

pub struct Config {
    pub duration: Duration,
    pub connections: u32,
    pub rounds: usize,
    pub worker_cpu: Option<usize>,
    pub wrk_cpu: Option<usize>,
    pub tracer_cpu: Option<usize>,
    pub netwatch: PathBuf,
    pub dir: PathBuf,
    /// The longest a run waits for a quiet host.
    pub quiet_wait: Duration,
}

/// nginx with a config of its own in `dir`, listening on 127.0.0.1:`port` only.
pub struct Nginx {
    master: Proc,
    pub worker: i32,
    pub port: u16,
    dir: PathBuf,
}

fn file_body() -> Vec<u8> {
    (0..FILE_SIZE).map(|i| b'a' + (i % 26) as u8).collect()
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Nginx {
    pub fn start(dir: &Path, worker_cpu: Option<usize>) -> Result<Nginx> {
        let www = dir.join("www");
        fs::create_dir_all(&www).with_context(|| format!("creating {}", www.display()))?;
        // The worker runs as an unprivileged user: it must be able to read the file.
        for d in [dir, www.as_path()] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        }
        fs::write(www.join("f"), file_body())?;
        let port = free_port()?;
        let d = dir.display();
        let affinity = worker_cpu
            .map(|c| format!("worker_cpu_affinity 1{};\n", "0".repeat(c)))
            .unwrap_or_default();
        let conf = format!(
            "daemon off;\n\
             master_process on;\n\
             worker_processes 1;\n\
             {affinity}\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
             \x20 access_log off;\n\
             \x20 sendfile on;\n\
             \x20 keepalive_requests 1000000000;\n\
             \x20 keepalive_timeout 65;\n\
             \x20 default_type application/octet-stream;\n\
             \x20 client_body_temp_path {d}/client_body;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   root {d}/www;\n\
             \x20 }}\n\
             }}\n"
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf)?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut master = Proc::spawn("nginx", cmd)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let worker = loop {
            procs::check_interrupted()?;
            if let Some(s) = master.exited() {
                let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!(
                    "nginx exited at start ({s}):{}\n{log}",
                    master.output_tail()
                );
            }
            let kids = children(master.pid);
            if let [w] = kids[..]
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                break w;
            }
            if Instant::now() > deadline {
                bail!("nginx did not start its worker and listen on 127.0.0.1:{port} within 15 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let nginx = Nginx {
            master,
            worker,
            port,
            dir: dir.to_owned(),
        };
        nginx.check_response()?;
        Ok(nginx)
    }

    /// One GET of the file, which must come back whole with status 200.
    fn check_response(&self) -> Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /f HTTP/1.0\r\nHost: bench\r\n\r\n")?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        let text = String::from_utf8_lossy(&resp);
        let whole = resp.len() > FILE_SIZE && resp.ends_with(&file_body());
        if !text.starts_with("HTTP/1.1 200") || !whole {
            let head: String = text.chars().take(300).collect();
            bail!("nginx's answer to GET /f is not the file:\n{head}");
        }
        Ok(())
    }

    pub fn stop(mut self) -> Result<()> {
        let (status, _) = self.master.stop(libc::SIGTERM, Duration::from_secs(15))?;
        kill_if_named(self.worker, "nginx");
        if !status.success() {
            let log = fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
            bail!("nginx exited with {status}:\n{log}");
        }
        Ok(())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master (Proc) is stopped after this; its worker must not outlive it.
        self.master.signal(libc::SIGTERM);
        self.master.wait_timeout(Duration::from_secs(5));
        kill_if_named(self.worker, "nginx");
    }
}

/// A tracer attached and ready.
pub struct Attached {
    pub proc: Proc,
    pub tracer: Tracer,
    pub ready: Duration,
    pub out: Option<PathBuf>,
}

/// Starts `tracer` (nothing for Untraced) and waits until it is attached.
pub fn start_tracer(
    tracer: Tracer,
    cfg: &Config,
    nginx_worker: i32,
    tag: &str,
) -> Result<Option<Attached>> {
    let (mut cmd, out) = match tracer {
        Tracer::Untraced => return Ok(None),
        Tracer::Netwatch => {
            let out = cfg.dir.join(format!("netwatch-{tag}.out"));
            let mut c = Command::new(&cfg.netwatch);
            c.stdout(File::create(&out)?).stderr(Stdio::piped());
            (c, Some(out))
        }
        Tracer::Bpftrace | Tracer::Floor => {
            let (file, text) = if tracer == Tracer::Bpftrace {
                ("equivalent.bt", bpftrace_script())
            } else {
                ("floor.bt", floor_script())
            };
            let script = cfg.dir.join(file);
            fs::write(&script, text)?;
            let mut c = Command::new("bpftrace");
            c.arg(&script).stdout(Stdio::piped()).stderr(Stdio::piped());
            (c, None)
        }
        Tracer::Strace => {
            let mut c = Command::new("strace");
            c.args(["-f", "-p", &nginx_worker.to_string(), "-e", STRACE_FILTER])
                .args(["-o", "/dev/null"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            (c, None)
        }
    };
    cmd.stdin(Stdio::null());
    if let Some(cpu) = cfg.tracer_cpu {
        pin_command(&mut cmd, cpu);
    }
    let mut proc = Proc::spawn(tracer.name(), cmd)?;
    let timeout = Duration::from_secs(60);
    let ready_line = match tracer {
        Tracer::Untraced => unreachable!(),
        Tracer::Netwatch => wait_line(&mut proc, false, timeout, |l| {
            l.starts_with("netwatch: ready")
        })?,
        Tracer::Bpftrace | Tracer::Floor => {
            let t = wait_line(&mut proc, true, timeout, |l| l == "bench: ready")?;
            // BEGIN runs once every probe is attached; check the perf events anyway.
            let want = if tracer == Tracer::Bpftrace {
                SYSCALL_EXITS.len() + OTHER_TRACEPOINTS
            } else {
                1
            };
            let have = count_anon_fds(proc.pid, "[perf_event]");
            if have < want {
                bail!("bpftrace said ready with {have} perf events open, expected {want}+");
            }
            t
        }
        Tracer::Strace => {
            let want = format!("strace: Process {nginx_worker} attached");
            wait_line(&mut proc, false, timeout, |l| l == want)?
        }
    };
    Ok(Some(Attached {
        ready: ready_line.saturating_duration_since(proc.spawned_at),
        proc,
        tracer,
        out,
    }))
}

/// Waits for a line on stdout (`on_stdout`) or stderr; fails with the output if the
/// process exits or the time runs out first.
fn wait_line(
    proc: &mut Proc,
    on_stdout: bool,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Result<Instant> {
    let lines: &mut Option<Lines> = if on_stdout {
        &mut proc.stdout
    } else {
        &mut proc.stderr
    };
    let hit = match lines {
        Some(l) => l.wait_for(pred, timeout)?,
        None => None,
    };
    match hit {
        Some((t, _)) => Ok(t),
        None => {
            let status = proc.wait_timeout(Duration::from_millis(200));
            let tail = proc.output_tail();
            bail!(
                "{} did not get ready within {timeout:?} ({}):{tail}",
                proc.name,
                status.map_or("still running".to_owned(), |s| s.to_string()),
            )
        }
    }
}

/// How an attached tracer ended.
pub struct Stopped {
    pub stop: Duration,
    pub status_ok: bool,
    pub status: String,
}

pub fn stop_tracer(mut a: Attached) -> Result<Stopped> {
    const STOP_TIMEOUT: Duration = Duration::from_secs(60);
    // A tracer that hangs on its way out is killed and reported; the run it traced
    // was measured before the signal and stands.
    let (mut text, status_ok, took) = match a.proc.stop_or_kill(libc::SIGINT, STOP_TIMEOUT)? {
        // strace detaches, then kills itself with the SIGINT it got.
        Stop::Exited(status, took) => (
            status.to_string(),
            status.success()
                || (a.tracer == Tracer::Strace && status.signal() == Some(libc::SIGINT)),
            took,
        ),
        Stop::Killed(status) => (
            format!("no exit within {STOP_TIMEOUT:?} of SIGINT, killed ({status})"),
            false,
            STOP_TIMEOUT,
        ),
    };
    if !status_ok {
        text.push_str(&a.proc.output_tail());
    }
    Ok(Stopped {
        stop: took,
        status_ok,
        status: text,
    })
}

pub struct WrkResult {
    pub rps: f64,
    pub requests: u64,
    pub socket_errors: Option<String>,
    pub non_2xx: u64,
}

pub fn run_wrk(cfg: &Config, port: u16, variant: Variant, duration: Duration) -> Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c", &cfg.connections.to_string()])
        .arg("-d")
        .arg(format!("{}s", duration.as_secs().max(1)))
        .args(["--timeout", "5s"]);
    if variant == Variant::Close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/f"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cpu) = cfg.wrk_cpu {
        pin_command(&mut cmd, cpu);
    }
    let mut p = Proc::spawn("wrk", cmd)?;
    let status = p.wait_exit(duration + Duration::from_secs(30))?;
    if let Some(l) = p.stdout.as_mut() {
        l.finish(Duration::from_secs(2));
    }
    let out = p.stdout.as_ref().map(Lines::text).unwrap_or_default();
    if !status.success() {
        bail!("wrk failed ({status}):{}", p.output_tail());
    }
    parse_wrk(&out).with_context(|| format!("wrk's output:\n{out}"))
}

pub fn parse_wrk(out: &str) -> Result<WrkResult> {
    let mut rps = None;
    let mut requests = None;
    let mut socket_errors = None;
    let mut non_2xx = 0;
    for l in out.lines().map(str::trim) {
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            socket_errors = Some(v.trim().to_owned());
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some((n, rest)) = l.split_once(" requests in ")
            && rest.contains(" read")
        {
            requests = n.trim().parse().ok();
        }
    }
    Ok(WrkResult {
        rps: rps.context("no Requests/sec line")?,
        requests: requests.context("no `N requests in` line")?,
        socket_errors,
        non_2xx,
    })
}

/// One measured run.
pub struct Run {
    pub variant: Variant,
    pub tracer: Tracer,
    pub round: usize,
    pub rps: f64,
    pub requests: u64,
    pub socket_errors: Option<String>,
    pub non_2xx: u64,
    pub ready: Option<Duration>,
    pub stop: Option<Duration>,
    pub tracer_status: Option<String>,
    pub tracer_status_ok: bool,
    pub tracer_cpus: Option<String>,
    pub output_lines: Option<u64>,
    pub foreign: Vec<String>,
    /// How long the run waited for a quiet host before starting.
    pub quiet_wait: Duration,
    /// CPU used by other processes during the wrk run, in % of all CPUs.
    pub other_cpu_pct: f64,
    pub tracer_hwm_kib: Option<u64>,
}

/// What netwatch's programs cost per request in one variant: one more netwatch run,
/// with kernel.bpf_stats_enabled=1, which is not counted in the ratios (the statistics
/// themselves cost each program run a little).
pub struct ProgramCost {
    pub variant: Variant,
    pub requests: u64,
    pub progs: Vec<ProgStat>,
}

impl ProgramCost {
    /// BPF time of all netwatch's programs per request.
    pub fn ns_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| {
            self.progs.iter().map(|p| p.run_time_ns).sum::<u64>() as f64 / self.requests as f64
        })
    }
}

pub fn program_cost(cfg: &Config, nginx: &Nginx, variant: Variant) -> Result<ProgramCost> {
    procfs::wait_for_quiet(cfg.quiet_wait)?;
    let _stats = procfs::BpfStats::enable()?;
    let tag = format!("{}-stats", variant.name());
    let attached = start_tracer(Tracer::Netwatch, cfg, nginx.worker, &tag)?
        .context("netwatch did not start")?;
    procs::sleep(Duration::from_millis(300))?;
    let wrk = run_wrk(cfg, nginx.port, variant, cfg.duration.min(STATS_RUN));
    let progs = procfs::prog_stats(attached.proc.pid);
    let out = attached.out.clone();
    stop_tracer(attached)?;
    if let Some(p) = out {
        let _ = fs::remove_file(p);
    }
    Ok(ProgramCost {
        variant,
        requests: wrk?.requests,
        progs,
    })
}

/// The longest program-cost run.
pub const STATS_RUN: Duration = Duration::from_secs(5);

pub fn one_run(
    cfg: &Config,
    nginx: &Nginx,
    variant: Variant,
    tracer: Tracer,
    round: usize,
) -> Result<Run> {
    let quiet = procfs::wait_for_quiet(cfg.quiet_wait)?;
    let tag = format!("{}-{round}", variant.name());
    let attached = start_tracer(tracer, cfg, nginx.worker, &tag)?;
    let tracer_cpus = attached.as_ref().map(|a| cpus_allowed(a.proc.pid));
    let ready = attached.as_ref().map(|a| a.ready);
    // Let the tracer settle (netwatch reads /proc once at start).
    procs::sleep(Duration::from_millis(300))?;
    let mut live = vec![nginx.worker];
    live.extend(attached.as_ref().map(|a| a.proc.pid));
    let load = OtherLoad::start(&live);
    let wrk = run_wrk(cfg, nginx.port, variant, cfg.duration);
    let other_cpu_pct = load.percent();
    let tracer_hwm_kib = attached
        .as_ref()
        .and_then(|a| procfs::status_kib(a.proc.pid, "VmHWM").ok());
    let (stop, status, status_ok, out) = match attached {
        Some(a) => {
            let out = a.out.clone();
            let s = stop_tracer(a)?;
            (Some(s.stop), Some(s.status), s.status_ok, out)
        }
        None => (None, None, true, None),
    };
    let wrk = wrk?;
    let output_lines = match out {
        Some(p) => {
            let n = fs::read(&p)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
                .ok();
            let _ = fs::remove_file(&p);
            n
        }
        None => None,
    };
    Ok(Run {
        variant,
        tracer,
        round,
        rps: wrk.rps,
        requests: wrk.requests,
        socket_errors: wrk.socket_errors,
        non_2xx: wrk.non_2xx,
        ready,
        stop,
        tracer_status: status,
        tracer_status_ok: status_ok,
        tracer_cpus,
        output_lines,
        foreign: quiet.foreign,
        quiet_wait: quiet.waited,
        other_cpu_pct,
        tracer_hwm_kib,
    })
}

/// Ratios of each traced run to the mean of the untraced runs on either side of it
/// (the round's own, and the next round's or the final one).
pub fn ratios(runs: &[Run], variant: Variant, tracer: Tracer) -> Vec<f64> {
    ratios_where(runs, variant, tracer, |_| true)
}

/// The same, over the triples (untraced, traced, untraced) whose runs all satisfy `ok`.
pub fn ratios_where(
    runs: &[Run],
    variant: Variant,
    tracer: Tracer,
    ok: impl Fn(&Run) -> bool,
) -> Vec<f64> {
    let base = |round: usize| {
        runs.iter()
            .find(|r| r.variant == variant && r.tracer == Tracer::Untraced && r.round == round)
    };
    runs.iter()
        .filter(|r| r.variant == variant && r.tracer == tracer)
        .filter_map(|r| {
            let (before, after) = (base(r.round)?, base(r.round + 1)?);
            (ok(r) && ok(before) && ok(after)).then(|| r.rps / ((before.rps + after.rps) / 2.0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed() {
        let out = "Running 5s test @ http://127.0.0.1:18080/f\n  1 threads and 32 connections\n\
                   \x20 152608 requests in 5.03s, 633.24MB read\n\
                   \x20 Socket errors: connect 0, read 3, write 0, timeout 0\n\
                   Requests/sec:  30356.91\nTransfer/sec:    125.96MB\n";
        let r = parse_wrk(out).unwrap();
        assert_eq!(r.rps, 30356.91);
        assert_eq!(r.requests, 152608);
        assert_eq!(
            r.socket_errors.as_deref(),
            Some("connect 0, read 3, write 0, timeout 0")
        );
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn the_floor_holds_one_syscall_tracepoint_and_says_ready() {
        let s = floor_script();
        assert_eq!(s.matches("tracepoint:").count(), 1, "{s}");
        assert!(s.contains("tracepoint:syscalls:sys_exit_bind "), "{s}");
        assert!(s.contains(r#"printf("bench: ready\n")"#), "{s}");
    }

    #[test]
    fn bpftrace_script_has_every_tracepoint() {
        let s = bpftrace_script();
        assert_eq!(s.matches("tracepoint:syscalls:sys_exit_").count(), 19);
        assert!(s.contains("sys_exit_sendfile64"));
        assert_eq!(s.matches("tracepoint:").count(), 19 + OTHER_TRACEPOINTS);
        assert!(s.contains("/args->ret < 0/ { @[pid, args->ret] = count(); }"));
    }

    #[test]
    fn program_cost_is_all_programs_over_the_requests() {
        let prog = |run_time_ns| ProgStat {
            id: 1,
            prog_type: "tracepoint".to_owned(),
            name: "p".to_owned(),
            run_time_ns,
            run_cnt: 10,
        };
        let mut c = ProgramCost {
            variant: Variant::Close,
            requests: 4,
            progs: vec![prog(1000), prog(600)],
        };
        assert_eq!(c.ns_per_request(), Some(400.0));
        c.requests = 0;
        assert_eq!(c.ns_per_request(), None, "wrk made no request");
    }

    #[test]
    fn ratio_uses_the_untraced_runs_on_either_side() {
        let run = |tracer, round, rps| Run {
            variant: Variant::KeepAlive,
            tracer,
            round,
            rps,
            requests: 0,
            socket_errors: None,
            non_2xx: 0,
            ready: None,
            stop: None,
            tracer_status: None,
            tracer_status_ok: true,
            tracer_cpus: None,
            output_lines: None,
            foreign: vec![],
            quiet_wait: Duration::ZERO,
            other_cpu_pct: 0.0,
            tracer_hwm_kib: None,
        };
        let runs = [
            run(Tracer::Untraced, 0, 100.0),
            run(Tracer::Netwatch, 0, 99.0),
            run(Tracer::Untraced, 1, 98.0),
            run(Tracer::Netwatch, 1, 49.0),
            run(Tracer::Untraced, 2, 100.0),
        ];
        assert_eq!(
            ratios(&runs, Variant::KeepAlive, Tracer::Netwatch),
            [1.0, 49.0 / 99.0]
        );
        assert_eq!(
            ratios_where(&runs, Variant::KeepAlive, Tracer::Netwatch, |r| r.rps
                != 98.0),
            [] as [f64; 0]
        );
        assert_eq!(
            ratios_where(&runs, Variant::KeepAlive, Tracer::Netwatch, |r| r.rps
                != 49.0),
            [1.0]
        );
    }
}
