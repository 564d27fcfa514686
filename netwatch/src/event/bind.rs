//! `bind(2)` failures (and, when tracked, successes).

use netwatch_common::{EventKind, bind::BindEvent};

use super::{DecodeError, Wire, read};
use crate::sockaddr::Addr;

impl Wire for BindEvent {
    const KIND: Option<EventKind> = Some(EventKind::Bind);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// Positive errno; 0 for a successful bind.
    pub errno: i32,
    pub fd: i32,
    pub addr: Addr,
    /// The socket's type: `SOCK_STREAM` (1), `SOCK_DGRAM` (2)...; 0 when unknown.
    pub sock_type: u16,
}

/// `SOCK_DGRAM` (include/linux/net.h).
pub const SOCK_DGRAM: u16 = 2;

pub(super) fn decode(bytes: &[u8]) -> Result<Bind, DecodeError> {
    let raw: BindEvent = read(bytes)?;
    Ok(Bind {
        errno: raw.errno,
        fd: raw.fd,
        addr: Addr::from_wire(&raw.addr),
        sock_type: raw.sock_type,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netwatch_common::{AF_INET, AF_INET6, SockAddr};

    use super::*;
    use crate::event::{
        Body, decode,
        tests::{assert_short, bytes_of, header},
    };

    fn record(addr: SockAddr, errno: i32) -> Vec<u8> {
        bytes_of(&BindEvent {
            header: header(EventKind::Bind, b"python3"),
            errno,
            fd: 3,
            addr,
            sock_type: 1,
            _pad: 0,
        })
    }

    #[test]
    fn decodes_ipv4_eaddrinuse() {
        let mut a = SockAddr {
            family: AF_INET,
            port: 9000,
            ..Default::default()
        };
        a.addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let ev = decode(&record(a, 98)).unwrap();
        assert_eq!(
            (ev.pid, ev.tid, ev.comm.to_string().as_str()),
            (4242, 4243, "python3")
        );
        assert_eq!(
            ev.body,
            Body::Bind(Bind {
                errno: 98,
                fd: 3,
                addr: Addr::Inet((Ipv4Addr::LOCALHOST, 9000).into()),
                sock_type: 1,
            })
        );
    }

    #[test]
    fn decodes_ipv6_and_unknown_families() {
        let mut a = SockAddr {
            family: AF_INET6,
            port: 443,
            ..Default::default()
        };
        a.addr = Ipv6Addr::LOCALHOST.octets();
        let Body::Bind(b) = decode(&record(a, 99)).unwrap().body else {
            panic!()
        };
        assert_eq!(b.addr, Addr::Inet((Ipv6Addr::LOCALHOST, 443).into()));
        assert_eq!(b.addr.to_string(), "[::1]:443");

        let a = SockAddr {
            family: 17,
            ..Default::default()
        };
        let Body::Bind(b) = decode(&record(a, 22)).unwrap().body else {
            panic!()
        };
        assert_eq!(b.addr, Addr::Other { family: 17 });

        let Body::Bind(b) = decode(&record(SockAddr::default(), 14)).unwrap().body else {
            panic!()
        };
        assert_eq!(b.addr, Addr::Unknown);
    }

    #[test]
    fn short_bind_record_is_an_error() {
        let bytes = record(SockAddr::default(), 98);
        assert_short(&bytes, 80, 68, EventKind::Bind);
    }
}
