//! Socket addresses as netwatch shows them.

use std::{
    borrow::Cow,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use netwatch_common::{AF_INET, AF_INET6, AF_UNIX, SockAddr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    Inet(SocketAddr),
    Unix,
    Other {
        family: u16,
    },
    /// Nothing could be read (bad pointer, short length).
    Unknown,
}

impl Addr {
    pub fn from_wire(w: &SockAddr) -> Self {
        match w.family {
            AF_INET => {
                let ip = Ipv4Addr::new(w.addr[0], w.addr[1], w.addr[2], w.addr[3]);
                Self::Inet(SocketAddr::new(IpAddr::V4(ip), w.port))
            }
            AF_INET6 => Self::Inet(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(w.addr)), w.port)),
            AF_UNIX => Self::Unix,
            0 => Self::Unknown,
            family => Self::Other { family },
        }
    }

    /// The port of an inet address.
    pub fn port(&self) -> Option<u16> {
        match self {
            Self::Inet(sa) => Some(sa.port()),
            _ => None,
        }
    }

    /// Family name for JSON: "inet", "inet6", "unix", "family N", "unknown".
    pub fn family(&self) -> Cow<'static, str> {
        match self {
            Self::Inet(SocketAddr::V4(_)) => "inet".into(),
            Self::Inet(SocketAddr::V6(_)) => "inet6".into(),
            Self::Unix => "unix".into(),
            Self::Other { family } => format!("family {family}").into(),
            Self::Unknown => "unknown".into(),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // SocketAddr's Display brackets IPv6: [::1]:443.
            Self::Inet(sa) => write!(f, "{sa}"),
            Self::Unix => f.write_str("unix"),
            Self::Other { family } => write!(f, "family:{family}"),
            Self::Unknown => f.write_str("?"),
        }
    }
}
