//! The built binary's command line, without privileges: help, and every bad input
//! rejected with one clear line and exit status 2 (1 for a pid that does not exist).

mod support;

use support::run;

#[test]
fn help_shows_usage_and_examples() {
    let (status, out, _) = run(&["--help"], &[]);
    assert!(status.success());
    assert!(out.contains("Usage: netwatch"), "{out}");
    assert!(out.contains("EXAMPLES:"), "{out}");
    assert!(out.contains("-p, --pid <PID>"), "{out}");
    assert!(out.contains("-j, --json"), "{out}");
    assert!(out.contains("EXIT STATUS:"), "{out}");
}

fn rejects(args: &[&str], code: i32, needle: &str) {
    let (status, out, err) = run(args, &[]);
    assert_eq!(
        status.code(),
        Some(code),
        "{args:?}: stdout {out:?} stderr {err:?}"
    );
    assert!(out.is_empty(), "{args:?}: nothing on stdout, got {out:?}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn bad_pids_are_usage_errors() {
    rejects(&["-p", "abc"], 2, "`abc` is not a process id");
    rejects(&["-p", "0"], 2, "0 is not a process id");
    rejects(&["-p", "-3"], 2, "");
    rejects(&["-p"], 2, "a value is required");
}

#[test]
fn a_pid_that_does_not_exist_is_an_error() {
    // Above the kernel's pid_max limit (4194304), so never a live process.
    rejects(
        &["-p", "2000000000"],
        1,
        "netwatch: -p 2000000000: no such process",
    );
}

#[test]
fn unknown_flags_and_bad_sizes_are_usage_errors() {
    rejects(&["--frobnicate"], 2, "unexpected argument '--frobnicate'");
    rejects(&["--ring-buffer-size", "3M"], 2, "power of two");
    rejects(&["--ring-buffer-size", "big"], 2, "is not a size");
}

#[test]
fn double_dash_without_a_command_is_a_usage_error() {
    rejects(&["--"], 2, "`--` must be followed by a command to run");
    rejects(
        &["-j", "--"],
        2,
        "`--` must be followed by a command to run",
    );
    rejects(&["--check"], 2, "--check");
}

#[test]
fn quiet_with_nowhere_to_report_is_a_usage_error() {
    rejects(&["--quiet"], 2, "add --metrics ADDR");
    rejects(&["-q", "-j"], 2, "or use --summary-only");
    rejects(
        &["--quiet", "-o", "/tmp/netwatch-never-written"],
        2,
        "use --summary-only -o FILE",
    );
}

/// `netwatch ARGS >&-`: netwatch started with its stdout closed.
fn run_with_stdout_closed(args: &[&str]) -> (std::process::ExitStatus, String) {
    let script = r#"exec "$0" "$@" >&-"#;
    let argv: Vec<&str> = ["-c", script, support::NETWATCH]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let (status, _, err) = support::run_program("sh", &argv, &[]);
    (status, err)
}

#[test]
fn a_closed_stdout_is_refused_when_the_stream_would_go_there() {
    for args in [&[][..], &["-j"], &["--summary-only"], &["--", "true"]] {
        let (status, err) = run_with_stdout_closed(args);
        assert_eq!(status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("netwatch: stdout is closed:") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    // Nothing goes to stdout: not refused for that (it goes on to the next check).
    let (_, err) = run_with_stdout_closed(&["-o", "/dev/null", "-p", "2000000000"]);
    assert!(err.contains("-p 2000000000: no such process"), "{err}");
}

/// A page of docs/, by name.
fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the page's section `name`, from its `.SH` line to the next one.
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let heading = format!(".SH {name}\n");
    let start = page
        .find(&heading)
        .unwrap_or_else(|| panic!("no section {name}"))
        + heading.len();
    let body = &page[start..];
    &body[..body.find("\n.SH ").unwrap_or(body.len())]
}

/// `netwatch --man`: the page netwatch prints (and `cargo xtask install` installs).
fn man_page() -> String {
    let (status, page, err) = run(&["--man"], &[]);
    assert!(status.success() && err.is_empty(), "{status:?} {err}");
    page
}

/// `man --warnings=w -l PAGE` (every groff warning) at 80 columns: what it printed, and
/// its warnings.
fn man_warnings(page: &std::path::Path) -> (String, String) {
    let page = page.to_str().unwrap();
    let (status, out, err) = support::run_program(
        "man",
        &["--warnings=w", "-l", page],
        &[("MANWIDTH", "80"), ("LC_ALL", "C.UTF-8"), ("MANOPT", "")],
    );
    assert!(status.success(), "man -l {page}: {status:?}: {err}");
    (out, err)
}

#[test]
fn the_manual_pages_format_without_a_warning() {
    if std::process::Command::new("man")
        .arg("-w")
        .output()
        .is_err()
    {
        // `cargo xtask setup` installs man-db and groff-base (xtask/src/setup.rs): in
        // CI a missing man is a broken set-up, not a reason to check nothing.
        assert!(
            std::env::var_os("CI").is_none(),
            "man(1) is not installed: run `cargo xtask setup`"
        );
        eprintln!("SKIPPED: man(1) is not installed: the manual pages were not formatted");
        return;
    }
    let dir = std::env::temp_dir().join(format!("netwatch-man-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let netwatch_8 = dir.join("netwatch.8");
    std::fs::write(&netwatch_8, man_page()).unwrap();
    let json_5 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/netwatch-json.5");
    for (page, sections) in [
        (
            netwatch_8.as_path(),
            &[
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "OUTPUT",
                "DIAGNOSES",
                "JSON",
                "EXIT STATUS",
                "SIGNALS",
                "ENVIRONMENT",
                "FILES",
                "OVERHEAD",
                "EXAMPLES",
                "SEE ALSO",
            ][..],
        ),
        (
            json_5.as_path(),
            &["NAME", "DESCRIPTION", "EXAMPLES", "SEE ALSO"][..],
        ),
    ] {
        let (out, warnings) = man_warnings(page);
        assert!(
            warnings.is_empty(),
            "{}: man --warnings:\n{warnings}",
            page.display()
        );
        for heading in sections {
            assert!(
                out.lines().any(|l| l == *heading),
                "{}: no section {heading} in\n{out}",
                page.display()
            );
        }
        // Nothing is cut or hyphenated at 80 columns (no line longer than that).
        for line in out.lines() {
            assert!(
                line.chars().count() <= 80,
                "{}: a line wider than 80 columns:\n{line}",
                page.display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_option_of_help_is_in_the_manual() {
    let page = man_page();
    let options = section(&page, "OPTIONS");
    let (status, help, _) = run(&["--help"], &[]);
    assert!(status.success());
    let mut longs: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    longs.sort_unstable();
    longs.dedup();
    assert!(longs.len() >= 20, "{longs:?}");
    for long in &longs {
        let roff = long.replace('-', r"\-");
        assert!(
            options.contains(&roff),
            "OPTIONS of netwatch(8) lacks {long} ({roff})"
        );
    }
    // And every short option (`  -p, --pid <PID>`).
    for line in help.lines() {
        let line = line.trim_start();
        if let Some(short) = line
            .strip_prefix('-')
            .filter(|rest| rest.as_bytes().get(1) == Some(&b','))
        {
            let roff = format!(r"\fB\-{}\fR", &short[..1]);
            assert!(options.contains(&roff), "OPTIONS lacks {roff}: {line}");
        }
    }
}

#[test]
fn the_manual_lists_every_exit_status_and_environment_variable() {
    let page = man_page();
    let (_, help, _) = run(&["--help"], &[]);
    let statuses = section(&page, "EXIT STATUS");
    for code in ["0", "1", "2", "86", "126", "127", "130"] {
        assert!(
            statuses.contains(&format!(".B {code}\n")),
            "EXIT STATUS lacks {code}"
        );
        assert!(
            help.contains(&format!("    {code}   ")) || help.contains(&format!("{code} if")),
            "--help's EXIT STATUS lacks {code}"
        );
    }
    // Every variable the code reads (and TZ, which jiff reads for -T local).
    let environment = section(&page, "ENVIRONMENT");
    let mut read = vec!["TZ".to_owned()];
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).unwrap();
                for call in ["env::var_os(\"", "env::var(\""] {
                    for (at, _) in code.match_indices(call) {
                        let name = &code[at + call.len()..];
                        read.push(name[..name.find('"').unwrap()].to_owned());
                    }
                }
            }
        }
    }
    assert!(read.len() >= 4, "{read:?}");
    for name in read {
        assert!(
            environment.contains(&format!(".B {name}\n")),
            "ENVIRONMENT lacks {name}"
        );
    }
}

#[test]
fn the_json_page_names_every_kind_and_field_of_docs_json() {
    let schema = doc("JSON.md");
    // Described, not only in an example.
    let whole = doc("netwatch-json.5");
    let page = whole.replace(section(&whole, "EXAMPLES"), "");
    // A name as a word of the page: not part of a longer identifier.
    let has_word = |name: &str| {
        page.match_indices(name).any(|(at, _)| {
            let before = page[..at].chars().next_back();
            let after = page[at + name.len()..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            !ident(before) && !ident(after)
        })
    };
    let mut names = Vec::new();
    for line in schema.lines() {
        // Table rows: `| `field` | type | meaning |`, the names in the first cell.
        let Some(first) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        names.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    // Headings: ## `kind`: ...
    for line in schema.lines().filter(|l| l.starts_with('#')) {
        names.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    names.sort();
    names.dedup();
    assert!(names.len() > 60, "{names:?}");
    for name in &names {
        assert!(
            has_word(name),
            "netwatch-json(5) lacks `{name}` of docs/JSON.md"
        );
    }
}

/// bash, completing as a user would: `-p` offers the live pids (this test's among
/// them), `--errno` the errno names, `--cgroup` the hierarchy's paths.
#[test]
fn bash_completes_pids_errno_names_and_cgroups() {
    let complete = |words: &str, cur: &str, prev: &str| {
        let script = format!(
            "source <({} --completions bash) && COMP_WORDS=({words}) && \
             COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)) && _netwatch netwatch '{cur}' '{prev}' && \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            support::NETWATCH
        );
        let (status, out, err) = support::run_program("bash", &["-c", &script], &[]);
        assert!(status.success(), "{err}");
        out
    };
    let pids = complete("netwatch -p ''", "", "-p");
    let me = std::process::id().to_string();
    assert!(pids.lines().any(|l| l == me), "{me} not in {pids}");
    let errnos = complete("netwatch --errno EADDR", "EADDR", "--errno");
    assert_eq!(
        errnos.lines().collect::<Vec<_>>(),
        ["EADDRINUSE", "EADDRNOTAVAIL"]
    );
    if std::path::Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        let cgroups = complete("netwatch --cgroup /", "/", "--cgroup");
        assert!(cgroups.lines().all(|l| l.starts_with('/')), "{cgroups}");
        assert!(!cgroups.trim().is_empty(), "no cgroup offered");
    }
}

#[test]
fn bad_filters_are_usage_errors() {
    rejects(&["-P", "0"], 2, "`0` is not a port (1 to 65535)");
    rejects(&["--errno", "NOPE"], 2, "`NOPE` is not an errno name");
    rejects(
        &["-n", "abcdefghijklmnopq"],
        2,
        "the kernel keeps 15 of a process name",
    );
    rejects(&["-4", "-6"], 2, "cannot be used with");
    rejects(&["-d", "0"], 2, "not a number of seconds above 0");
    rejects(&["--keep-going"], 2, "--pid <PID>");
    let nine: Vec<String> = (1..=9)
        .flat_map(|p| ["-P".to_owned(), p.to_string()])
        .collect();
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    rejects(
        &nine,
        2,
        "-P given 9 times: the kernel filter holds 8 at most",
    );
}
