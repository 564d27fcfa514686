//! Command-line interface (clap derive). Flags follow bcc/strace habits: -p PID,
//! -j for NDJSON.

use clap::Parser;

const EXAMPLES: &str = "\
EXAMPLES:
    sudo netwatch                  # every failed bind on the host, as columns
    sudo netwatch -p 1234          # only process 1234
    sudo netwatch -p 1234 -p 5678  # only these two processes
    sudo netwatch -j               # NDJSON, one object per event
    sudo netwatch -j | jq 'select(.error == \"EADDRINUSE\")'

EXIT STATUS:
    0  stopped by Ctrl-C (SIGINT) or SIGTERM, or stdout closed
    1  netwatch failed (not privileged, tracefs or a program could not be set up, ...)
    2  bad command line";

#[derive(Debug, Parser)]
#[command(
    name = "netwatch",
    version,
    about = "Trace socket errors per process, live, and explain them.",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Trace only this process (repeatable). Filtered in the kernel.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = parse_pid)]
    pub pids: Vec<u32>,

    /// Print NDJSON: one JSON object per line (schema: docs/JSON.md).
    #[arg(short = 'j', long)]
    pub json: bool,

    /// Size of the kernel ring buffer: a power of two, at least 4K (K and M suffixes).
    #[arg(long, value_name = "BYTES", default_value = "4M", value_parser = parse_size)]
    pub ring_buffer_size: u32,
}

fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("0 is not a process id (PIDs start at 1)".into()),
        Ok(pid) if pid <= i32::MAX as u32 => Ok(pid),
        _ => Err(format!(
            "`{s}` is not a process id (expected a positive integer)"
        )),
    }
}

fn parse_size(s: &str) -> Result<u32, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size (e.g. 256K, 4M)"))?;
    if n < 4096 || !n.is_power_of_two() || n > 1 << 30 {
        return Err(format!(
            "{n} bytes: the ring buffer size must be a power of two from 4K to 1G"
        ));
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_must_be_positive_integers() {
        assert_eq!(parse_pid("42"), Ok(42));
        assert!(parse_pid("0").unwrap_err().contains("not a process id"));
        assert!(parse_pid("abc").unwrap_err().contains("`abc`"));
        assert!(parse_pid("-5").is_err());
        assert!(parse_pid("4294967295").is_err());
    }

    #[test]
    fn sizes_are_powers_of_two() {
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("256k"), Ok(256 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("3M").is_err());
        assert!(parse_size("1K").is_err());
        assert!(parse_size("2G").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn repeatable_pid_flag() {
        let a = Args::try_parse_from(["netwatch", "-p", "1", "--pid", "2", "-j"]).unwrap();
        assert_eq!(a.pids, vec![1, 2]);
        assert!(a.json);
        assert_eq!(a.ring_buffer_size, 4 << 20);
    }
}
