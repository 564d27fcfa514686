//! TCP resets, received and sent.

use std::sync::OnceLock;

use netwatch_common::{
    ABSENT, EventKind,
    reset::{RESET_RECEIVED, ResetEvent},
};

use super::{DecodeError, Wire, read, sock::TcpState};
use crate::sockaddr::Addr;

impl Wire for ResetEvent {
    const KIND: Option<EventKind> = Some(EventKind::Reset);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The peer sent RST.
    Received,
    /// This host sent RST.
    Sent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reset {
    pub direction: Direction,
    /// The `struct sock` address; 0 when the RST answered a packet with no socket.
    pub sk: u64,
    pub local: Addr,
    pub remote: Addr,
    pub state: Option<TcpState>,
    /// `enum sk_rst_reason` (sent only, kernels that have it).
    pub reason: Option<u32>,
    /// Whether the event's pid/comm name the socket's owner (else they are 0/empty).
    pub owner_known: bool,
}

/// Names of `enum sk_rst_reason` values, read from the running kernel's BTF at
/// start-up (the numbering changes between kernel versions).
static REASON_NAMES: OnceLock<Vec<(u32, String)>> = OnceLock::new();

pub fn set_reason_names(names: Vec<(u32, String)>) {
    let _ = REASON_NAMES.set(names);
}

impl Reset {
    /// The kernel's name of the reset reason (`NOT_SPECIFIED`, `TCP_ABORT_ON_CLOSE`...),
    /// or its number when the name is unknown.
    pub fn reason_name(&self) -> Option<String> {
        let r = self.reason?;
        let names = REASON_NAMES.get().map(Vec::as_slice).unwrap_or_default();
        Some(
            names
                .iter()
                .find(|(v, _)| *v == r)
                .map_or_else(|| format!("{r}"), |(_, n)| n.clone()),
        )
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Reset, DecodeError> {
    let raw: ResetEvent = read(bytes)?;
    Ok(Reset {
        direction: if raw.direction == RESET_RECEIVED {
            Direction::Received
        } else {
            Direction::Sent
        },
        sk: raw.sk,
        local: Addr::from_wire(&raw.local),
        remote: Addr::from_wire(&raw.remote),
        state: (raw.state >= 0).then_some(TcpState(raw.state)),
        reason: (raw.reason != ABSENT).then_some(raw.reason),
        owner_known: raw.owner_known != 0,
    })
}
