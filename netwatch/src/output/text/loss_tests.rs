use netwatch_common::EventKind;

use super::*;

fn closing(lost: &[(EventKind, u64)], exits_recovered: u64) -> String {
    let stats = RunStats {
        lost: lost.to_vec(),
        exits_recovered,
        ..RunStats::default()
    };
    let mut out = Vec::new();
    summary(&mut out, &[], &stats).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_closing_lines_say_what_losses_leave_exact() {
    let text = closing(&[(EventKind::Bind, 900), (EventKind::Exit, 3)], 3);
    assert!(
        text.contains("lossy: 903 records were lost (ring buffer full: bind 900, exit 3)"),
        "{text}"
    );
    assert!(
        text.contains("  exact: the error counts (the kernel counts failures whose records it lost); EXIT (the kernel kept the lost exit records)"),
        "{text}"
    );
    assert!(
        text.contains("  incomplete: the diagnoses of the lost failures\n"),
        "{text}"
    );
    // An exit the kernel could not keep, and a lost SIGPIPE.
    let text = closing(&[(EventKind::Exit, 2), (EventKind::Signal, 1)], 1);
    assert!(
        text.contains("  incomplete: EXIT of some processes; SIGPIPE\n"),
        "{text}"
    );
    assert!(!closing(&[], 0).contains("lossy"));
}

#[test]
fn a_summary_while_tracing_says_the_running_processes_counts_are_not_final() {
    let stats = RunStats {
        lost: vec![(EventKind::Bind, 5)],
        so_far: true,
        ..RunStats::default()
    };
    let mut out = Vec::new();
    summary(&mut out, &[], &stats).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("  exact: the error counts of the processes that exited"),
        "{text}"
    );
    assert!(
        text.contains("  incomplete: the error counts of running processes (their lost failures are added when they exit, and at the end); the diagnoses"),
        "{text}"
    );
}
