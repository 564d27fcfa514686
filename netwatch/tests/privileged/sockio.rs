//! The sockio source: failed receives and sends on sockets and pipes (sendfile too),
//! traced at `sock_send_length` or, as on kernels before 6.3, at the syscall exits.

use serde_json::Value;

use crate::support::{Actor, Netwatch};
use crate::{peer_reset, port_of, read_from_server, require_root, reset};

/// What the kernels before 6.3 (no `sock_send_length`) see: socket I/O traced at the
/// syscall exits, forced on this kernel.
#[test]
fn socket_io_at_the_syscall_exits_reports_the_same_errors() {
    require_root();
    let exits = [("NETWATCH_SOCKIO", "exits")];
    let sockio_at_exits = |stderr: &str| {
        assert!(
            stderr.contains("sockio (at syscall exits)"),
            "the ready line names the path: {stderr}"
        );
    };
    let (status, _, stderr) = peer_reset(&exits).stop();
    assert!(status.success(), "{stderr}");
    sockio_at_exits(&stderr);
    let (status, _, stderr) = pipe_epipe(&exits).stop();
    assert!(status.success(), "{stderr}");
    sockio_at_exits(&stderr);
}

#[test]
fn epipe_on_a_pipe_is_reported_once_per_call() {
    require_root();
    pipe_epipe(&[]).finish();
}

/// write and writev to a pipe without readers, SIGPIPE ignored: one EPIPE each.
fn pipe_epipe(env: &[(&str, &str)]) -> Netwatch {
    let mut nw = Netwatch::start_with_env(&["-j"], env);
    let mut writer = Actor::spawn(
        r#"
import signal
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
r, w = os.pipe()
os.close(r)
say(fd=w)
for call in (lambda: os.write(w, b"x"), lambda: os.writev(w, [b"x"])):
    try:
        call()
        say(err=0)
    except OSError as e:
        say(err=e.errno)
"#,
    );
    let fd = writer.read("fd");
    assert_eq!(writer.read("err"), "32");
    assert_eq!(writer.read("err"), "32");
    let pid = writer.pid();
    assert!(writer.wait().success());
    nw.wait_json("the writer's exit", |v| {
        v["kind"] == "exit" && v["pid"] == pid
    });
    nw.sync();
    let sends: Vec<Value> = nw
        .json_seen()
        .into_iter()
        .filter(|v| v["kind"] == "send" && v["pid"] == pid)
        .collect();
    let calls: Vec<&str> = sends.iter().filter_map(|v| v["syscall"].as_str()).collect();
    assert_eq!(calls, ["write", "writev"], "{sends:?}");
    for v in &sends {
        assert_eq!(v["error"], "EPIPE");
        assert_eq!(v["fd"].to_string(), fd);
        assert_eq!(v["sock"]["proto"], "none", "a pipe, not a socket: {v}");
    }
    nw
}

#[test]
fn sendfile_to_a_client_that_left_mid_transfer_is_epipe() {
    require_root();
    let mut nw = Netwatch::start(&["-j"]);
    let mut server = Actor::spawn(
        r#"
import tempfile
f = tempfile.TemporaryFile(); f.write(b"x" * (32 << 20)); f.flush()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
say(port=srv.getsockname()[1])
a, peer = srv.accept()
say(peer=peer[1])
sent = 0
try:
    while sent < (32 << 20):
        n = os.sendfile(a.fileno(), f.fileno(), sent, 1 << 20)
        if n == 0:
            break
        sent += n
    say(err=0)
except OSError as e:
    say(err=e.errno)
"#,
    );
    let (client, port, cport) = read_from_server(&mut server, 65536);
    reset(client);
    let err = server.read("err");
    assert!(
        err == "32" || err == "104",
        "sendfile ended with errno {err}"
    );
    let pid = server.pid();
    assert!(server.wait().success());

    let v = nw.wait_json("the sendfile64 error", |v| {
        v["kind"] == "send" && v["pid"] == pid
    });
    assert_eq!(v["syscall"], "sendfile64");
    assert_eq!(v["errno"].to_string(), err);
    assert_eq!(
        (port_of(&v, "local"), port_of(&v, "remote")),
        (Some(port.into()), Some(cport.into()))
    );
    nw.finish();
}
