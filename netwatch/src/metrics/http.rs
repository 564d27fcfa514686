//! The HTTP side of `--metrics`: hyper serving `/metrics`, one request per
//! connection, with a cap on connections and timeouts that free idle ones, because
//! the server shares its thread with the ring-buffer reader.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    header::{self, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};

use super::{Metrics, to_text_format};

#[derive(Debug, thiserror::Error)]
#[error("--metrics {addr}: cannot listen")]
pub struct ListenError {
    addr: SocketAddr,
    source: io::Error,
}

/// Bind the metrics port now, before anything is loaded: a port in use must stop
/// netwatch with the reason, not leave it running unscrapable.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| ListenError { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ListenError { addr, source })?;
    Ok(listener)
}

/// Connections served at once; one accepted over the cap is closed at once. A scrape
/// is one short request, so even several Prometheus servers need only a few slots.
/// The cap keeps a connection flood from taking the file descriptors the tracer
/// needs (its /proc, sock_diag and cgroup look-ups, the output file reopened on
/// SIGHUP): netwatch holds about 50 of its own, so 64 connections stay well under
/// even a 256-descriptor limit.
pub const MAX_CONNECTIONS: usize = 64;

/// A client must have sent its request headers this long after connecting, so an
/// idle connection gives its slot back quickly. Scrapers send theirs at once.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on a connection's whole life, a slow reader of the response included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept(2): an error such as EMFILE persists, and retrying
/// at once would spin the thread the ring-buffer reader shares.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Pause after accept(2) failed for want of file descriptors or memory: only
/// connections closing (at the latest after [`HEADER_READ_TIMEOUT`] or
/// [`CONNECTION_TIMEOUT`]) give them back.
const ACCEPT_BACKOFF_EXHAUSTED: Duration = Duration::from_secs(1);

/// Failed accepts are reported at most once per this interval.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Descriptors the connections leave to netwatch itself: reading /proc and sysfs
/// (aya reads the CPU list at every per-CPU map lookup), netlink lookups, `-o`'s
/// reopening. Without them a connection flood would stop the trace, not just the
/// scrapes.
const FD_RESERVE: u64 = 32;

/// [`MAX_CONNECTIONS`], or fewer when the open-files limit leaves less than that
/// beyond the descriptors open now and [`FD_RESERVE`]; at least one.
fn connection_cap() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into our struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return MAX_CONNECTIONS;
    }
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as u64;
    let free = limit.rlim_cur.saturating_sub(open + FD_RESERVE);
    usize::try_from(free)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS)
}

/// Serve `/metrics` until the runtime stops.
pub async fn serve(listener: std::net::TcpListener, metrics: Arc<Metrics>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!("--metrics: registering the listening socket: {e}; not serving");
            return;
        }
    };
    let cap = connection_cap();
    if cap < MAX_CONNECTIONS {
        tracing::info!(
            "--metrics: at most {cap} connections at once (the open-files limit leaves no more)"
        );
    }
    let slots = Arc::new(Semaphore::new(cap));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false);
    let mut warned = Throttle::new(ACCEPT_WARNING_INTERVAL);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if warned.ready(Instant::now()) {
                    tracing::warn!("--metrics: accepting a connection: {e}; backing off");
                }
                tokio::time::sleep(accept_backoff(&e)).await;
                continue;
            }
        };
        // Over the cap, the stream is dropped here: closed at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let metrics = metrics.clone();
        let service = service_fn(move |request| {
            let response = respond(&request, &metrics);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            // A connection's errors (a client gone, a header timeout) are its own end.
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

fn accept_backoff(e: &io::Error) -> Duration {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            ACCEPT_BACKOFF_EXHAUSTED
        }
        _ => ACCEPT_BACKOFF,
    }
}

/// Lets something happen at most once per interval.
struct Throttle {
    interval: Duration,
    last: Option<Instant>,
}

