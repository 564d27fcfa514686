//! What /proc says of a process: its thread group, its name, whether it is gone.

use std::{fs, io};

use std::os::unix::ffi::OsStrExt as _;

use crate::event::{Comm, escape_name, process::Command};

/// The thread group (process) `tid` belongs to, from `/proc/TID/status`: `tid` itself
/// for a process, its process's id for one of its threads; None when there is no such
/// task.
pub fn tgid_of(tid: u32) -> io::Result<Option<u32>> {
    let status = match fs::read_to_string(format!("/proc/{tid}/status")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    parse_tgid(&status)
        .map(Some)
        .ok_or_else(|| io::Error::other(format!("/proc/{tid}/status has no Tgid line")))
}

fn parse_tgid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// CAP_NET_BIND_SERVICE's bit in the capability sets.
const CAP_NET_BIND_SERVICE: u32 = 10;

/// `pid`'s effective uid and whether its effective capabilities have
/// CAP_NET_BIND_SERVICE, from `/proc/PID/status`.
pub fn bind_creds(pid: u32) -> io::Result<crate::diagnose::Creds> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_creds(&status)
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/status has no Uid or CapEff line")))
}

fn parse_creds(status: &str) -> Option<crate::diagnose::Creds> {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
    // Uid: real, effective, saved, filesystem.
    let uid = field("Uid:")?.split_whitespace().nth(1)?.parse().ok()?;
    let cap_eff = u64::from_str_radix(field("CapEff:")?.trim(), 16).ok()?;
    Some(crate::diagnose::Creds {
        uid,
        cap_net_bind_service: cap_eff & (1 << CAP_NET_BIND_SERVICE) != 0,
    })
}

/// Whether `pid` is gone (or a zombie: it will make no more syscalls).
pub fn exited(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised comm, which may itself contain ')'.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}

/// What `pid` runs: its executable (`/proc/PID/exe`) and argv (`/proc/PID/cmdline`),
/// each argument escaped as names are; None when the process is gone.
pub fn command(pid: u32) -> Option<Command> {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv = cmdline
        .strip_suffix(b"\0")
        .unwrap_or(&cmdline)
        .split(|&b| b == 0)
        .map(escape_name)
        .collect();
    Some(Command {
        exe: escape_name(exe.as_os_str().as_bytes()),
        argv,
    })
}

/// `pid`'s open file descriptors and its RLIMIT_NOFILE (soft, hard), from
/// `/proc/PID/fd` and `/proc/PID/limits`; None when the process is gone.
pub fn fd_usage(pid: u32) -> Option<(u64, u64, u64)> {
    let open = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    // A process that has exited (a zombie) has none left.
    if open == 0 {
        return None;
    }
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let (soft, hard) = parse_nofile(&limits)?;
    Some((open, soft, hard))
}

/// "Max open files  1024  4096  files" of `/proc/PID/limits` ("unlimited" as
/// u64::MAX).
fn parse_nofile(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..]
        .split_whitespace()
        .map(|v| match v {
            "unlimited" => Some(u64::MAX),
            n => n.parse().ok(),
        });
    Some((values.next()??, values.next()??))
}

/// A live process's comm, or "?".
pub fn comm_of(pid: u32) -> Comm {
    let raw = fs::read(format!("/proc/{pid}/comm")).unwrap_or_else(|_| b"?".to_vec());
    Comm::from_raw(raw.strip_suffix(b"\n").unwrap_or(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_belongs_to_its_process() {
        let me = std::process::id();
        assert_eq!(tgid_of(me).unwrap(), Some(me));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid(2) has no preconditions.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let live = rx.recv().unwrap();
        assert_ne!(live, me);
        assert_eq!(tgid_of(live).unwrap(), Some(me));
        drop(done_tx);
        t.join().unwrap();
        assert_eq!(parse_tgid("Name:\tx\nTgid:\t42\nPid:\t43\n"), Some(42));
        assert_eq!(parse_tgid("Name:\tx\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 unlimited            files\n";
        assert_eq!(parse_nofile(limits), Some((1024, u64::MAX)));
        let (open, soft, hard) = fd_usage(std::process::id()).unwrap();
        assert!(
            open >= 3 && soft >= 3 && hard >= soft,
            "{open} {soft} {hard}"
        );
        let me = command(std::process::id()).unwrap();
        assert_eq!(
            me.exe,
            escape_name(std::env::current_exe().unwrap().as_os_str().as_bytes())
        );
        assert!(!me.argv.is_empty());
        assert_eq!(command(u32::MAX), None);
    }

    #[test]
    fn reads_the_effective_uid_and_cap_net_bind_service() {
        let status = "Name:\tx\nUid:\t0\t65534\t65534\t65534\nCapEff:\t0000000000000400\n";
        let c = parse_creds(status).unwrap();
        assert_eq!((c.uid, c.cap_net_bind_service), (65534, true));
        let c = parse_creds("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t000001fffffffbff\n").unwrap();
        assert_eq!((c.uid, c.cap_net_bind_service), (1000, false));
        assert_eq!(parse_creds("Uid:\t1\t1\t1\t1\n"), None);
        assert!(bind_creds(std::process::id()).is_ok());
    }
}
