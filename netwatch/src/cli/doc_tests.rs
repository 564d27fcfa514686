use clap::CommandFactory as _;

use super::*;

/// The text of the page's section `name` (from its `.SH` line to the next one).
fn section(name: &str) -> &'static str {
    let heading = format!(".SH {name}\n");
    let start = MAN_PAGE
        .find(&heading)
        .unwrap_or_else(|| panic!("netwatch.8 has no section {name}"));
    let body = &MAN_PAGE[start + heading.len()..];
    &body[..body.find("\n.SH ").unwrap_or(body.len())]
}

/// `--ring-buffer-size` as roff spells it: `\-\-ring\-buffer\-size`.
fn roff(flag: &str) -> String {
    flag.replace('-', r"\-")
}

fn print(argv: &[&str]) -> String {
    let mut out = Vec::new();
    let args = Args::try_parse_from(argv).unwrap();
    assert!(print_docs(&args, &mut out).unwrap(), "{argv:?}");
    String::from_utf8(out).unwrap()
}

#[test]
fn man_prints_the_hand_written_page() {
    let man = print(&["netwatch", "--man"]);
    assert_eq!(man, MAN_PAGE);
    assert!(man.contains("\n.TH netwatch 8 "), "{}", &man[..200]);
    assert!(
        Args::try_parse_from(["netwatch", "--man", "-j"]).is_err(),
        "--man stands alone"
    );
}

#[test]
fn the_page_documents_every_visible_option_with_its_value_name() {
    let options = section("OPTIONS");
    let mut cmd = Args::command();
    cmd.build();
    let mut checked = 0;
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let id = arg.get_id();
        if let Some(long) = arg.get_long() {
            let long = roff(&format!("--{long}"));
            assert!(options.contains(&long), "OPTIONS lacks {long}");
        }
        if let Some(short) = arg.get_short() {
            let short = format!(r"\fB\-{short}\fR");
            assert!(options.contains(&short), "OPTIONS lacks {short} ({id})");
        }
        if arg.is_positional() {
            assert!(
                options.contains(r"\fB\-\-\fR \fICMD\fR"),
                "OPTIONS lacks -- CMD"
            );
        }
        let values = arg
            .get_action()
            .takes_values()
            .then(|| arg.get_value_names());
        for value in values.flatten().unwrap_or_default() {
            assert!(
                options.contains(&format!(r"\fI{value}\fR")),
                "OPTIONS lacks {id}'s value name {value}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 23, "{checked} options checked");
    // Every value `-T` and `--color` take.
    for value in [
        "local", "utc", "iso", "relative", "none", "auto", "always", "never",
    ] {
        assert!(
            options.contains(&format!(".B {value}\n"))
                || options.contains(&format!(".BR {value} ")),
            "OPTIONS lacks {value}"
        );
    }
}

#[test]
fn the_page_explains_every_diagnosis() {
    let diagnoses = section("DIAGNOSES");
    for kind in crate::diagnose::Kind::ALL {
        let item = format!(".TP\n.B {}\n", kind.name());
        assert!(diagnoses.contains(&item), "DIAGNOSES lacks {}", kind.name());
    }
    assert_eq!(
        diagnoses.matches(".TP\n.B ").count(),
        crate::diagnose::Kind::ALL.len(),
        "one entry per diagnosis, no more"
    );
}

#[test]
fn completions_offer_every_visible_option_and_no_hidden_one() {
    use clap_complete::Shell;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let script = print(&["netwatch", "--completions", &shell.to_string()]);
        for offered in [
            "--ring-buffer-size",
            "--keep-going",
            "--errno",
            "--time",
            "--pid",
        ] {
            let offered = match shell {
                Shell::Fish => format!("-l {}", &offered[2..]),
                _ => offered.to_owned(),
            };
            assert!(script.contains(&offered), "{shell}: no {offered}");
        }
        // The values clap cannot offer (complete_values): pids, cgroup paths.
        let values: &[&str] = match shell {
            Shell::Bash => &["cd /proc && ls -d [0-9]*", "cd /sys/fs/cgroup && find"],
            Shell::Zsh => &[":PID:_pids", "_path_files -W /sys/fs/cgroup -/"],
            _ => &["(__fish_complete_pids)", "find /sys/fs/cgroup"],
        };
        for v in values {
            assert!(script.contains(v), "{shell}: no {v}");
        }
        for hidden in ["man", "completions", "failed"] {
            let hidden = match shell {
                Shell::Fish => format!("-l {hidden}"),
                _ => format!("--{hidden}"),
            };
            assert!(!script.contains(&hidden), "{shell} offers {hidden}");
        }
    }
    let bash = print(&["netwatch", "--completions", "bash"]);
    assert!(bash.contains("complete -F"), "{bash}");
    assert!(
        !bash.split_whitespace().any(|w| w == "-x"),
        "bash offers the hidden -x"
    );
    let zsh = print(&["netwatch", "--completions", "zsh"]);
    assert!(!zsh.contains("-x["), "zsh offers the hidden -x");
    let fish = print(&["netwatch", "--completions", "fish"]);
    assert!(!fish.contains("-s x "), "fish offers the hidden -x");
}
