//! RC links over a real RDMA device. Hosts without one (developer machines, CI) cannot run these:
//! `scripts/rxe/test.sh` runs them inside a soft-RoCE VM, with `--ignored`.
use platform::rdma::probe;
use platform::verbs::{
    Event, Events, Link, LinkConfig, Listener, VerbsError, COMPLETIONS_PER_POLL_MAX,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

const CONFIG: LinkConfig = LinkConfig {
    receive_buffers: 8,
    send_slots: 8,
    buffer_bytes: 4096,
};
const DEADLINE: Duration = Duration::from_secs(20);

/// The IPv4 address of the first active RoCEv2 port.
fn device_address() -> Ipv4Addr {
    let found = probe();
    let (_, port) = found
        .choose(None)
        .unwrap_or_else(|| panic!("needs an RDMA device: {found}"));
    port.roce_v2_ipv4().expect("a RoCEv2 IPv4 GID")
}

/// Listens on `address` with a fresh event channel.
fn listen(address: SocketAddrV4) -> (Events, Listener) {
    let events = Events::new().unwrap();
    let listener = Listener::bind(address, &events).unwrap();
    (events, listener)
}

/// Serves one link at a time, echoing every message, until `links_to_serve` links have ended;
/// returns how each ended.
fn echo_server((mut events, _listener): (Events, Listener), links_to_serve: usize) -> Vec<String> {
    let mut endings = Vec::new();
    let mut link: Option<Link> = None;
    let started = Instant::now();
    while endings.len() < links_to_serve {
        assert!(
            started.elapsed() < DEADLINE,
            "server gave up after {endings:?}"
        );
        match events.next_event().unwrap() {
            Some(Event::Request(request)) => {
                assert!(
                    request.greeting().starts_with(b"echo"),
                    "greeting {:?}",
                    request.greeting()
                );
                let accepted = request.accept(CONFIG).unwrap();
                assert!(accepted.peer().is_some(), "the peer's address is known");
                link = Some(accepted);
            }
            Some(Event::Disconnected(id)) if link.as_ref().is_some_and(|link| link.id() == id) => {
                link = None;
                endings.push("disconnected".to_owned());
            }
            Some(_) | None => {}
        }
        if let Some(active) = link.as_mut() {
            if let Err(error) = echo_waiting(active) {
                endings.push(format!("error: {error}"));
                link = None;
            }
        }
        thread::sleep(Duration::from_micros(200));
    }
    endings
}

fn echo_waiting(link: &mut Link) -> Result<(), VerbsError> {
    let mut echoes = Vec::new();
    link.poll(|message| echoes.push(message.to_vec()))?;
    for echo in &echoes {
        let started = Instant::now();
        while !link.send(echo)? {
            assert!(started.elapsed() < DEADLINE, "send slots never freed");
            link.poll(|message| panic!("unexpected {} bytes while sending", message.len()))?;
        }
    }
    Ok(())
}

fn round_trip(link: &mut Link, message: &[u8]) -> Vec<u8> {
    assert!(link.send(message).unwrap());
    let started = Instant::now();
    let mut reply = None;
    while reply.is_none() {
        assert!(started.elapsed() < DEADLINE, "no reply");
        link.poll(|message| reply = Some(message.to_vec())).unwrap();
    }
    reply.unwrap()
}

#[test]
#[ignore = "needs an RDMA device: scripts/rxe/test.sh runs it in a soft-RoCE VM"]
fn messages_echo_in_order_and_bad_peers_are_cut_off() {
    let address = SocketAddrV4::new(device_address(), 18515);
    let listening = listen(address);
    let server = thread::spawn(move || echo_server(listening, 3));

    // 1. Every size from empty to a full buffer comes back byte for byte.
    let mut link = Link::connect(address, CONFIG, b"echo", DEADLINE).unwrap();
    for len in [0usize, 1, 7, 100, 1000, 4095, 4096] {
        let message: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        assert_eq!(
            round_trip(&mut link, &message),
            message,
            "echo of {len} bytes"
        );
    }
    // Pipelined: every send slot in flight at once, echoes in order.
    for round in 0..CONFIG.send_slots as u8 {
        assert!(link.send(&[round; 64]).unwrap());
    }
    let mut echoed = Vec::new();
    let started = Instant::now();
    while echoed.len() < CONFIG.send_slots as usize {
        assert!(
            started.elapsed() < DEADLINE,
            "pipelined echoes missing: {}",
            echoed.len()
        );
        link.poll(|message| echoed.push(message[0])).unwrap();
    }
    assert_eq!(echoed, (0..CONFIG.send_slots as u8).collect::<Vec<_>>());
    // A message longer than a buffer is refused before it reaches the NIC.
    assert!(matches!(
        link.send(&[0u8; 4097]),
        Err(VerbsError::MessageTooLarge {
            len: 4097,
            max: 4096
        })
    ));
    // 2. A client that goes away is noticed by the server.
    drop(link);

    // 3. A client that never takes its replies (two receives posted, never re-posted) is cut off
    //    by the server's NIC once its retries run out, instead of stalling the server.
    let stingy = LinkConfig {
        receive_buffers: 2,
        ..CONFIG
    };
    let mut silent = Link::connect(address, stingy, b"echo", DEADLINE).unwrap();
    for round in 0..CONFIG.send_slots as u8 {
        assert!(silent.send(&[round; 512]).unwrap());
    }
    let started = Instant::now();
    while !silent.peer_disconnected().unwrap() {
        assert!(
            started.elapsed() < DEADLINE,
            "the server never cut off the silent client"
        );
        thread::sleep(Duration::from_millis(1));
    }

    // 4. A fresh client is served normally after all that.
    let mut fresh = Link::connect(address, CONFIG, b"echo", DEADLINE).unwrap();
    assert_eq!(round_trip(&mut fresh, b"still serving"), b"still serving");
    drop(fresh);
    let endings = server.join().unwrap();
    drop(silent);
    assert_eq!(endings.len(), 3);
    assert_eq!(endings[0], "disconnected");
    assert!(
        endings[1].starts_with("error"),
        "the silent client was not cut off: {endings:?}"
    );
    assert_eq!(endings[2], "disconnected");
}

/// A request moved to another thread's channel before it is accepted: that thread serves the
/// link and hears its disconnect; the listening thread's channel hears nothing more of it.
#[test]
#[ignore = "needs an RDMA device: scripts/rxe/test.sh runs it in a soft-RoCE VM"]
fn a_migrated_link_reports_to_its_new_channel() {
    let address = SocketAddrV4::new(device_address(), 18516);
    let (mut listening, listener) = listen(address);
    let mut owning = Events::new().unwrap();
    let owner_address = owning.address();
    let (handover, inbox) = std::sync::mpsc::channel();
    let (owner_done, owner_finished) = std::sync::mpsc::channel();
    let accepting = thread::spawn(move || {
        let _listener = listener;
        let started = Instant::now();
        let mut migrated = None;
        // Keep reading the listening channel until the owner has seen the link end: nothing of
        // the link may come here.
        while owner_finished.try_recv().is_err() {
            assert!(started.elapsed() < DEADLINE, "the owner never finished");
            match listening.next_event().unwrap() {
                Some(Event::Request(mut request)) => {
                    assert!(migrated.is_none(), "a second request");
                    request.migrate(&owner_address).unwrap();
                    migrated = Some(request.id());
                    handover.send(request).unwrap();
                }
                Some(_) => panic!("the listening channel heard of the migrated link"),
                None => thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    let owner = thread::spawn(move || {
        let request = inbox.recv_timeout(DEADLINE).expect("no handover");
        let id = request.id();
        let mut link = request.accept(CONFIG).unwrap();
        let started = Instant::now();
        let mut established = false;
        loop {
            assert!(
                started.elapsed() < DEADLINE,
                "the owner never heard the disconnect"
            );
            match owning.next_event().unwrap() {
                Some(Event::Established(event_id)) if event_id == id => established = true,
                Some(Event::Disconnected(event_id)) if event_id == id => {
                    owner_done.send(()).unwrap();
                    return established;
                }
                Some(_) => panic!("unexpected event on the owner's channel"),
                None => {}
            }
            echo_waiting(&mut link).unwrap();
            thread::sleep(Duration::from_micros(200));
        }
    });
    let mut link = Link::connect(address, CONFIG, b"echo", DEADLINE).unwrap();
    assert_eq!(round_trip(&mut link, b"migrated"), b"migrated");
    drop(link);
    assert!(
        owner.join().unwrap(),
        "ESTABLISHED reached the owner's channel"
    );
    accepting.join().unwrap();
}

/// However many completions wait, one poll takes at most COMPLETIONS_PER_POLL_MAX and says so;
/// the rest come out of the next polls, in order, none lost.
#[test]
#[ignore = "needs an RDMA device: scripts/rxe/test.sh runs it in a soft-RoCE VM"]
fn a_poll_takes_a_bounded_batch_and_the_rest_follow_in_order() {
    let address = SocketAddrV4::new(device_address(), 18517);
    let (mut events, listener) = listen(address);
    let messages = 2 * COMPLETIONS_PER_POLL_MAX as u32 + 8;
    let wide = LinkConfig {
        receive_buffers: messages,
        send_slots: messages,
        buffer_bytes: 64,
    };
    let server = thread::spawn(move || {
        let _listener = listener;
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < DEADLINE, "no connect request");
            match events.next_event().unwrap() {
                Some(Event::Request(request)) => return (events, request.accept(wide).unwrap()),
                _ => thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    let mut client = Link::connect(address, wide, b"echo", DEADLINE).unwrap();
    let (_events, mut served) = server.join().unwrap();
    for number in 0..messages {
        assert!(client.send(&number.to_le_bytes()).unwrap());
    }
    // Every send acknowledged means every message is in the server's completion queue: a
    // responder completes a receive before it acknowledges it.
    let started = Instant::now();
    while client.sends_in_flight() > 0 {
        assert!(started.elapsed() < DEADLINE, "sends never acknowledged");
        client.poll(|_| panic!("the server sent nothing")).unwrap();
    }
    let mut received = Vec::new();
    let mut take = |message: &[u8]| received.push(u32::from_le_bytes(message.try_into().unwrap()));
    let first = served.poll_and_arm(&mut take).unwrap();
    assert_eq!(
        (first.messages, first.more),
        (COMPLETIONS_PER_POLL_MAX, true)
    );
    let second = served.poll_unarmed(false, &mut take).unwrap();
    assert_eq!(
        (second.messages, second.more),
        (COMPLETIONS_PER_POLL_MAX, true)
    );
    let last = served.poll_and_arm(&mut take).unwrap();
    assert_eq!((last.messages, last.more), (8, false));
    assert_eq!(received, (0..messages).collect::<Vec<_>>());
}

/// Where no device exists (the usual developer machine and CI host), making a link is an error
/// that says which call failed: never a panic or a hang.
#[test]
fn without_a_device_links_fail_with_an_error() {
    if probe().choose(None).is_some() {
        return; // this host has RDMA: the VM test above covers it
    }
    let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 18515);
    let error = Events::new()
        .and_then(|events| Listener::bind(address, &events))
        .err()
        .expect("no device, yet the listener bound");
    assert!(matches!(error, VerbsError::Call { .. }), "{error}");
    let error = Link::connect(address, CONFIG, b"echo", Duration::from_secs(1))
        .err()
        .expect("connected without a device");
    assert!(
        matches!(error, VerbsError::Call { .. } | VerbsError::Timeout(_)),
        "{error}"
    );
}

/// The two-host half: `scripts/rxe/test.sh` boots two VMs joined by an emulated Ethernet link and
/// runs this in both, with RXE_ROLE=server|client and RXE_PEER set to the other VM's address.
#[test]
#[ignore = "needs two RDMA hosts: scripts/rxe/test.sh runs it in a pair of soft-RoCE VMs"]
fn messages_cross_between_two_hosts() {
    let role = std::env::var("RXE_ROLE").expect("RXE_ROLE=server|client");
    let own = SocketAddrV4::new(device_address(), 18515);
    if role == "server" {
        let endings = echo_server(listen(own), 1);
        assert_eq!(endings, ["disconnected"]);
        return;
    }
    let peer: Ipv4Addr = std::env::var("RXE_PEER")
        .expect("RXE_PEER")
        .parse()
        .unwrap();
    let server = SocketAddrV4::new(peer, 18515);
    // The server VM may still be booting: retry until it listens.
    let started = Instant::now();
    let mut link = loop {
        match Link::connect(server, CONFIG, b"echo", Duration::from_secs(2)) {
            Ok(link) => break link,
            Err(error) => assert!(
                started.elapsed() < DEADLINE * 3,
                "server never listened: {error}"
            ),
        }
        thread::sleep(Duration::from_millis(200));
    };
    for len in [0usize, 1, 1000, 4096] {
        let message: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        assert_eq!(
            round_trip(&mut link, &message),
            message,
            "echo of {len} bytes across hosts"
        );
    }
}
