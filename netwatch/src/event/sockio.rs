//! Errors of the send and receive families.

use netwatch_common::{EventKind, Syscall, sockio::SockIoEvent};

use super::{DecodeError, Wire, read, sock::Sock};

impl Wire for SockIoEvent {
    const KIND: Option<EventKind> = Some(EventKind::SockIo);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockIo {
    pub syscall: Syscall,
    pub errno: i32,
    pub fd: i32,
    pub sock: Sock,
}

pub(super) fn decode(bytes: &[u8]) -> Result<SockIo, DecodeError> {
    let raw: SockIoEvent = read(bytes)?;
    // Only the send and receive families travel in this record.
    let syscall = Syscall::from_u32(raw.syscall)
        .filter(|s| {
            !matches!(
                s,
                Syscall::Bind
                    | Syscall::Connect
                    | Syscall::Listen
                    | Syscall::Accept
                    | Syscall::Accept4
            )
        })
        .ok_or(DecodeError::BadField {
            kind: EventKind::SockIo,
            field: "syscall",
            value: raw.syscall.into(),
        })?;
    Ok(SockIo {
        syscall,
        errno: raw.errno,
        fd: raw.fd,
        sock: Sock::from_wire(&raw.sock),
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netwatch_common::{
        AF_INET6, AF_UNIX, SOCK_BINDPORT_LOCK, SOCK_NOT_A_SOCKET, SOCK_RESOLVED, SockInfo,
    };

    use super::*;
    use crate::event::{
        Addr, Body, decode,
        sock::{Proto, Socket, TcpState},
        tests::{assert_short, bytes_of, expected, header, inet4, inet6, tcp_sock},
    };

    fn record(syscall: u32, errno: i32, fd: i32, sock: SockInfo) -> Vec<u8> {
        bytes_of(&SockIoEvent {
            header: header(EventKind::SockIo, b"nginx"),
            sock,
            errno,
            fd,
            syscall,
            _pad: 0,
        })
    }

    fn tcp4_closed() -> SockInfo {
        tcp_sock(
            0xffff_8881_2222_0000,
            inet4([127, 0, 0, 1], 8000),
            inet4([127, 0, 0, 1], 51_234),
            7,
            SOCK_BINDPORT_LOCK,
        )
    }

    #[test]
    fn epipe_on_a_tcp_socket() {
        let ev = decode(&record(Syscall::Sendto as u32, 32, 9, tcp4_closed())).unwrap();
        assert_eq!(
            ev,
            expected(
                b"nginx",
                Body::SockIo(SockIo {
                    syscall: Syscall::Sendto,
                    errno: 32,
                    fd: 9,
                    sock: Sock::Socket(Socket {
                        sk: 0xffff_8881_2222_0000,
                        proto: Proto::Tcp,
                        local: Addr::Inet((Ipv4Addr::LOCALHOST, 8000).into()),
                        remote: Addr::Inet((Ipv4Addr::LOCALHOST, 51_234).into()),
                        state: TcpState(7),
                        port_bound: true,
                    }),
                })
            )
        );
        assert_eq!(ev.kind_name(), "send");
        assert!(ev.is_failure());
    }

    #[test]
    fn econnreset_on_an_ipv6_socket_without_a_bound_port() {
        let info = SockInfo {
            local: inet6(Ipv6Addr::LOCALHOST, 40_001),
            remote: inet6(Ipv6Addr::LOCALHOST, 8080),
            family: AF_INET6,
            state: 1,
            userlocks: 0,
            ..tcp4_closed()
        };
        let ev = decode(&record(Syscall::Recvfrom as u32, 104, 4, info)).unwrap();
        assert_eq!(ev.kind_name(), "recv");
        assert!(ev.is_failure());
        let Body::SockIo(io) = ev.body else { panic!() };
        assert_eq!((io.syscall, io.errno, io.fd), (Syscall::Recvfrom, 104, 4));
        let s = io.sock.socket().unwrap();
        assert_eq!(s.local.to_string(), "[::1]:40001");
        assert_eq!(s.remote.to_string(), "[::1]:8080");
        assert_eq!(s.state.name(), "ESTABLISHED");
        assert!(!s.port_bound);
    }

    #[test]
    fn pipes_unix_sockets_and_unresolved_fds() {
        let sock_of = |info: SockInfo| {
            let Body::SockIo(io) = decode(&record(Syscall::Write as u32, 32, 1, info))
                .unwrap()
                .body
            else {
                panic!()
            };
            io.sock
        };
        let pipe = SockInfo {
            flags: SOCK_NOT_A_SOCKET,
            ..Default::default()
        };
        assert_eq!(sock_of(pipe), Sock::NotASocket);
        assert_eq!(sock_of(SockInfo::default()), Sock::Unknown);
        let unix = SockInfo {
            family: AF_UNIX,
            sock_type: 1,
            flags: SOCK_RESOLVED,
            ..Default::default()
        };
        let s = *sock_of(unix).socket().unwrap();
        assert_eq!(s.proto, Proto::Unix);
        assert_eq!((s.local, s.remote), (Addr::Unknown, Addr::Unknown));
    }

    #[test]
    fn every_syscall_is_named_and_split_into_send_and_recv() {
        let table = [
            (Syscall::Write, "write", "send"),
            (Syscall::Writev, "writev", "send"),
            (Syscall::Pwritev, "pwritev", "send"),
            (Syscall::Pwritev2, "pwritev2", "send"),
            (Syscall::Sendto, "sendto", "send"),
            (Syscall::Sendmsg, "sendmsg", "send"),
            (Syscall::Sendmmsg, "sendmmsg", "send"),
            (Syscall::Sendfile64, "sendfile64", "send"),
            (Syscall::Splice, "splice", "send"),
            (Syscall::Read, "read", "recv"),
            (Syscall::Readv, "readv", "recv"),
            (Syscall::Recvfrom, "recvfrom", "recv"),
            (Syscall::Recvmsg, "recvmsg", "recv"),
            (Syscall::Recvmmsg, "recvmmsg", "recv"),
        ];
        for (syscall, name, kind) in table {
            let ev = decode(&record(syscall as u32, 104, 3, tcp4_closed())).unwrap();
            let Body::SockIo(io) = &ev.body else { panic!() };
            assert_eq!(io.syscall, syscall);
            assert_eq!(io.syscall.name(), name);
            assert_eq!(ev.kind_name(), kind, "{name}");
            assert!(ev.is_failure(), "{name}");
        }
    }

    #[test]
    fn unknown_syscall_number_is_a_bad_field() {
        // Unknown numbers, and syscalls that are not of the send or receive family.
        for n in [0, 1, 2, 3, 4, 5, 19, 29, 35, u32::MAX] {
            assert_eq!(
                decode(&record(n, 32, 3, tcp4_closed())),
                Err(DecodeError::BadField {
                    kind: EventKind::SockIo,
                    field: "syscall",
                    value: u64::from(n),
                }),
                "syscall {n}"
            );
        }
    }

    #[test]
    fn short_sockio_record_is_an_error() {
        let bytes = record(Syscall::Write as u32, 32, 1, tcp4_closed());
        assert_short(&bytes, 128, 108, EventKind::SockIo);
    }
}
