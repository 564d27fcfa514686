//! Finding tracefs and reading tracepoint record layouts from its `format` files.
//!
//! Field offsets differ between kernel versions (tcp:tcp_send_reset changed in 6.x),
//! so netwatch reads them at start-up and hands them to the kernel programs as
//! load-time constants instead of compiling them in.

use std::{
    ffi::CString,
    fs, io,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted and mounting it on /sys/kernel/tracing failed: {0} \
         (mount it with `mount -t tracefs tracefs /sys/kernel/tracing`)"
    )]
    Mount(io::Error),
    #[error(
        "tracefs at {path} cannot be read (it is mode 0700: run as root, or grant CAP_DAC_READ_SEARCH)"
    )]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("reading {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("tracepoint {tracepoint} has no field `{field}` in {path}")]
    MissingField {
        tracepoint: String,
        field: String,
        path: PathBuf,
    },
}

/// A field of a tracepoint record, as its `format` file describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
}

/// The parsed `format` file of one tracepoint.
#[derive(Debug)]
pub struct Format {
    tracepoint: String,
    path: PathBuf,
    text: String,
}

impl Format {
    /// A format file's text, as read from `tracepoint`'s `format`.
    pub fn from_text(tracepoint: &str, text: &str) -> Self {
        Self {
            tracepoint: tracepoint.to_owned(),
            path: PathBuf::from(tracepoint),
            text: text.to_owned(),
        }
    }

    /// Look up `name` among the record's fields.
    pub fn field(&self, name: &str) -> Result<Field, TracefsError> {
        parse_field(&self.text, name).ok_or_else(|| TracefsError::MissingField {
            tracepoint: self.tracepoint.clone(),
            field: name.to_owned(),
            path: self.path.clone(),
        })
    }
}

/// Find a field in the text of a `format` file. Lines look like
/// `\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;`.
pub fn parse_field(text: &str, name: &str) -> Option<Field> {
    text.lines().find_map(|line| {
        let mut parts = line.trim().split(';').map(str::trim);
        let decl = parts.next()?.strip_prefix("field:")?;
        // The name is the last identifier of the declaration, before any array suffix:
        // "long ret", "__u8 saddr[4]", "const char * name".
        let ident = decl.rsplit([' ', '*']).next()?;
        let ident = ident.split('[').next()?;
        if ident != name {
            return None;
        }
        let mut field = Field {
            offset: 0,
            size: 0,
            signed: false,
        };
        let mut seen = 0;
        for part in parts {
            if let Some(v) = part.strip_prefix("offset:") {
                field.offset = v.parse().ok()?;
                seen |= 1;
            } else if let Some(v) = part.strip_prefix("size:") {
                field.size = v.parse().ok()?;
                seen |= 2;
            } else if let Some(v) = part.strip_prefix("signed:") {
                field.signed = v == "1";
            }
        }
        (seen == 3).then_some(field)
    })
}

/// The tracefs mount, mounting it on /sys/kernel/tracing when it is not mounted.
#[derive(Debug)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// `NETWATCH_TRACEFS`, when set, names the tracefs mount to read (for unusual
    /// mounts, and for tests that show a kernel without some tracepoint).
    pub fn find_or_mount() -> Result<Self, TracefsError> {
        if let Some(root) = std::env::var_os("NETWATCH_TRACEFS") {
            return Ok(Self { root: root.into() });
        }
        for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
            let root = Path::new(root);
            match fs::metadata(root.join("events")) {
                Ok(m) if m.is_dir() => {
                    return Ok(Self {
                        root: root.to_owned(),
                    });
                }
                // Mounted, but closed to us (tracefs is mode 0700): mounting it again
                // would fail with a misleading EBUSY.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(TracefsError::Unreadable {
                        path: root.to_owned(),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        let target = Path::new("/sys/kernel/tracing");
        mount_tracefs(target).map_err(TracefsError::Mount)?;
        Ok(Self {
            root: target.to_owned(),
        })
    }

    /// Whether `category:name` exists on the running kernel.
    pub fn has(&self, category: &str, name: &str) -> bool {
        self.root.join("events").join(category).join(name).is_dir()
    }

    pub fn format(&self, category: &str, name: &str) -> Result<Format, TracefsError> {
        let path = self
            .root
            .join("events")
            .join(category)
            .join(name)
            .join("format");
        let text = fs::read_to_string(&path).map_err(|source| TracefsError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Format {
            tracepoint: format!("{category}:{name}"),
            path,
            text,
        })
    }
}

fn mount_tracefs(target: &Path) -> io::Result<()> {
    let fstype = c"tracefs";
    let target = CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS_EXIT_BIND: &str = "name: sys_exit_bind
ID: 1706
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;

print fmt: \"0x%lx\", REC->ret
";

    const TCP_SEND_RESET: &str = "format:
\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:__u8 saddr[28];\toffset:24;\tsize:28;\tsigned:0;
\tfield:enum sk_rst_reason reason;\toffset:104;\tsize:4;\tsigned:0;
";

    #[test]
    fn finds_scalar_fields() {
        assert_eq!(
            parse_field(SYS_EXIT_BIND, "ret"),
            Some(Field {
                offset: 16,
                size: 8,
                signed: true
            })
        );
        assert_eq!(
            parse_field(SYS_EXIT_BIND, "__syscall_nr"),
            Some(Field {
                offset: 8,
                size: 4,
                signed: true
            })
        );
    }

    #[test]
    fn finds_arrays_pointers_and_enums() {
        assert_eq!(
            parse_field(TCP_SEND_RESET, "saddr").map(|f| f.offset),
            Some(24)
        );
        assert_eq!(
            parse_field(TCP_SEND_RESET, "saddr").map(|f| f.size),
            Some(28)
        );
        assert_eq!(
            parse_field(TCP_SEND_RESET, "skbaddr").map(|f| f.offset),
            Some(8)
        );
        assert_eq!(
            parse_field(TCP_SEND_RESET, "reason").map(|f| f.offset),
            Some(104)
        );
    }

    #[test]
    fn missing_field_is_none_not_a_prefix_match() {
        assert_eq!(parse_field(SYS_EXIT_BIND, "re"), None);
        assert_eq!(parse_field(SYS_EXIT_BIND, "addr"), None);
        assert_eq!(parse_field("", "ret"), None);
    }
}
