//! NDJSON: one object per line, every field named. Schema: docs/JSON.md.

use std::io::{self, Write};

use serde::Serialize;

use super::errno_label;
use crate::{
    clock::{self, Clock},
    event::{Addr, Body, Event},
};

#[derive(Serialize)]
struct Record {
    kind: &'static str,
    time: String,
    ts_ns: u64,
    pid: u32,
    tid: u32,
    comm: String,
    #[serde(flatten)]
    body: JsonBody,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonBody {
    Syscall {
        syscall: &'static str,
        errno: i32,
        error: String,
        fd: i32,
        addr: JsonAddr,
    },
}

#[derive(Serialize)]
pub struct JsonAddr {
    family: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

impl From<&Addr> for JsonAddr {
    fn from(a: &Addr) -> Self {
        let (ip, port) = match a {
            Addr::Inet(sa) => (Some(sa.ip().to_string()), Some(sa.port())),
            _ => (None, None),
        };
        Self {
            family: a.family(),
            ip,
            port,
        }
    }
}

fn line(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

pub fn event(out: &mut impl Write, clock: &Clock, ev: &Event) -> io::Result<()> {
    let body = match &ev.body {
        Body::Bind(b) => JsonBody::Syscall {
            syscall: "bind",
            errno: b.errno,
            error: errno_label(b.errno),
            fd: b.fd,
            addr: (&b.addr).into(),
        },
    };
    line(
        out,
        &Record {
            kind: ev.kind_name(),
            time: clock::rfc3339(clock.wall_ns(ev.ktime_ns)),
            ts_ns: ev.ktime_ns,
            pid: ev.pid,
            tid: ev.tid,
            comm: ev.comm.to_string(),
            body,
        },
    )
}

pub fn lost(
    out: &mut impl Write,
    clock: &Clock,
    ktime_ns: u64,
    count: u64,
    total: u64,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Lost {
        kind: &'static str,
        time: String,
        ts_ns: u64,
        count: u64,
        total: u64,
    }
    line(
        out,
        &Lost {
            kind: "lost",
            time: clock::rfc3339(clock.wall_ns(ktime_ns)),
            ts_ns: ktime_ns,
            count,
            total,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use serde_json::Value;

    use crate::{
        clock::Clock,
        event::{Addr, Body, Comm, Event, bind::Bind},
        output::{Format, Printer},
    };

    fn print(ev: &Event) -> Value {
        let mut p = Printer::new(Vec::new(), Format::Json, Clock::with_offset(0));
        p.event(ev).unwrap();
        let out = String::from_utf8(p.into_inner()).unwrap();
        assert_eq!(out.matches('\n').count(), 1, "one line: {out:?}");
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn bind_event_has_every_field_named() {
        let v = print(&Event {
            ktime_ns: 1_500_000_000,
            pid: 10,
            tid: 11,
            comm: Comm::from_raw(b"a\"b\n\xff"),
            body: Body::Bind(Bind {
                errno: 99,
                fd: 7,
                addr: Addr::Inet((Ipv6Addr::LOCALHOST, 8080).into()),
            }),
        });
        assert_eq!(v["kind"], "bind");
        assert_eq!(v["syscall"], "bind");
        assert_eq!(v["time"], "1970-01-01T00:00:01.500000000Z");
        assert_eq!(v["ts_ns"], 1_500_000_000u64);
        assert_eq!((v["pid"].as_u64(), v["tid"].as_u64()), (Some(10), Some(11)));
        assert_eq!(v["comm"], "a\"b\\x0a\\xff");
        assert_eq!(v["errno"], 99);
        assert_eq!(v["error"], "EADDRNOTAVAIL");
        assert_eq!(v["fd"], 7);
        assert_eq!(v["addr"]["family"], "inet6");
        assert_eq!(v["addr"]["ip"], "::1");
        assert_eq!(v["addr"]["port"], 8080);
    }

    #[test]
    fn unreadable_address_has_only_a_family() {
        let v = print(&Event {
            ktime_ns: 0,
            pid: 1,
            tid: 1,
            comm: Comm::default(),
            body: Body::Bind(Bind {
                errno: 14,
                fd: 3,
                addr: Addr::Unknown,
            }),
        });
        assert_eq!(v["error"], "EFAULT");
        assert_eq!(v["addr"], serde_json::json!({"family": "unknown"}));
    }
}