impl Throttle {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// Whether it may happen `now`; if so, the interval starts again.
    fn ready(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

const OPENMETRICS: &str = "application/openmetrics-text";

fn respond<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let openmetrics = request.headers().get_all(header::ACCEPT).iter().any(|v| {
        v.as_bytes()
            .windows(OPENMETRICS.len())
            .any(|w| w == OPENMETRICS.as_bytes())
    });
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") if openmetrics => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            to_text_format(&metrics.encode()),
        ),
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "netwatch serves /metrics\n".to_owned(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

/// `--metrics` argument: `PORT` or `localhost:PORT` (on 127.0.0.1), `IP:PORT` or
/// `[IPv6]:PORT`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let loopback = s.strip_prefix("localhost:").unwrap_or(s);
    if let Ok(port) = loopback.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not PORT, localhost:PORT, IP:PORT or [IPv6]:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::failed_bind;

    #[test]
    fn parses_metrics_addresses() {
        assert_eq!(
            parse_addr("9464"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        assert_eq!(parse_addr("0.0.0.0:9464").unwrap().port(), 9464);
        assert_eq!(parse_addr("[::1]:9464").unwrap().to_string(), "[::1]:9464");
        assert_eq!(
            parse_addr("localhost:9464"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        assert!(parse_addr("localhost:99999").is_err());
        assert!(parse_addr("localhost").is_err());
        assert!(parse_addr("example.org:9464").is_err());
        assert!(parse_addr("99999").is_err());
    }

    #[test]
    fn throttle_allows_once_per_interval() {
        let mut t = Throttle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(t.ready(start));
        assert!(!t.ready(start + Duration::from_secs(1)));
        assert!(!t.ready(start + Duration::from_secs(59)));
        assert!(t.ready(start + Duration::from_secs(60)));
        assert!(!t.ready(start + Duration::from_secs(61)));
    }

    #[test]
    fn accept_backs_off_longer_without_file_descriptors() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(accept_backoff(&emfile), ACCEPT_BACKOFF_EXHAUSTED);
        assert_eq!(accept_backoff(&aborted), ACCEPT_BACKOFF);
        assert!(ACCEPT_BACKOFF >= Duration::from_millis(100));
    }

    /// Bound on each step of the HTTP tests.
    const STEP: Duration = Duration::from_secs(5);

    /// `serve` on 127.0.0.1, on a current-thread runtime of its own thread (as in
    /// netwatch), with one failed bind counted.
    fn start_server() -> SocketAddr {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new(1, 4096));
        metrics.event(&failed_bind("scraped"));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, metrics));
        });
        addr
    }

    fn connect(addr: SocketAddr) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect_timeout(&addr, STEP).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        s.set_write_timeout(Some(STEP)).unwrap();
        s
    }

    struct Answer {
        status: u16,
        head: String,
        body: String,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }
    }

    /// Send `request` on a fresh connection and read the answer to the server's close.
    fn ask(addr: SocketAddr, request: &str) -> io::Result<Answer> {
        use std::io::{Read as _, Write as _};
        let mut s = connect(addr);
        s.write_all(request.as_bytes())?;
        let mut response = String::new();
        s.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| io::Error::other(format!("no end of head in {response:?}")))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no status in {head:?}")))?;
        Ok(Answer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }

    fn get(addr: SocketAddr, path: &str, accept: &str) -> Answer {
        ask(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\n\r\n"),
        )
        .unwrap()
    }

    #[test]
    fn serves_both_formats_404_and_405_and_closes() {
        let addr = start_server();

        let classic = get(addr, "/metrics", "text/plain");
        assert_eq!(classic.status, 200, "{}", classic.head);
        assert_eq!(
            classic.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert_eq!(classic.header("connection"), Some("close"));
        assert!(
            classic
                .body
                .contains("# TYPE netwatch_errors_total counter"),
            "{}",
            classic.body
        );
        assert!(
            classic.body.contains(
                r#"netwatch_errors_total{class="EADDRINUSE",syscall="bind",comm="scraped"} 1"#
            ),
            "{}",
            classic.body
        );
        assert!(!classic.body.contains("# EOF"), "{}", classic.body);
        let length: usize = classic.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, classic.body.len());

        // What Prometheus sends.
        let open = get(
            addr,
            "/metrics?x=1",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        );
        assert_eq!(open.status, 200, "{}", open.head);
        assert_eq!(
            open.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        assert!(open.body.ends_with("# EOF\n"), "{}", open.body);

        // HTTP/1.0 without headers, as curl -0 or a shell script sends.
        let old = ask(addr, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(old.status, 200, "{}", old.head);

        let missing = get(addr, "/", "*/*");
        assert_eq!(missing.status, 404, "{}", missing.head);
        assert_eq!(missing.body, "netwatch serves /metrics\n");

        let post = ask(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi",
        )
        .unwrap();
        assert_eq!(post.status, 405, "{}", post.head);
        assert_eq!(post.header("allow"), Some("GET"));
    }

    #[test]
    fn connections_over_the_cap_are_closed_and_idle_ones_time_out() {
        use std::io::Read as _;
        let addr = start_server();
        let started = Instant::now();
        let idle: Vec<_> = (0..MAX_CONNECTIONS).map(|_| connect(addr)).collect();
        // Accepted in order: this one finds every slot taken and is closed at once,
        // well before the header timeout would close it.
        let mut over = connect(addr);
        over.set_read_timeout(Some(HEADER_READ_TIMEOUT / 2))
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            over.read(&mut buf)
                .expect("the connection over the cap closed at once"),
            0
        );
        assert!(
            started.elapsed() < HEADER_READ_TIMEOUT,
            "the idle connections were opened too slowly for this test: {:?}",
            started.elapsed()
        );

        // The header timeout closes the idle connections, and a scrape answers again.
        for mut s in idle {
            let mut rest = Vec::new();
            s.read_to_end(&mut rest)
                .expect("an idle connection closed by the header timeout");
        }
        assert!(started.elapsed() >= HEADER_READ_TIMEOUT);
        let deadline = Instant::now() + STEP;
        let answer = loop {
            match ask(addr, "GET /metrics HTTP/1.0\r\n\r\n") {
                Ok(a) if a.status == 200 => break a,
                other => assert!(
                    Instant::now() < deadline,
                    "no scrape answered within {STEP:?} of the idle connections closing: {:?}",
                    other.map(|a| a.head)
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            answer.body.contains("netwatch_events_total 1"),
            "{}",
            answer.body
        );
    }
}
