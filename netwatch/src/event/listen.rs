//! Successful listen(2) calls, and accept(2), accept4(2) and socket(2) failing for
//! want of file descriptors.

use netwatch_common::{EventKind, Syscall, listen::ListenEvent};

use super::{DecodeError, Wire, read, sock::Sock};

impl Wire for ListenEvent {
    const KIND: Option<EventKind> = Some(EventKind::Listen);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// -1 for socket(2).
    pub fd: i32,
    pub sock: Sock,
    /// Listen, Accept, Accept4 or Socket.
    pub syscall: Syscall,
    /// Positive errno (EMFILE, ENFILE); 0 for a listen that succeeded.
    pub errno: i32,
}

pub(super) fn decode(bytes: &[u8]) -> Result<Listen, DecodeError> {
    let raw: ListenEvent = read(bytes)?;
    Ok(Listen {
        fd: raw.fd,
        sock: Sock::from_wire(&raw.sock),
        syscall: Syscall::from_u32(raw.syscall).unwrap_or(Syscall::Listen),
        errno: raw.errno,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use netwatch_common::{SOCK_BINDPORT_LOCK, SockInfo, Syscall};

    use super::*;
    use crate::event::{
        Addr, Body, decode,
        sock::{Proto, Sock, Socket, TcpState},
        tests::{assert_short, bytes_of, expected, header, inet4, tcp_sock},
    };

    fn record(fd: i32, sock: SockInfo) -> Vec<u8> {
        failed(fd, sock, Syscall::Listen, 0)
    }

    fn failed(fd: i32, sock: SockInfo, syscall: Syscall, errno: i32) -> Vec<u8> {
        bytes_of(&ListenEvent {
            header: header(EventKind::Listen, b"python3"),
            sock,
            fd,
            syscall: syscall as u32,
            errno,
            _pad: 0,
        })
    }

    #[test]
    fn accept_and_socket_out_of_descriptors_are_failures() {
        for (syscall, fd) in [(Syscall::Accept4, 3), (Syscall::Socket, -1)] {
            let ev = decode(&failed(fd, SockInfo::default(), syscall, 24)).unwrap();
            let Body::Listen(l) = &ev.body else { panic!() };
            assert_eq!((l.syscall, l.errno, l.fd), (syscall, 24, fd));
            assert!(ev.is_failure(), "{ev:?}");
        }
    }

    #[test]
    fn decodes_a_listening_tcp_socket() {
        let info = tcp_sock(
            0xffff_8881_3333_0000,
            inet4([0, 0, 0, 0], 8080),
            inet4([0, 0, 0, 0], 0),
            10,
            SOCK_BINDPORT_LOCK,
        );
        let ev = decode(&record(6, info)).unwrap();
        assert_eq!(
            ev,
            expected(
                b"python3",
                Body::Listen(Listen {
                    fd: 6,
                    syscall: Syscall::Listen,
                    errno: 0,
                    sock: Sock::Socket(Socket {
                        sk: 0xffff_8881_3333_0000,
                        proto: Proto::Tcp,
                        local: Addr::Inet((Ipv4Addr::UNSPECIFIED, 8080).into()),
                        remote: Addr::Inet((Ipv4Addr::UNSPECIFIED, 0).into()),
                        state: TcpState(10),
                        port_bound: true,
                    }),
                })
            )
        );
        assert_eq!(ev.kind_name(), "listen");
        assert!(!ev.is_failure(), "a successful listen is bookkeeping");
        let Body::Listen(l) = &ev.body else { panic!() };
        assert_eq!(l.sock.socket().unwrap().state.name(), "LISTEN");
    }

    #[test]
    fn unresolved_socket() {
        let Body::Listen(l) = decode(&record(3, SockInfo::default())).unwrap().body else {
            panic!()
        };
        assert_eq!(
            l,
            Listen {
                fd: 3,
                sock: Sock::Unknown,
                syscall: Syscall::Listen,
                errno: 0,
            }
        );
    }

    #[test]
    fn short_listen_record_is_an_error() {
        let bytes = record(3, SockInfo::default());
        assert_short(&bytes, 128, 127, EventKind::Listen);
    }
}
