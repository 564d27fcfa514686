//! Diagnostics on stderr through `tracing`, one plain line each, `netwatch: ...` or
//! `netwatch: warning: ...`: no timestamps or colours, which journald and other
//! collectors add or strip themselves.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match *event.metadata().level() {
            Level::ERROR => w.write_str("netwatch: error: ")?,
            Level::WARN => w.write_str("netwatch: warning: ")?,
            _ => w.write_str("netwatch: ")?,
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Install the stderr logger (info and above).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(Level::INFO)
        .event_format(Plain)
        .try_init();
}
