//! accept, accept4 and socket failing for want of file descriptors (EMFILE, ENFILE).

use super::*;
use crate::event::listen::Listen;

impl Classifier {
    pub(super) fn out_of_fds(
        &mut self,
        ev: &Event,
        l: &Listen,
        ctx: &Context<'_>,
        out: &mut Vec<Diagnosis>,
    ) {
        let p = self.proc(ev);
        *p.counts
            .entry((Class::of(l.errno), Family::of(l.syscall).name()))
            .or_default() += 1;
        let what = What::FdsExhausted {
            syscall: l.syscall,
            errno: l.errno,
            usage: ctx.fds.unwrap_or(Err("not looked up")),
        };
        self.say(ev, Said::OutOfFds(l.errno), |_| what, out);
    }
}
