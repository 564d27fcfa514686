//! Decoding ring-buffer records into events. One module per event source, named as
//! in netwatch-common and netwatch-ebpf.
//!
//! Records are decoded defensively: the length is checked against the kind's wire
//! struct, fields are read with `read_unaligned` (the ring buffer only guarantees
//! 8-byte alignment of what it hands out, and a slice offers no guarantee at all),
//! and an unknown kind is an error, never a guess.

pub mod bind;
pub mod connect;
pub mod listen;
pub mod process;
pub mod reset;
pub mod signal;
pub mod sock;
pub mod sockio;

use std::fmt;

use netwatch_common::{COMM_LEN, EventKind, Header};

pub use crate::sockaddr::Addr;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than a header ({need} bytes)")]
    ShortHeader { len: usize, need: usize },
    #[error("unknown record kind {kind}")]
    UnknownKind { kind: u32 },
    #[error("{kind:?} record of {len} bytes is shorter than its {need} bytes")]
    Short {
        kind: EventKind,
        len: usize,
        need: usize,
    },
    #[error("{kind:?} record has an invalid {field}: {value}")]
    BadField {
        kind: EventKind,
        field: &'static str,
        value: u64,
    },
}

/// One decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_MONOTONIC nanoseconds, as the kernel stamped it.
    pub ktime_ns: u64,
    /// The task's cgroup v2 id (0: unknown).
    pub cgroup_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub comm: Comm,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Bind(bind::Bind),
    Connect(connect::Connect),
    SockIo(sockio::SockIo),
    Listen(listen::Listen),
    Reset(reset::Reset),
    Signal(signal::Signal),
    Exit(process::Exit),
    Fork(process::Fork),
    Exec(process::Exec),
}

impl Body {
    /// The record kind the body was decoded from.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Bind(_) => EventKind::Bind,
            Self::Connect(_) => EventKind::Connect,
            Self::SockIo(_) => EventKind::SockIo,
            Self::Listen(_) => EventKind::Listen,
            Self::Reset(_) => EventKind::Reset,
            Self::Signal(_) => EventKind::Signal,
            Self::Exit(_) => EventKind::Exit,
            Self::Fork(_) => EventKind::Fork,
            Self::Exec(_) => EventKind::Exec,
        }
    }
}

impl Event {
    /// The event's name in JSON (`"kind"`): the source, with the socket I/O source
    /// split into its two families.
    pub fn kind_name(&self) -> &'static str {
        match &self.body {
            Body::SockIo(io) if io.syscall.is_send() => "send",
            Body::SockIo(_) => "recv",
            body => body.kind().name(),
        }
    }

    /// Whether the event names the process it is about. A reset or an asynchronous
    /// error on a socket no traced process was seen using has pid 0: no process
    /// rather than the one that happened to be running. An exit always has one.
    pub fn owner_known(&self) -> bool {
        self.pid != 0 || matches!(self.body, Body::Exit(_))
    }

    /// Whether the event is a failure (or a fact about one: resets, signals) rather
    /// than bookkeeping (successful calls, fork, exec, exit).
    pub fn is_failure(&self) -> bool {
        match &self.body {
            Body::Bind(b) => b.errno != 0,
            Body::Connect(c) => c.errno != 0,
            Body::Signal(s) => s.sig == netwatch_common::signal::SIGPIPE,
            Body::Listen(l) => l.errno != 0,
            Body::SockIo(_) | Body::Reset(_) => true,
            Body::Exit(_) | Body::Fork(_) | Body::Exec(_) => false,
        }
    }
}

/// Wire structs that may be read from raw bytes: `#[repr(C)]`, made of integers and
/// byte arrays only, so that every bit pattern is a valid value.
pub(crate) trait Wire: Copy {
    const KIND: Option<EventKind>;
}

impl Wire for Header {
    const KIND: Option<EventKind> = None;
}

