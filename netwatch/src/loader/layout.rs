//! Where the tracepoint records keep the fields the programs read, from tracefs:
//! [`TpLayout`], handed to the kernel programs at load time.

use netwatch_common::{ABSENT, SR_TUPLE_LEN, TpLayout};

use crate::tracefs::{Format, Tracefs};

/// Offsets of the record fields the reset, signal and process programs read.
/// A tracepoint or field the kernel lacks stays [`ABSENT`].
pub(super) fn tp_layout(tracefs: &Tracefs, disabled: &mut Vec<String>) -> TpLayout {
    let mut l = TpLayout::UNKNOWN;
    let mut format = |category: &str, name: &str| {
        if !tracefs.has(category, name) {
            return None;
        }
        tracefs
            .format(category, name)
            .map_err(|e| disabled.push(format!("{category}:{name}: {e}")))
            .ok()
    };
    let offset = |format: &Format, field: &str| format.field(field).map_or(ABSENT, |f| f.offset);
    if let Some(f) = format("tcp", "tcp_receive_reset") {
        l.rr_skaddr = offset(&f, "skaddr");
    }
    if let Some(f) = format("tcp", "tcp_send_reset") {
        send_reset_layout(&f, &mut l);
    }
    let mut read = |category: &str, name: &str, fields: &mut [(&str, &mut u32)]| {
        if let Some(f) = format(category, name) {
            for (field, slot) in fields.iter_mut() {
                **slot = offset(&f, field);
            }
        }
    };
    read(
        "signal",
        "signal_generate",
        &mut [
            ("sig", &mut l.sg_sig),
            ("code", &mut l.sg_code),
            ("comm", &mut l.sg_comm),
            ("pid", &mut l.sg_pid),
            ("group", &mut l.sg_group),
            ("result", &mut l.sg_result),
        ],
    );
    read(
        "sched",
        "sched_process_exit",
        &mut [("group_dead", &mut l.pe_group_dead)],
    );
    read(
        "sched",
        "sched_process_exec",
        &mut [("old_pid", &mut l.ex_old_pid)],
    );
    l
}

/// `tcp:tcp_send_reset`'s fields. Since Linux 6.10 the record holds the RST's
/// addresses as `sockaddr_in6`-sized buffers and the reset's `reason`; before, the
/// socket's ports, family and addresses one by one (`sport` ... `daddr_v6`, in the
/// order [`SR_TUPLE_LEN`] describes) and no reason. Either is read; `state` is in both.
fn send_reset_layout(format: &Format, l: &mut TpLayout) {
    let field = |name: &str| format.field(name).ok();
    l.sr_skaddr = field("skaddr").map_or(ABSENT, |f| f.offset);
    l.sr_state = field("state")
        .filter(|f| f.size == 4)
        .map_or(ABSENT, |f| f.offset);
    l.sr_reason = field("reason")
        .filter(|f| f.size == 4)
        .map_or(ABSENT, |f| f.offset);
    if let (Some(s), Some(d)) = (field("saddr"), field("daddr"))
        && s.size == 28
        && d.size == 28
    {
        l.sr_saddr = s.offset;
        l.sr_daddr = d.offset;
        return;
    }
    // The older layout, accepted only packed as the program reads it.
    let Some(sport) = field("sport") else { return };
    let expected = [
        ("sport", 0, 2),
        ("dport", 2, 2),
        ("family", 4, 2),
        ("saddr", 6, 4),
        ("daddr", 10, 4),
        ("saddr_v6", 14, 16),
        ("daddr_v6", 30, 16),
    ];
    if expected.iter().all(|(name, at, size)| {
        field(name).is_some_and(|f| f.offset == sport.offset + at && f.size == *size)
    }) && expected
        .last()
        .is_some_and(|(_, at, size)| (at + size) as usize == SR_TUPLE_LEN)
    {
        l.sr_tuple = sport.offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(text: &str) -> TpLayout {
        let mut l = TpLayout::UNKNOWN;
        send_reset_layout(&Format::from_text("tcp:tcp_send_reset", text), &mut l);
        l
    }

    /// Linux 6.10 and later (this host's 6.18, Debian's 6.12).
    #[test]
    fn send_reset_with_sockaddr_buffers_and_a_reason() {
        let l = layout(include_str!("../testdata/tcp_send_reset-6.18.format"));
        assert_eq!(
            (l.sr_skaddr, l.sr_state, l.sr_reason, l.sr_saddr, l.sr_daddr),
            (16, 24, 28, 32, 60)
        );
        assert_eq!(l.sr_tuple, ABSENT);
    }

    /// Linux 6.1 (Debian 12): ports, family and addresses one by one, no reason.
    #[test]
    fn send_reset_with_the_older_tuple_and_no_reason() {
        let l = layout(include_str!("../testdata/tcp_send_reset-6.1.format"));
        assert_eq!((l.sr_skaddr, l.sr_state, l.sr_tuple), (16, 24, 28));
        assert_eq!(
            (l.sr_reason, l.sr_saddr, l.sr_daddr),
            (ABSENT, ABSENT, ABSENT)
        );
    }

    /// A layout neither kernel has is not read at the wrong offsets.
    #[test]
    fn send_reset_with_an_unknown_layout_reads_no_addresses() {
        let text = include_str!("../testdata/tcp_send_reset-6.1.format")
            .replace("offset:30;\tsize:2", "offset:31;\tsize:2");
        let l = layout(&text);
        assert_eq!((l.sr_tuple, l.sr_saddr), (ABSENT, ABSENT));
        assert_eq!(l.sr_skaddr, 16);
    }
}
