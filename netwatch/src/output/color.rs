//! `--color`: errno names and diagnoses stand out in the text stream, on a terminal.
//!
//! Only the ERRNO column of a failed call (`EADDRINUSE`, ...) and a diagnosis line's
//! `!` and sentence are coloured; never JSON (its readers are programs), and never
//! a file (`-o FILE`) or a pipe unless `--color always` asks for it. `auto` also
//! honours NO_COLOR (https://no-color.org): set and not empty, no colour.

use std::ffi::OsStr;

use crate::cli::ColorWhen;

/// Red: an errno name.
pub const ERRNO: &str = "\x1b[31m";
/// Yellow: a diagnosis.
pub const DIAGNOSIS: &str = "\x1b[33m";
/// Back to the terminal's colours.
pub const RESET: &str = "\x1b[0m";

/// Whether the text output is coloured. `json`: the output is NDJSON; `to_file`:
/// `-o FILE`; `terminal`: stdout is a terminal; `no_color`: the NO_COLOR variable.
pub fn enabled(
    when: ColorWhen,
    json: bool,
    to_file: bool,
    terminal: bool,
    no_color: Option<&OsStr>,
) -> bool {
    if json {
        return false;
    }
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => !to_file && terminal && no_color.is_none_or(OsStr::is_empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_a_terminal_unless_no_color_is_set() {
        let auto = |to_file, terminal, no_color: Option<&str>| {
            enabled(
                ColorWhen::Auto,
                false,
                to_file,
                terminal,
                no_color.map(OsStr::new),
            )
        };
        assert!(auto(false, true, None));
        assert!(
            auto(false, true, Some("")),
            "NO_COLOR empty counts as unset"
        );
        assert!(!auto(false, true, Some("1")));
        assert!(!auto(false, true, Some("0")), "any value, even 0");
        assert!(!auto(false, false, None), "a pipe");
        assert!(!auto(true, true, None), "-o FILE");
    }

    #[test]
    fn always_and_never_decide_alone_but_json_is_never_coloured() {
        for (to_file, terminal, no_color) in [
            (false, false, None),
            (true, false, Some(OsStr::new("1"))),
            (false, true, None),
        ] {
            assert!(enabled(
                ColorWhen::Always,
                false,
                to_file,
                terminal,
                no_color
            ));
            assert!(!enabled(
                ColorWhen::Never,
                false,
                to_file,
                terminal,
                no_color
            ));
            for when in [ColorWhen::Always, ColorWhen::Auto, ColorWhen::Never] {
                assert!(!enabled(when, true, to_file, terminal, no_color));
            }
        }
    }
}
