//! TCP resets, received and sent.

use std::{borrow::Cow, sync::OnceLock};

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

impl Direction {
    pub const ALL: [Self; 2] = [Self::Received, Self::Sent];

    /// Its name (JSON `direction`, the metrics' label).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Sent => "sent",
        }
    }
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
    pub fn reason_name(&self) -> Option<Cow<'static, str>> {
        let r = self.reason?;
        let names = REASON_NAMES.get().map(Vec::as_slice).unwrap_or_default();
        Some(
            names
                .iter()
                .find(|(v, _)| *v == r)
                .map_or_else(|| r.to_string().into(), |(_, n)| n.as_str().into()),
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netwatch_common::{SockAddr, reset::RESET_SENT};

    use super::*;
    use crate::event::{
        Body, decode,
        tests::{assert_short, bytes_of, expected, header, inet4, inet6},
    };

    fn record(
        owner: Option<&[u8]>,
        direction: u32,
        sk: u64,
        local: SockAddr,
        remote: SockAddr,
        state: i32,
        reason: u32,
    ) -> Vec<u8> {
        let mut h = header(EventKind::Reset, owner.unwrap_or_default());
        if owner.is_none() {
            // Softirq context: no process was seen using the socket.
            (h.tgid, h.tid) = (0, 0);
        }
        bytes_of(&ResetEvent {
            header: h,
            sk,
            local,
            remote,
            direction,
            state,
            reason,
            owner_known: u32::from(owner.is_some()),
        })
    }

    #[test]
    fn received_reset_with_a_known_owner() {
        let ev = decode(&record(
            Some(b"curl"),
            RESET_RECEIVED,
            0xffff_8881_4444_0000,
            inet4([127, 0, 0, 1], 51_000),
            inet4([127, 0, 0, 1], 8000),
            1,
            ABSENT,
        ))
        .unwrap();
        assert_eq!(
            ev,
            expected(
                b"curl",
                Body::Reset(Reset {
                    direction: Direction::Received,
                    sk: 0xffff_8881_4444_0000,
                    local: Addr::Inet((Ipv4Addr::LOCALHOST, 51_000).into()),
                    remote: Addr::Inet((Ipv4Addr::LOCALHOST, 8000).into()),
                    state: Some(TcpState(1)),
                    reason: None,
                    owner_known: true,
                })
            )
        );
        assert_eq!(ev.kind_name(), "reset");
        assert!(ev.is_failure());
        let Body::Reset(r) = &ev.body else { panic!() };
        assert_eq!(r.reason_name(), None);
    }

    #[test]
    fn sent_reset_with_no_socket_and_unknown_owner() {
        let ev = decode(&record(
            None,
            RESET_SENT,
            0,
            inet6(Ipv6Addr::LOCALHOST, 1),
            inet6(Ipv6Addr::LOCALHOST, 40_404),
            -1,
            2,
        ))
        .unwrap();
        assert_eq!((ev.pid, ev.tid, ev.comm.as_bytes()), (0, 0, &b""[..]));
        assert!(ev.is_failure());
        let Body::Reset(r) = ev.body else { panic!() };
        assert_eq!(r.direction, Direction::Sent);
        assert_eq!(r.sk, 0);
        assert_eq!(r.local, Addr::Inet((Ipv6Addr::LOCALHOST, 1).into()));
        assert_eq!(r.remote.to_string(), "[::1]:40404");
        assert_eq!(r.state, None, "state -1 is unknown");
        assert_eq!(r.reason, Some(2));
        assert!(!r.owner_known);
    }

    #[test]
    fn states_reasons_and_directions() {
        let reset = |direction, state, reason| {
            let Body::Reset(r) = decode(&record(
                Some(b"x"),
                direction,
                1,
                SockAddr::default(),
                SockAddr::default(),
                state,
                reason,
            ))
            .unwrap()
            .body
            else {
                panic!()
            };
            r
        };
        let r = reset(RESET_SENT, 7, 0);
        assert_eq!((r.state, r.reason), (Some(TcpState(7)), Some(0)));
        assert_eq!(r.state.unwrap().name(), "CLOSE");
        assert_eq!((r.local, r.remote), (Addr::Unknown, Addr::Unknown));
        let r = reset(RESET_RECEIVED, 0, ABSENT);
        assert_eq!(
            (r.direction, r.state, r.reason),
            (Direction::Received, Some(TcpState(0)), None)
        );
        assert_eq!(reset(RESET_RECEIVED, i32::MIN, ABSENT).state, None);
        // Anything but RESET_RECEIVED is a reset this host sent.
        assert_eq!(reset(7, 1, ABSENT).direction, Direction::Sent);
    }

    #[test]
    fn short_reset_record_is_an_error() {
        let bytes = record(
            Some(b"x"),
            RESET_SENT,
            1,
            SockAddr::default(),
            SockAddr::default(),
            1,
            ABSENT,
        );
        assert_short(&bytes, 112, 104, EventKind::Reset);
    }
}
