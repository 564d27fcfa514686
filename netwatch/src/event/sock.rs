//! A socket as netwatch saw it in the kernel at the time of an event.

use std::borrow::Cow;

use netwatch_common::{
    AF_INET, AF_INET6, AF_UNIX, SOCK_BINDPORT_LOCK, SOCK_NOT_A_SOCKET, SOCK_RESOLVED, SockInfo,
};

use crate::sockaddr::Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sock {
    /// The fd is a socket and netwatch read its state.
    Socket(Socket),
    /// The fd is open but is not a socket (a pipe, a file).
    NotASocket,
    /// Not resolvable (closed meanwhile, or the kernel's BTF is unavailable).
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket {
    /// The `struct sock` address: the same socket across events.
    pub sk: u64,
    pub proto: Proto,
    pub local: Addr,
    pub remote: Addr,
    pub state: TcpState,
    /// bind(2) chose the local port (SOCK_BINDPORT_LOCK).
    pub port_bound: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
    Other {
        family: u16,
        sock_type: u16,
        protocol: u16,
    },
}

const SOCK_STREAM: u16 = 1;
const SOCK_DGRAM: u16 = 2;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;

impl Proto {
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            Self::Tcp => "tcp".into(),
            Self::Udp => "udp".into(),
            Self::Unix => "unix".into(),
            Self::Other {
                family,
                sock_type,
                protocol,
            } => format!("family {family} type {sock_type} proto {protocol}").into(),
        }
    }
}

/// TCP states (include/net/tcp_states.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpState(pub i32);

impl TcpState {
    pub const ESTABLISHED: Self = Self(1);
    pub const TIME_WAIT: Self = Self(6);
    pub const LISTEN: Self = Self(10);

    pub fn name(self) -> Cow<'static, str> {
        let name = match self.0 {
            1 => "ESTABLISHED",
            2 => "SYN_SENT",
            3 => "SYN_RECV",
            4 => "FIN_WAIT1",
            5 => "FIN_WAIT2",
            6 => "TIME_WAIT",
            7 => "CLOSE",
            8 => "CLOSE_WAIT",
            9 => "LAST_ACK",
            10 => "LISTEN",
            11 => "CLOSING",
            12 => "NEW_SYN_RECV",
            13 => "BOUND_INACTIVE",
            n => return format!("state {n}").into(),
        };
        name.into()
    }
}

impl Sock {
    pub fn from_wire(w: &SockInfo) -> Self {
        if w.flags & SOCK_NOT_A_SOCKET != 0 {
            return Self::NotASocket;
        }
        if w.flags & SOCK_RESOLVED == 0 {
            return Self::Unknown;
        }
        let proto = match (w.family, w.sock_type, w.protocol) {
            (AF_UNIX, _, _) => Proto::Unix,
            (AF_INET | AF_INET6, SOCK_STREAM, IPPROTO_TCP) => Proto::Tcp,
            (AF_INET | AF_INET6, SOCK_DGRAM, IPPROTO_UDP) => Proto::Udp,
            (family, sock_type, protocol) => Proto::Other {
                family,
                sock_type,
                protocol,
            },
        };
        Self::Socket(Socket {
            sk: w.sk,
            proto,
            local: Addr::from_wire(&w.local),
            remote: Addr::from_wire(&w.remote),
            state: TcpState(i32::from(w.state)),
            port_bound: w.userlocks & SOCK_BINDPORT_LOCK != 0,
        })
    }

    pub fn socket(&self) -> Option<&Socket> {
        match self {
            Self::Socket(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use netwatch_common::SockAddr;

    use super::*;

    #[test]
    fn decodes_a_bound_tcp_socket() {
        let mut w = SockInfo {
            sk: 0xffff_8881_0000_1000,
            family: AF_INET,
            sock_type: SOCK_STREAM,
            protocol: IPPROTO_TCP,
            state: 1,
            userlocks: SOCK_BINDPORT_LOCK,
            flags: SOCK_RESOLVED,
            ..Default::default()
        };
        w.local = SockAddr {
            family: AF_INET,
            port: 5000,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        let Sock::Socket(s) = Sock::from_wire(&w) else {
            panic!()
        };
        assert_eq!(s.proto, Proto::Tcp);
        assert_eq!(s.local.to_string(), "127.0.0.1:5000");
        assert_eq!(s.state.name(), "ESTABLISHED");
        assert!(s.port_bound);
    }

    #[test]
    fn not_a_socket_and_unknown() {
        let w = SockInfo {
            flags: SOCK_NOT_A_SOCKET,
            ..Default::default()
        };
        assert_eq!(Sock::from_wire(&w), Sock::NotASocket);
        assert_eq!(Sock::from_wire(&SockInfo::default()), Sock::Unknown);
        let w = SockInfo {
            family: AF_UNIX,
            flags: SOCK_RESOLVED,
            sock_type: 1,
            ..Default::default()
        };
        assert_eq!(Sock::from_wire(&w).socket().unwrap().proto, Proto::Unix);
    }
}
