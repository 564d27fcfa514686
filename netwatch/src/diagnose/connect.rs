//! Failed connects: ephemeral ports exhausted, a 4-tuple collision, a refusal, a SYN
//! never answered, a destination unreachable (also when reported on the socket after
//! EINPROGRESS: the classifier sees the same errno).

use netwatch_common::{
    Family,
    errno::{EADDRNOTAVAIL, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT},
};

use super::{Class, Classifier, Context, Diagnosis, Said, What};
use crate::event::{Event, connect::Connect};

impl Classifier {
    pub(super) fn connect(
        &mut self,
        ev: &Event,
        c: &Connect,
        ctx: &Context<'_>,
        out: &mut Vec<Diagnosis>,
    ) {
        if c.errno == 0 {
            return;
        }
        *self
            .proc(ev)
            .counts
            .entry((Class::of(c.errno), Family::Connect.name()))
            .or_default() += 1;
        match c.errno {
            EADDRNOTAVAIL => {
                // Linux returns EADDRNOTAVAIL both when no ephemeral port is left for
                // this destination and when an explicitly bound source port would
                // recreate a 4-tuple still in use (TIME_WAIT): tell them apart by the
                // bind (net/ipv4/inet_hashtables.c __inet_hash_connect / __inet_check_established).
                let bound = c.sock.socket().filter(|s| s.port_bound);
                let (key, what) = match bound {
                    Some(s) => {
                        let src_port = s.local.port().unwrap_or(0);
                        (
                            Said::Collision(src_port, c.addr),
                            What::TupleCollision {
                                src_port,
                                dst: c.addr,
                            },
                        )
                    }
                    None => (
                        Said::Exhausted(c.addr),
                        What::EphemeralExhausted {
                            dst: c.addr,
                            range: ctx.port_range,
                        },
                    ),
                };
                self.say(ev, key, |_| what, out);
            }
            ECONNREFUSED if c.addr.port().is_some() => {
                let what = What::ConnectionRefused { dst: c.addr };
                self.say(ev, Said::Refused(c.addr), |_| what, out);
            }
            ETIMEDOUT if c.addr.port().is_some() => {
                let what = What::ConnectTimedOut {
                    dst: c.addr,
                    syn_retries: ctx.syn_retries.unwrap_or(Err("not looked up")),
                };
                self.say(ev, Said::TimedOut(c.addr), |_| what, out);
            }
            EHOSTUNREACH | ENETUNREACH if c.addr.port().is_some() => {
                let what = What::Unreachable {
                    dst: c.addr,
                    errno: c.errno,
                    route: ctx.route.unwrap_or(Err("not looked up")),
                };
                self.say(ev, Said::Unreachable(c.addr), |_| what, out);
            }
            _ => {}
        }
    }
}
