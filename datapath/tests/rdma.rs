//! The RDMA transport on a host without an RDMA device (developer machines, CI): `--rdma-port`
//! must not stop the server. It logs what was probed and found, serves TCP, and INFO says the
//! transport is off. The transport itself is tested on soft-RoCE VMs by scripts/rxe/test.sh.

mod common;

use common::{free_port, Server};

#[test]
fn without_a_device_the_server_says_so_and_serves_tcp() {
    if platform::rdma::probe().choose(None).is_some() {
        // This host has RDMA; scripts/rxe/test.sh covers the transport itself.
        return;
    }
    let rdma_port = free_port().to_string();
    let server = Server::start(&["--rdma-port", &rdma_port]);
    let mut client = server.client();
    assert_eq!(client.call(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(client.call(&["GET", "k"]), b"$1\r\nv\r\n");
    let info = String::from_utf8(client.call(&["INFO", "server"])).unwrap();
    assert!(
        info.contains("rdma:off (no active RoCEv2 port on any device; probed: no RDMA device"),
        "{info}"
    );
    let log = server.stop();
    assert!(
        log.contains("RDMA transport off, serving TCP only"),
        "{log}"
    );
}
