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
    assert!(a.command.is_empty());
}

#[test]
fn check_needs_a_command() {
    assert!(Args::try_parse_from(["netwatch", "--check"]).is_err());
    let a = Args::try_parse_from(["netwatch", "--check", "--summary-only", "--", "true"]).unwrap();
    assert!(a.check && a.summary_only);
}

#[test]
fn filters_parse_as_bcc_users_type_them() {
    let a = Args::try_parse_from([
        "netwatch",
        "-p",
        "1,2",
        "-p",
        "3",
        "-P",
        "80",
        "--errno",
        "eaddrinuse",
        "-n",
        "nginx",
        "-u",
        "33",
        "-4",
        "-T",
        "utc",
        "-d",
        "1.5",
    ])
    .unwrap();
    assert_eq!(a.pids, [1, 2, 3]);
    assert_eq!(a.ports, [80]);
    assert_eq!(a.errnos, [98]);
    assert_eq!(a.names, ["nginx"]);
    assert_eq!((a.uid, a.ipv4, a.ipv6), (Some(33), true, false));
    assert_eq!(a.time, TimeFormat::Utc);
    assert_eq!(a.duration, Some(std::time::Duration::from_millis(1500)));
    for bad in [
        &["netwatch", "-P", "0"][..],
        &["netwatch", "--errno", "ENOTANERRNO"],
        &["netwatch", "-n", "a-name-longer-than-15"],
        &["netwatch", "-4", "-6"],
        &["netwatch", "-d", "0"],
        &["netwatch", "--keep-going"],
    ] {
        assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn quiet_needs_somewhere_to_report() {
    let check = |argv: &[&str]| Args::try_parse_from(argv).unwrap().check_combinations();
    let alone = check(&["netwatch", "--quiet"]).unwrap_err();
    assert!(alone.contains("add --metrics ADDR"), "{alone}");
    let file = check(&["netwatch", "-q", "-o", "/tmp/x"]).unwrap_err();
    assert!(file.contains("--summary-only -o FILE"), "{file}");
    assert!(check(&["netwatch", "-q", "--metrics", "9464"]).is_ok());
    // With a command, the exit status is the report (with --check).
    assert!(check(&["netwatch", "-q", "--check", "--", "true"]).is_ok());
    assert!(check(&["netwatch", "-o", "/tmp/x"]).is_ok());
}

#[test]
fn command_after_double_dash() {
    let a = Args::try_parse_from(["netwatch", "-j", "--", "sh", "-c", "exit 3"]).unwrap();
    assert_eq!(a.command, ["sh", "-c", "exit 3"]);
    assert!(Args::try_parse_from(["netwatch", "-x", "-v"]).is_err());
}
