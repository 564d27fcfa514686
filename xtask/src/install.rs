//! `cargo xtask install [--prefix DIR]`: the release binary, its manual netwatch(8)
//! and shell completions, which the binary prints (`--man`: the hand-written
//! docs/netwatch.8 it embeds; `--completions SHELL`: from its clap definition), and the
//! JSON schema netwatch-json(5) (docs/netwatch-json.5, embedded here).

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

/// Where each document the binary prints goes below the prefix, and the binary's
/// arguments that print it.
const DOCUMENTS: &[(&str, &[&str])] = &[
    ("share/man/man8/netwatch.8", &["--man"]),
    (
        "share/bash-completion/completions/netwatch",
        &["--completions", "bash"],
    ),
    (
        "share/zsh/site-functions/_netwatch",
        &["--completions", "zsh"],
    ),
    (
        "share/fish/vendor_completions.d/netwatch.fish",
        &["--completions", "fish"],
    ),
];

/// Pages that are not the binary's to print: where each goes below the prefix, and its
/// text (taken from the checkout when xtask is built).
const PAGES: &[(&str, &str)] = &[(
    "share/man/man5/netwatch-json.5",
    include_str!("../../docs/netwatch-json.5"),
)];

/// Parse `[--prefix DIR]` (default /usr/local; `$DESTDIR` is prepended, for packaging).
pub fn prefix(args: &[String]) -> Result<PathBuf> {
    let prefix = match args {
        [] => PathBuf::from("/usr/local"),
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask install [--prefix DIR]"),
    };
    Ok(match std::env::var_os("DESTDIR") {
        Some(dest) => Path::new(&dest).join(prefix.strip_prefix("/").unwrap_or(&prefix)),
        None => prefix,
    })
}

/// Install `bin`, the documents it prints and [`PAGES`] under `prefix`; returns what
/// was written.
pub fn install(bin: &Path, prefix: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let target = prefix.join("bin/netwatch");
    fs::create_dir_all(prefix.join("bin"))
        .with_context(|| format!("creating {}", prefix.join("bin").display()))?;
    // Copy beside, then rename: a running netwatch keeps its (old) file.
    let tmp = target.with_extension("new");
    fs::copy(bin, &tmp)
        .with_context(|| format!("copying {} to {}", bin.display(), tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, &target).with_context(|| format!("installing {}", target.display()))?;
    written.push(target);
    for (rel, args) in DOCUMENTS {
        let out = Command::new(bin)
            .args(*args)
            .output()
            .with_context(|| format!("running {} {args:?}", bin.display()))?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!(
                "{} {args:?} failed: {}",
                bin.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        written.push(write(&prefix.join(rel), &out.stdout)?);
    }
    for (rel, text) in PAGES {
        written.push(write(&prefix.join(rel), text.as_bytes())?);
    }
    Ok(written)
}

/// Write `bytes` to `path`, creating its directory.
fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = path.parent().expect("documents are below a directory");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_the_binary_the_manual_pages_and_the_completions() {
        let dir = std::env::temp_dir().join(format!("xtask-install-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A stand-in for netwatch that prints its arguments.
        let bin = dir.join("fake-netwatch");
        fs::write(&bin, "#!/bin/sh\necho \"doc $*\"\n").unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        let prefix = dir.join("prefix");
        let written = install(&bin, &prefix).unwrap();
        assert_eq!(written.len(), 1 + DOCUMENTS.len() + PAGES.len());
        let read = |rel: &str| {
            assert!(
                written.contains(&prefix.join(rel)),
                "{rel} not in {written:?}"
            );
            fs::read_to_string(prefix.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
        };
        // Where man(1), bash-completion, zsh and fish look below a prefix.
        assert_eq!(read("share/man/man8/netwatch.8"), "doc --man\n");
        assert_eq!(
            read("share/bash-completion/completions/netwatch"),
            "doc --completions bash\n"
        );
        assert_eq!(
            read("share/zsh/site-functions/_netwatch"),
            "doc --completions zsh\n"
        );
        assert_eq!(
            read("share/fish/vendor_completions.d/netwatch.fish"),
            "doc --completions fish\n"
        );
        let json_page = read("share/man/man5/netwatch-json.5");
        assert!(
            json_page.contains("\n.TH netwatch\\-json 5 "),
            "{}",
            &json_page[..200]
        );
        let mode = fs::metadata(prefix.join("bin/netwatch"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // man(1) finds both pages there, by section (when man-db is installed).
        for (section, page, rel) in [
            ("8", "netwatch", "share/man/man8/netwatch.8"),
            ("5", "netwatch-json", "share/man/man5/netwatch-json.5"),
        ] {
            let Ok(out) = Command::new("man")
                .env("MANPATH", prefix.join("share/man"))
                .args(["-w", section, page])
                .output()
            else {
                break;
            };
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                prefix.join(rel).to_str().unwrap(),
                "man -w {section} {page}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Installing again replaces every file.
        assert_eq!(install(&bin, &prefix).unwrap(), written);
        // A binary that fails to print a document fails the install.
        fs::write(&bin, "#!/bin/sh\nexit 1\n").unwrap();
        assert!(install(&bin, &prefix).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prefix_defaults_to_usr_local() {
        if std::env::var_os("DESTDIR").is_none() {
            assert_eq!(prefix(&[]).unwrap(), PathBuf::from("/usr/local"));
            assert_eq!(
                prefix(&["--prefix".into(), "/opt/nw".into()]).unwrap(),
                PathBuf::from("/opt/nw")
            );
        }
        assert!(prefix(&["--bogus".into()]).is_err());
    }
}
