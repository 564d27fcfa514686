//! A line of output being put together: the buffer is reused from line to line, so
//! that printing an event allocates nothing; integers are spelled without `fmt`, and
//! JSON strings are escaped only where they need it, exactly as serde_json does.

use std::{fmt, io::Write as _, net::SocketAddr};

use crate::event::Addr;

#[derive(Debug, Default)]
pub struct Line {
    buf: Vec<u8>,
    /// For JSON strings made with `fmt` (rare values: an exit status, `state 42`).
    scratch: String,
}

impl Line {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// `s` as it is.
    pub fn raw(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn int(&mut self, n: impl itoa::Integer) {
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    /// A value as `fmt` spells it.
    pub fn fmt(&mut self, args: fmt::Arguments<'_>) {
        // Writing into a Vec cannot fail.
        let _ = self.buf.write_fmt(args);
    }

    /// `s` left-aligned in `width` columns, as `{s:<width}` would.
    pub fn left(&mut self, s: &str, width: usize) {
        self.raw(s);
        self.spaces(width.saturating_sub(s.chars().count()));
    }

    /// `s` right-aligned in `width` columns, as `{s:>width}` would.
    pub fn right(&mut self, s: &str, width: usize) {
        self.spaces(width.saturating_sub(s.chars().count()));
        self.raw(s);
    }

    /// `n` spaces.
    pub fn spaces(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, b' ');
    }

    /// An address as its `Display` spells it (`127.0.0.1:80`, `[::1]:443`, `unix`...).
    pub fn addr(&mut self, a: &Addr) {
        match a {
            Addr::Inet(SocketAddr::V4(sa)) => {
                self.ipv4(sa.ip().octets());
                self.raw(":");
                self.int(sa.port());
            }
            other => self.fmt(format_args!("{other}")),
        }
    }

    /// An IPv4 address as `Ipv4Addr`'s `Display` spells it.
    pub fn ipv4(&mut self, octets: [u8; 4]) {
        for (i, o) in octets.into_iter().enumerate() {
            if i > 0 {
                self.raw(".");
            }
            self.int(o);
        }
    }

    /// `s` as a JSON string.
    pub fn json(&mut self, s: &str) {
        json_string(&mut self.buf, s);
    }

    /// A value as `fmt` spells it, as a JSON string.
    pub fn json_fmt(&mut self, args: fmt::Arguments<'_>) {
        use fmt::Write as _;
        self.scratch.clear();
        // Writing into a String cannot fail.
        let _ = self.scratch.write_fmt(args);
        json_string(&mut self.buf, &self.scratch);
    }

    /// `,"name":`: the start of an object's field after its first.
    pub fn key(&mut self, name: &str) {
        self.raw(",\"");
        self.raw(name);
        self.raw("\":");
    }
}

/// Quote and escape as serde_json does: `"` and `\` with a backslash, control
/// characters as `\n`, `\t`... or `\u00XX`, everything else (DEL, non-ASCII) as is.
fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        out.extend_from_slice(escape);
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn json(s: &str) -> String {
        let mut line = Line::new();
        line.json(s);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn escapes_json_strings_as_serde_json_does() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        let samples = [
            every_ascii.as_str(),
            "",
            "plain",
            r#"a"b\c"#,
            "\u{7f}\u{80}é\u{2028}\u{fffd}😀",
            "/system.slice/a\nb.service",
            "\\x1b[31m",
        ];
        for s in samples {
            assert_eq!(json(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
        for c in (0..0x800).filter_map(char::from_u32) {
            let s = format!("x{c}y");
            assert_eq!(json(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn pads_and_spells_as_fmt_does() {
        let mut line = Line::new();
        line.left("ab", 5);
        line.right("7", 3);
        line.left("toolong", 3);
        line.int(-42i32);
        line.int(u64::MAX);
        line.bool(true);
        assert_eq!(
            line.as_bytes(),
            format!("{:<5}{:>3}{:<3}-42{}true", "ab", "7", "toolong", u64::MAX).as_bytes()
        );
        for a in [
            Addr::Inet((Ipv4Addr::new(0, 10, 200, 255), 0).into()),
            Addr::Inet((Ipv4Addr::BROADCAST, 65535).into()),
            Addr::Inet((Ipv6Addr::LOCALHOST, 443).into()),
            Addr::Unix,
            Addr::Other { family: 17 },
            Addr::Unknown,
        ] {
            let mut line = Line::new();
            line.addr(&a);
            assert_eq!(line.as_bytes(), a.to_string().as_bytes());
        }
    }
}
