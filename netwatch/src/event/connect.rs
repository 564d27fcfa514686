//! Failed connects, synchronous or reported later on the socket.

use netwatch_common::{
    EventKind,
    connect::{CONNECT_ERROR_REPORT, ConnectEvent},
};

use super::{DecodeError, Wire, read, sock::Sock};
use crate::sockaddr::Addr;

impl Wire for ConnectEvent {
    const KIND: Option<EventKind> = Some(EventKind::Connect);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Positive errno; 0 for a successful connect (shown with -v).
    pub errno: i32,
    /// None for an error reported on the socket after a non-blocking connect.
    pub fd: Option<i32>,
    /// Destination.
    pub addr: Addr,
    pub sock: Sock,
}

impl Connect {
    /// The failure arrived on the socket after connect(2) returned EINPROGRESS.
    pub fn is_async(&self) -> bool {
        self.fd.is_none()
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Connect, DecodeError> {
    let raw: ConnectEvent = read(bytes)?;
    Ok(Connect {
        errno: raw.errno,
        fd: (raw.origin != CONNECT_ERROR_REPORT).then_some(raw.fd),
        addr: Addr::from_wire(&raw.addr),
        sock: Sock::from_wire(&raw.sock),
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netwatch_common::{
        AF_INET, SOCK_BINDPORT_LOCK, SOCK_NOT_A_SOCKET, SOCK_RESOLVED, SockAddr, SockInfo,
        connect::CONNECT_SYSCALL,
    };

    use super::*;
    use crate::event::{
        Body, decode,
        sock::{Proto, Socket, TcpState},
        tests::{assert_short, bytes_of, expected, header, inet4, inet6, tcp_sock},
    };

    const SK: u64 = 0xffff_8881_0abc_d000;

    fn record(sock: SockInfo, addr: SockAddr, errno: i32, fd: i32, origin: u32) -> Vec<u8> {
        bytes_of(&ConnectEvent {
            header: header(EventKind::Connect, b"curl"),
            sock,
            addr,
            errno,
            fd,
            origin,
            _pad: [0; 2],
        })
    }

    fn tcp4(local: SockAddr, remote: SockAddr, state: u8, userlocks: u8) -> SockInfo {
        tcp_sock(SK, local, remote, state, userlocks)
    }

    #[test]
    fn refused_connect_from_the_syscall() {
        let sock = tcp4(
            inet4([127, 0, 0, 1], 40_000),
            inet4([127, 0, 0, 1], 1),
            7,
            0,
        );
        let ev = decode(&record(
            sock,
            inet4([127, 0, 0, 1], 1),
            111,
            5,
            CONNECT_SYSCALL,
        ))
        .unwrap();
        let want = Connect {
            errno: 111,
            fd: Some(5),
            addr: Addr::Inet((Ipv4Addr::LOCALHOST, 1).into()),
            sock: Sock::Socket(Socket {
                sk: SK,
                proto: Proto::Tcp,
                local: Addr::Inet((Ipv4Addr::LOCALHOST, 40_000).into()),
                remote: Addr::Inet((Ipv4Addr::LOCALHOST, 1).into()),
                state: TcpState(7),
                port_bound: false,
            }),
        };
        assert!(!want.is_async());
        assert_eq!(ev, expected(b"curl", Body::Connect(want)));
        assert_eq!(ev.kind_name(), "connect");
        assert!(ev.is_failure());
    }

    #[test]
    fn error_report_has_no_fd_and_is_async() {
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
        let sock = tcp_sock(
            SK,
            inet6(Ipv6Addr::LOCALHOST, 8443),
            inet6(dst, 443),
            7,
            SOCK_BINDPORT_LOCK,
        );
        let ev = decode(&record(
            sock,
            inet6(dst, 443),
            110,
            -1,
            CONNECT_ERROR_REPORT,
        ))
        .unwrap();
        let Body::Connect(c) = &ev.body else {
            panic!("{ev:?}")
        };
        assert_eq!(c.fd, None);
        assert!(c.is_async());
        assert_eq!(c.errno, 110);
        assert_eq!(c.addr, Addr::Inet((dst, 443).into()));
        assert_eq!(c.addr.to_string(), "[2001:db8::7]:443");
        let s = c.sock.socket().expect("resolved socket");
        assert_eq!(s.sk, SK);
        assert_eq!(s.proto, Proto::Tcp);
        assert_eq!(s.local, Addr::Inet((Ipv6Addr::LOCALHOST, 8443).into()));
        assert_eq!(s.remote, Addr::Inet((dst, 443).into()));
        assert_eq!(s.state.name(), "CLOSE");
        assert!(
            s.port_bound,
            "SOCK_BINDPORT_LOCK means bind(2) chose the port"
        );
        assert!(ev.is_failure());
    }

    #[test]
    fn fd_is_kept_whatever_its_value_for_a_syscall() {
        // Only the origin decides: a syscall record keeps its fd even if odd.
        let Body::Connect(c) = decode(&record(
            SockInfo::default(),
            inet4([10, 0, 0, 1], 80),
            111,
            -1,
            CONNECT_SYSCALL,
        ))
        .unwrap()
        .body
        else {
            panic!()
        };
        assert_eq!(c.fd, Some(-1));
        assert!(!c.is_async());
    }

    #[test]
    fn sock_resolved_not_a_socket_or_neither() {
        let dst = inet4([192, 0, 2, 1], 25);
        let decode_sock = |flags: u32, errno: i32| {
            let info = SockInfo {
                flags,
                ..tcp4(inet4([192, 0, 2, 9], 5555), dst, 2, 0)
            };
            let ev = decode(&record(info, dst, errno, 4, CONNECT_SYSCALL)).unwrap();
            let Body::Connect(c) = ev.body.clone() else {
                panic!()
            };
            (c.sock, ev.is_failure())
        };

        let (sock, failure) = decode_sock(SOCK_RESOLVED, 0);
        assert!(!failure, "a successful connect (-v) is not a failure");
        let s = sock.socket().unwrap();
        assert_eq!(s.state.name(), "SYN_SENT");
        assert_eq!(s.local.to_string(), "192.0.2.9:5555");
        assert_eq!(s.remote.to_string(), "192.0.2.1:25");

        // ENOTSOCK: the fd is a pipe or a file; nothing else in SockInfo counts.
        assert_eq!(decode_sock(SOCK_NOT_A_SOCKET, 88), (Sock::NotASocket, true));
        assert_eq!(
            decode_sock(SOCK_NOT_A_SOCKET | SOCK_RESOLVED, 88),
            (Sock::NotASocket, true)
        );
        // Neither flag: the socket could not be resolved.
        assert_eq!(decode_sock(0, 111), (Sock::Unknown, true));
    }

    #[test]
    fn udp_and_other_protocols() {
        let info = tcp4(
            inet4([127, 0, 0, 1], 5353),
            inet4([127, 0, 0, 53], 53),
            1,
            0,
        );
        let proto = |sock_type: u16, protocol: u16| {
            let info = SockInfo {
                sock_type,
                protocol,
                ..info
            };
            let ev = decode(&record(info, info.remote, 101, 3, CONNECT_SYSCALL)).unwrap();
            let Body::Connect(c) = ev.body else { panic!() };
            c.sock.socket().unwrap().proto
        };
        assert_eq!(proto(2, 17), Proto::Udp);
        assert_eq!(
            proto(3, 1),
            Proto::Other {
                family: AF_INET,
                sock_type: 3,
                protocol: 1
            }
        );
    }

    #[test]
    fn short_connect_record_is_an_error() {
        let bytes = record(SockInfo::default(), SockAddr::default(), 111, 3, 0);
        assert_short(&bytes, 152, 151, EventKind::Connect);
    }
}
