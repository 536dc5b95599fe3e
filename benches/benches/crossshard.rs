//! The cross-shard hop: a batch of GETs posted to another shard's mailbox, executed there on its
//! store, and the replies posted back — the path a request for a key owned by another shard
//! takes, minus the sockets.
//!
//! Two variants: `awake` (the owner polls its mailbox, yielding between polls, so the figure is
//! the channel and the store work) and `asleep` (the owner blocks on its doorbell eventfd between batches, so each
//! hop pays the wake-up a sleeping shard costs).

use std::borrow::Cow;
use std::hint::black_box;
use std::os::fd::RawFd;
use std::thread;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datapath::exec::{Executor, Op, Outcome, StoreSettings};
use datapath::mailbox::{Address, Mailbox};
use datapath::shard::{Mail, RemoteReply, RemoteRequest, Ticket};

/// Keys in the owner's store; every GET hits.
const KEYS: usize = 10_000;
/// Requests per mail (per loop tick), as a busy shard batches them.
const BATCHES: [usize; 3] = [1, 16, 128];

fn key(n: usize) -> Vec<u8> {
    format!("key:{n:012}").into_bytes()
}

/// Blocks until the eventfd is readable (what a sleeping loop's epoll_wait/io_uring wait does).
fn wait_readable(fd: RawFd) {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, count 1.
    unsafe { libc::poll(&mut poll, 1, 1000) };
}

/// The owner shard: executes every request it is mailed and mails the outcomes back.
fn owner(mailbox: Mailbox<Mail>, reply_to: Address<Mail>, sleep: bool) {
    let settings = StoreSettings::dram(64 << 20);
    let mut executor = Executor::open(&settings, 1, 2, 1).expect("DRAM store");
    for n in 0..KEYS {
        let op = Op::Set {
            key: Cow::Owned(key(n)),
            value: Cow::Owned(vec![b'x'; 100]),
            flags: 0,
            expiry: datapath::exec::Expiry::Never,
            condition: datapath::exec::Condition::Always,
            return_old: false,
        };
        assert!(matches!(executor.execute(&op, 1), Outcome::Stored { .. }));
    }
    loop {
        let mail = loop {
            if let Some(mail) = mailbox.try_receive() {
                break mail;
            }
            if sleep && mailbox.prepare_to_sleep() {
                wait_readable(mailbox.doorbell().fd());
                mailbox.doorbell().drain();
            } else {
                // Awake but polite: on a machine shared with other work a pure spin starves the
                // thread it waits for.
                thread::yield_now();
            }
            mailbox.awake();
        };
        if mail.requests.is_empty() {
            return; // the stop message
        }
        let replies = mail
            .requests
            .into_iter()
            .map(|request| RemoteReply {
                ticket: request.ticket,
                outcome: executor.execute(&request.op, 1).into_owned(),
            })
            .collect();
        reply_to.post(Mail {
            from: 1,
            requests: Vec::new(),
            replies,
            observe: None,
        });
    }
}

fn hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_shard_hop");
    for sleep in [false, true] {
        for batch in BATCHES {
            let (owner_mailbox, owner_address) = Mailbox::<Mail>::new().unwrap();
            let (home_mailbox, home_address) = Mailbox::<Mail>::new().unwrap();
            let owner_thread = thread::spawn(move || owner(owner_mailbox, home_address, sleep));
            let mut next = 0usize;
            group.throughput(Throughput::Elements(batch as u64));
            let name = if sleep { "asleep" } else { "awake" };
            group.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
                b.iter(|| {
                    let requests = (0..batch)
                        .map(|part| {
                            next = (next + 7919) % KEYS;
                            let ticket = Ticket {
                                conn: 0,
                                generation: 1,
                                seq: 0,
                                part: part as u32,
                            };
                            RemoteRequest {
                                ticket,
                                op: Op::Get {
                                    key: Cow::Owned(key(next)),
                                },
                            }
                        })
                        .collect();
                    owner_address.post(Mail {
                        from: 0,
                        requests,
                        replies: Vec::new(),
                        observe: None,
                    });
                    let reply = loop {
                        if let Some(mail) = home_mailbox.try_receive() {
                            break mail;
                        }
                        thread::yield_now();
                    };
                    assert_eq!(reply.replies.len(), batch);
                    black_box(reply);
                });
            });
            owner_address.post(Mail::default());
            owner_thread.join().unwrap();
        }
    }
    group.finish();
}

criterion_group!(benches, hop);
criterion_main!(benches);
