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
    let syscall = Syscall::from_u32(raw.syscall).ok_or(DecodeError::BadField {
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
