//! Successful listen(2) calls.

use netwatch_common::{EventKind, listen::ListenEvent};

use super::{DecodeError, Wire, read, sock::Sock};

impl Wire for ListenEvent {
    const KIND: Option<EventKind> = Some(EventKind::Listen);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub fd: i32,
    pub sock: Sock,
}

pub(super) fn decode(bytes: &[u8]) -> Result<Listen, DecodeError> {
    let raw: ListenEvent = read(bytes)?;
    Ok(Listen {
        fd: raw.fd,
        sock: Sock::from_wire(&raw.sock),
    })
}
