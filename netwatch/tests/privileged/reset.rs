//! The reset source: the RST a client receives, attributed to it (not to pid 0 or to
//! the process that sent it), and the one its peer sent.

use crate::{peer_reset, require_root};

#[test]
fn peer_reset_gives_econnreset_then_epipe_and_the_reset_goes_to_the_socket_owner() {
    require_root();
    peer_reset(&[]).finish();
}
