//! The kernel's socket table through netlink sock_diag: which sockets use a local
//! port.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use crate::event::Addr;

/// A socket from the kernel's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DiagSocket {
    pub(super) state: u8,
    pub(super) local: Addr,
    pub(super) inode: u32,
}

// include/uapi/linux/sock_diag.h, inet_diag.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;

#[repr(C)]
#[derive(Clone, Copy)]
struct NlMsgHdr {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagSockId {
    sport: [u8; 2],
    dport: [u8; 2],
    src: [u8; 16],
    dst: [u8; 16],
    ifindex: u32,
    cookie: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: InetDiagSockId,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagMsg {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    id: InetDiagSockId,
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
}

/// Every socket of `protocol` (IPv4 and IPv6) whose local port is `port`.
pub(super) fn dump_port(port: u16, protocol: u8) -> io::Result<Vec<DiagSocket>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        dump(family, protocol, &mut |m: &InetDiagMsg| {
            if u16::from_be_bytes(m.id.sport) == port {
                let local = match m.family as i32 {
                    libc::AF_INET => {
                        let ip = std::net::Ipv4Addr::new(
                            m.id.src[0],
                            m.id.src[1],
                            m.id.src[2],
                            m.id.src[3],
                        );
                        Addr::Inet((ip, port).into())
                    }
                    _ => Addr::Inet((std::net::Ipv6Addr::from(m.id.src), port).into()),
                };
                out.push(DiagSocket {
                    state: m.state,
                    local,
                    inode: m.inode,
                });
            }
        })?;
    }
    Ok(out)
}

fn dump(family: u8, protocol: u8, f: &mut dyn FnMut(&InetDiagMsg)) -> io::Result<()> {
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    #[repr(C)]
    struct Request {
        hdr: NlMsgHdr,
        req: InetDiagReqV2,
    }
    let req = Request {
        hdr: NlMsgHdr {
            len: size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
            seq: 1,
            pid: 0,
        },
        req: InetDiagReqV2 {
            family,
            protocol,
            ext: 0,
            pad: 0,
            states: u32::MAX,
            id: InetDiagSockId {
                sport: [0; 2],
                dport: [0; 2],
                src: [0; 16],
                dst: [0; 16],
                ifindex: 0,
                cookie: [0; 2],
            },
        },
    };
    // SAFETY: sending the bytes of a repr(C) struct.
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            (&raw const req).cast(),
            size_of::<Request>(),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receiving into our buffer.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse_batch(&buf[..n as usize], f)? {
            return Ok(());
        }
    }
}

/// One `recv` of a sock_diag dump: calls `f` for each socket message; true once the
/// dump is done. An `NLMSG_ERROR` carrying 0 is an acknowledgement, not an error.
fn parse_batch(mut data: &[u8], f: &mut dyn FnMut(&InetDiagMsg)) -> io::Result<bool> {
    while data.len() >= size_of::<NlMsgHdr>() {
        // SAFETY: length checked; read_unaligned of a plain struct.
        let hdr: NlMsgHdr = unsafe { data.as_ptr().cast::<NlMsgHdr>().read_unaligned() };
        let len = hdr.len as usize;
        if len < size_of::<NlMsgHdr>() || len > data.len() {
            return Err(io::Error::other("truncated netlink message"));
        }
        match hdr.kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let Some(b) = data.get(16..20) else {
                    return Err(io::Error::other("truncated netlink error message"));
                };
                let errno = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
            }
            _ => {
                let body = &data[size_of::<NlMsgHdr>()..len];
                if body.len() >= size_of::<InetDiagMsg>() {
                    // SAFETY: length checked; read_unaligned of a plain struct.
                    let m: InetDiagMsg =
                        unsafe { body.as_ptr().cast::<InetDiagMsg>().read_unaligned() };
                    f(&m);
                }
            }
        }
        // Messages are 4-byte aligned (NLMSG_ALIGN).
        let next = (len + 3) & !3;
        data = data.get(next..).unwrap_or_default();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message: header, then `body`, padded to 4 bytes.
    fn nlmsg(kind: u16, body: &[u8]) -> Vec<u8> {
        let len = size_of::<NlMsgHdr>() + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]); // flags, seq, pid
        m.extend_from_slice(body);
        m.resize(len.next_multiple_of(4), 0);
        m
    }

    /// `struct nlmsgerr`: the error, then the request's header.
    fn nlmsg_error(errno: i32) -> Vec<u8> {
        let mut body = errno.to_ne_bytes().to_vec();
        body.extend_from_slice(&[0; 16]);
        nlmsg(NLMSG_ERROR, &body)
    }

    #[test]
    fn a_netlink_ack_is_not_an_error() {
        let mut seen = 0;
        let mut batch = nlmsg_error(0);
        batch.extend(nlmsg(NLMSG_DONE, &[0; 4]));
        assert!(parse_batch(&batch, &mut |_| seen += 1).unwrap());
        assert_eq!(seen, 0);

        let err = parse_batch(&nlmsg_error(-libc::EPERM), &mut |_| {}).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let truncated = &nlmsg(NLMSG_ERROR, &[])[..];
        assert!(parse_batch(truncated, &mut |_| {}).is_err());
        // Not done yet: the dump goes on in the next recv.
        assert!(!parse_batch(&nlmsg(SOCK_DIAG_BY_FAMILY, &[0; 8]), &mut |_| {}).unwrap());
    }
}