/// Read a `T` from the start of `bytes`, checking the length first.
pub(crate) fn read<T: Wire>(bytes: &[u8]) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(match T::KIND {
            Some(kind) => DecodeError::Short {
                kind,
                len: bytes.len(),
                need,
            },
            None => DecodeError::ShortHeader {
                len: bytes.len(),
                need,
            },
        });
    }
    // SAFETY: length checked above; `T: Wire` is plain old data, valid for any bits;
    // read_unaligned makes no alignment assumption.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// Decode one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let header: Header = read(bytes)?;
    let kind =
        EventKind::from_u32(header.kind).ok_or(DecodeError::UnknownKind { kind: header.kind })?;
    let body = match kind {
        EventKind::Bind => Body::Bind(bind::decode(bytes)?),
        EventKind::Connect => Body::Connect(connect::decode(bytes)?),
        EventKind::SockIo => Body::SockIo(sockio::decode(bytes)?),
        EventKind::Listen => Body::Listen(listen::decode(bytes)?),
        EventKind::Reset => Body::Reset(reset::decode(bytes)?),
        EventKind::Signal => Body::Signal(signal::decode(bytes)?),
        EventKind::Exit => Body::Exit(process::decode_exit(bytes)?),
        EventKind::Fork => Body::Fork(process::decode_fork(bytes)?),
        EventKind::Exec => Body::Exec(process::decode_exec(bytes)?),
    };
    Ok(Event {
        ktime_ns: header.ktime_ns,
        cgroup_id: header.cgroup_id,
        pid: header.tgid,
        tid: header.tid,
        comm: Comm::from_raw(&header.comm),
        body,
    })
}

/// A task's comm: up to 16 bytes, any of which a process may set (prctl(PR_SET_NAME)),
/// so it may hold control characters, escapes or invalid UTF-8. Kept inline (an event
/// is decoded without allocating); a longer name (`/proc/PID/comm` of a kernel
/// workqueue thread) is cut at 16 bytes, like the kernel's own field.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Comm {
    len: u8,
    /// Zero past `len`, so that equal names compare equal.
    bytes: [u8; COMM_LEN],
}

impl Comm {
    pub fn from_raw(raw: &[u8]) -> Self {
        let len = raw
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(raw.len())
            .min(COMM_LEN);
        let mut bytes = [0; COMM_LEN];
        bytes[..len].copy_from_slice(&raw[..len]);
        Self {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Printable ASCII as is; a backslash, control bytes, and anything outside ASCII as
    /// `\\` / `\xNN`, so that a hostile name can neither break columns nor send escape
    /// sequences to a terminal. The same text goes into JSON (where it is then escaped
    /// as JSON), so both outputs show one spelling.
    pub fn escaped(&self) -> EscapedComm {
        let mut out = EscapedComm {
            len: 0,
            bytes: [0; 4 * COMM_LEN],
        };
        for &b in self.as_bytes() {
            let (text, n) = escape_byte(b);
            let at = usize::from(out.len);
            out.bytes[at..at + n].copy_from_slice(&text[..n]);
            out.len += n as u8;
        }
        out
    }
}

/// One byte of a name as shown: itself when printable ASCII (not a space), `\\` for a
/// backslash, else `\xNN`. Returns the text and its length.
fn escape_byte(b: u8) -> ([u8; 4], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'\\' => ([b'\\', b'\\', 0, 0], 2),
        0x21..=0x7e => ([b, 0, 0, 0], 1),
        _ => (
            [
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            4,
        ),
    }
}

/// Any name from outside (a command line, a path) escaped as [`Comm::escaped`] does,
/// for messages: no byte of it can reach a terminal as a control character.
pub fn escape_name(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        let (text, n) = escape_byte(b);
        // Only ASCII is ever produced.
        out.extend(text[..n].iter().map(|&c| char::from(c)));
    }
    out
}

/// A comm as shown (see [`Comm::escaped`]): printable ASCII only, at most 4 bytes per
/// byte of the name.
pub struct EscapedComm {
    len: u8,
    bytes: [u8; 4 * COMM_LEN],
}

impl EscapedComm {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever written (see Comm::escaped).
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }

    /// The name cut to the text output's COMM column: at most [`COMM_COLUMN`]
    /// characters, ending in `+` when some were cut, and never inside an escape
    /// (escapes make a hostile name up to four times longer than its bytes).
    pub fn column(&self) -> std::borrow::Cow<'_, str> {
        let text = self.as_str();
        if text.len() <= COMM_COLUMN {
            return text.into();
        }
        let bytes = text.as_bytes();
        let mut end = 0;
        while end < bytes.len() {
            let unit = match (bytes[end], bytes.get(end + 1)) {
                (b'\\', Some(b'x')) => 4,
                (b'\\', _) => 2,
                _ => 1,
            };
            if end + unit > COMM_COLUMN - 1 {
                break;
            }
            end += unit;
        }
        format!("{}+", &text[..end]).into()
    }
}

