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
