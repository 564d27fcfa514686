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