/// Width of the text output's COMM column.
pub const COMM_COLUMN: usize = 16;

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.escaped().as_str())
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Comm({self})")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::Ipv6Addr;

    use netwatch_common::{AF_INET, AF_INET6, COMM_LEN, Header, SockAddr, SockInfo};

    use super::*;

    pub(crate) fn header(kind: EventKind, comm: &[u8]) -> Header {
        let mut c = [0u8; COMM_LEN];
        c[..comm.len()].copy_from_slice(comm);
        Header {
            ktime_ns: 123_456_789,
            cgroup_id: 77,
            kind: kind as u32,
            tgid: 4242,
            tid: 4243,
            _pad: 0,
            comm: c,
        }
    }

    /// `bytes` is a whole record of `len` bytes, and cut to `cut` it is refused as short.
    pub(crate) fn assert_short(bytes: &[u8], len: usize, cut: usize, kind: EventKind) {
        assert_eq!(bytes.len(), len, "{kind:?}");
        assert_eq!(
            decode(&bytes[..cut]),
            Err(DecodeError::Short {
                kind,
                len: cut,
                need: len
            }),
            "{kind:?}"
        );
    }

    /// The event [`header`] describes, with `body`.
    pub(crate) fn expected(comm: &[u8], body: Body) -> Event {
        Event {
            ktime_ns: 123_456_789,
            cgroup_id: 77,
            pid: 4242,
            tid: 4243,
            comm: Comm::from_raw(comm),
            body,
        }
    }

    /// A resolved TCP socket as the kernel programs record it (the family is the
    /// local address's).
    pub(crate) fn tcp_sock(
        sk: u64,
        local: SockAddr,
        remote: SockAddr,
        state: u8,
        userlocks: u8,
    ) -> SockInfo {
        SockInfo {
            sk,
            local,
            remote,
            family: local.family,
            sock_type: 1,
            protocol: 6,
            state,
            userlocks,
            flags: netwatch_common::SOCK_RESOLVED,
            _pad: 0,
        }
    }

    /// An IPv4 endpoint as the kernel programs record it.
    pub(crate) fn inet4(ip: [u8; 4], port: u16) -> SockAddr {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&ip);
        SockAddr {
            addr,
            family: AF_INET,
            port,
        }
    }

    /// An IPv6 endpoint as the kernel programs record it.
    pub(crate) fn inet6(ip: Ipv6Addr, port: u16) -> SockAddr {
        SockAddr {
            addr: ip.octets(),
            family: AF_INET6,
            port,
        }
    }

    /// The bytes of a wire struct, as the ring buffer would hand them over.
    pub(crate) fn bytes_of<T: Wire>(v: &T) -> Vec<u8> {
        // SAFETY: T is plain old data; we copy its bytes.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        assert_eq!(
            decode(&[0; 10]),
            Err(DecodeError::ShortHeader { len: 10, need: 48 })
        );
        let mut h = header(EventKind::Bind, b"x");
        h.kind = 999;
        assert_eq!(
            decode(&bytes_of(&h)),
            Err(DecodeError::UnknownKind { kind: 999 })
        );
        let h = header(EventKind::Bind, b"x");
        assert_eq!(
            decode(&bytes_of(&h)),
            Err(DecodeError::Short {
                kind: EventKind::Bind,
                len: 48,
                need: 80
            })
        );
    }

    #[test]
    fn decodes_at_any_alignment() {
        let h = header(EventKind::Bind, b"x");
        let mut buf = vec![0u8];
        buf.extend(bytes_of(&h));
        let got: Header = read(&buf[1..]).unwrap();
        assert_eq!(got, h);
    }

    #[test]
    fn comm_is_escaped_visibly() {
        let c = Comm::from_raw(b"a\nb\x1b[31m\"q\\ \xff\0junk");
        assert_eq!(c.to_string(), "a\\x0ab\\x1b[31m\"q\\\\\\x20\\xff");
        assert_eq!(Comm::from_raw(b"python3\0\0\0").to_string(), "python3");
        assert_eq!(Comm::from_raw(&[b'x'; 16]).to_string(), "x".repeat(16));
        assert_eq!(
            Comm::from_raw(&[0xff; 16]).to_string(),
            "\\xff".repeat(16),
            "the longest spelling"
        );
        // /proc/PID/comm of a workqueue thread: cut like the kernel's comm field.
        assert_eq!(
            Comm::from_raw(b"kworker/u8:2-events_unbound").to_string(),
            "kworker/u8:2-eve"
        );
        assert_eq!(Comm::from_raw(b"ab\0cd"), Comm::from_raw(b"ab"));
    }
}
