//! Prometheus/OpenMetrics exposition on `/metrics` (`--metrics ADDR`).
//!
//! Counters are labelled by error class, syscall and comm, never by pid: label
//! cardinality stays bounded (at most [`MAX_COMMS`] comms; the rest are `other`).
//! The exposition format is prometheus-client's; HTTP is hyper's, one request per
//! connection, with a cap on connections and timeouts that free idle ones, because
//! the server shares its thread with the ring-buffer reader.

mod http;

use std::{
    collections::HashSet,
    hash::Hash,
    sync::{Mutex, atomic::AtomicU64},
};

use netwatch_common::EventKind;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

pub use self::http::{ListenError, MAX_CONNECTIONS, bind, parse_addr, serve};
use crate::{
    diagnose::{Diagnosis, Kind},
    errno,
    event::{Body, Event, reset::Direction, signal::Fate},
};

/// Distinct comms labelled before the rest are counted as `other`.
pub const MAX_COMMS: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    class: String,
    syscall: String,
    comm: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DiagnosisLabel {
    diagnosis: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FateLabel {
    fate: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

pub struct Metrics {
    registry: Registry,
    errors: Family<ErrorLabels, Counter>,
    diagnoses: Family<DiagnosisLabel, Counter>,
    resets: Family<DirectionLabel, Counter>,
    sigpipe: Family<FateLabel, Counter>,
    lost: Family<KindLabel, Counter>,
    events: Counter,
    programs: Gauge,
    ring_size: Gauge,
    ring_peak_fill: Gauge<f64, AtomicU64>,
    comms: Mutex<HashSet<String>>,
}

impl Metrics {
    pub fn new(programs_attached: usize, ring_buffer_size: u32) -> Self {
        let mut registry = Registry::default();
        let m = Self {
            errors: Family::default(),
            diagnoses: Family::default(),
            resets: Family::default(),
            sigpipe: Family::default(),
            lost: Family::default(),
            events: Counter::default(),
            programs: Gauge::default(),
            ring_size: Gauge::default(),
            ring_peak_fill: Gauge::default(),
            comms: Mutex::new(HashSet::new()),
            registry: Registry::default(),
        };
        // Every family: its field, exposed name and help.
        macro_rules! register {
            ($($field:ident: $name:literal, $help:literal;)+) => {
                $(registry.register($name, $help, m.$field.clone());)+
            };
        }
        register! {
            errors: "netwatch_errors",
                "Failed socket syscalls by error class (errno name), syscall and process name";
            diagnoses: "netwatch_diagnoses",
                "Diagnoses by kind (exit_zero_after_bind_failure, killed_by_sigpipe...)";
            resets: "netwatch_resets",
                "TCP resets by direction (received: the peer sent RST; sent)";
            sigpipe: "netwatch_sigpipe",
                "SIGPIPEs generated, by fate (ignored, caught, fatal...)";
            lost: "netwatch_lost_events",
                "Records the kernel ring buffer could not take, by record kind";
            events: "netwatch_events",
                "Records read from the kernel ring buffer";
            programs: "netwatch_programs_attached",
                "eBPF programs attached";
            ring_size: "netwatch_ring_buffer_size_bytes",
                "Size of the kernel ring buffer";
            ring_peak_fill: "netwatch_ring_buffer_peak_fill_ratio",
                "Largest share of the ring buffer found filled at one read since start";
        }
        m.programs.set(programs_attached as i64);
        m.ring_size.set(i64::from(ring_buffer_size));
        // Every series of the families whose labels are known in advance exists from
        // the start, at 0: `rate(...) > 0` has a series to alert on before the first
        // event, and a restart shows as a reset to 0 rather than a missing series.
        at_zero(&m.lost, EventKind::ALL.map(EventKind::name), |kind| {
            KindLabel { kind }
        });
        at_zero(&m.sigpipe, Fate::ALL.map(Fate::name), |fate| FateLabel {
            fate,
        });
        at_zero(
            &m.resets,
            Direction::ALL.map(Direction::name),
            |direction| DirectionLabel { direction },
        );
        at_zero(&m.diagnoses, Kind::ALL.map(Kind::name), |diagnosis| {
            DiagnosisLabel { diagnosis }
        });
        Self { registry, ..m }
    }

    /// The comm label: the process name while fewer than MAX_COMMS are known.
    fn comm_label(&self, comm: String) -> String {
        let mut comms = self.comms.lock().unwrap_or_else(|e| e.into_inner());
        if comms.contains(&comm) {
            return comm;
        }
        if comms.len() < MAX_COMMS {
            comms.insert(comm.clone());
            return comm;
        }
        "other".into()
    }

    pub fn event(&self, ev: &Event) {
        self.events.inc();
        let failure = |errno: i32, syscall: &str| {
            let labels = ErrorLabels {
                class: errno::label(errno).into_owned(),
                syscall: syscall.into(),
                comm: self.comm_label(ev.comm.to_string()),
            };
            self.errors.get_or_create(&labels).inc();
        };
        match &ev.body {
            Body::Bind(b) if b.errno != 0 => failure(b.errno, "bind"),
            Body::Connect(c) if c.errno != 0 => failure(c.errno, "connect"),
            Body::SockIo(io) => failure(io.errno, io.syscall.name()),
            Body::Listen(l) if l.errno != 0 => failure(l.errno, l.syscall.name()),
            Body::Reset(r) => {
                self.resets
                    .get_or_create(&DirectionLabel {
                        direction: r.direction.name().into(),
                    })
                    .inc();
            }
            Body::Signal(s) if ev.is_failure() => {
                self.sigpipe
                    .get_or_create(&FateLabel {
                        fate: s.fate.name().into(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    pub fn diagnosis(&self, d: &Diagnosis) {
        self.diagnoses
            .get_or_create(&DiagnosisLabel {
                diagnosis: d.what.name().into(),
            })
            .inc();
    }

    /// `count` more records of `kind` were lost.
    pub fn lost(&self, kind: &str, count: u64) {
        self.lost
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc_by(count);
    }

    /// A read found `bytes` waiting in a ring buffer of `size` bytes.
    pub fn ring_fill(&self, bytes: usize, size: u32) {
        let ratio = bytes as f64 / f64::from(size.max(1));
        if ratio > self.ring_peak_fill.get() {
            self.ring_peak_fill.set(ratio);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Create the series of `family` labelled with each of `names`, at 0.
fn at_zero<L: Clone + Hash + Eq, const N: usize>(
    family: &Family<L, Counter>,
    names: [&str; N],
    label: impl Fn(String) -> L,
) {
    for name in names {
        // get_or_create returns a read guard on the family: released at once.
        drop(family.get_or_create(&label(name.to_owned())));
    }
}

/// The classic Prometheus text format (0.0.4) from OpenMetrics text, for scrapers and
/// tools that do not ask for OpenMetrics (promtool, curl): a counter family `x` is
/// described as `x_total` there, and there is no `# EOF` or `# UNIT`.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::event::{Addr, Comm, bind::Bind};

    pub(super) fn failed_bind(comm: &str) -> Event {
        Event {
            ktime_ns: 0,
            cgroup_id: 0,
            pid: 1,
            tid: 1,
            comm: Comm::from_raw(comm.as_bytes()),
            body: Body::Bind(Bind {
                errno: 98,
                fd: 3,
                addr: Addr::Inet((Ipv4Addr::LOCALHOST, 80).into()),
                sock_type: 1,
            }),
        }
    }

    #[test]
    fn counts_failures_by_class_syscall_and_comm() {
        let m = Metrics::new(8, 4 << 20);
        m.event(&failed_bind("daphne"));
        m.event(&failed_bind("daphne"));
        let text = m.encode();
        assert!(
            text.contains(
                r#"netwatch_errors_total{class="EADDRINUSE",syscall="bind",comm="daphne"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("netwatch_programs_attached 8"), "{text}");
        assert!(text.contains("netwatch_events_total 2"), "{text}");
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics ends with EOF: {text}"
        );
    }

    #[test]
    fn comm_cardinality_is_capped() {
        let m = Metrics::new(1, 4096);
        for i in 0..MAX_COMMS + 50 {
            m.event(&failed_bind(&format!("p{i}")));
        }
        let text = m.encode();
        let series = text
            .lines()
            .filter(|l| l.starts_with("netwatch_errors_total{"))
            .count();
        assert_eq!(series, MAX_COMMS + 1);
        assert!(text.contains(r#"comm="other"} 50"#), "{text}");
    }

    #[test]
    fn text_format_names_counters_with_their_total() {
        let m = Metrics::new(1, 4096);
        m.event(&failed_bind("x"));
        let text = to_text_format(&m.encode());
        assert!(
            text.contains("# HELP netwatch_errors_total Failed socket syscalls"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE netwatch_errors_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE netwatch_programs_attached gauge"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn labelled_counters_are_exposed_at_zero_from_the_start() {
        let text = Metrics::new(1, 4096).encode();
        for series in [
            r#"netwatch_lost_events_total{kind="bind"} 0"#,
            r#"netwatch_lost_events_total{kind="sockio"} 0"#,
            r#"netwatch_lost_events_total{kind="exec"} 0"#,
            r#"netwatch_sigpipe_total{fate="fatal"} 0"#,
            r#"netwatch_sigpipe_total{fate="not queued"} 0"#,
            r#"netwatch_resets_total{direction="received"} 0"#,
            r#"netwatch_resets_total{direction="sent"} 0"#,
            r#"netwatch_diagnoses_total{diagnosis="exit_zero_after_bind_failure"} 0"#,
            r#"netwatch_diagnoses_total{diagnosis="port_released"} 0"#,
        ] {
            assert!(text.contains(series), "no {series} in:\n{text}");
        }
        let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(
            count("netwatch_lost_events_total{"),
            EventKind::COUNT as usize - 1
        );
        assert_eq!(count("netwatch_sigpipe_total{"), Fate::ALL.len());
        assert_eq!(count("netwatch_diagnoses_total{"), Kind::ALL.len());
        // No error series before an error: its labels are not known in advance.
        assert_eq!(count("netwatch_errors_total{"), 0);
    }
}
