//! Cross-shard messages: one crossbeam channel per shard plus a doorbell (an eventfd) that wakes
//! the shard's event loop when mail arrives while it sleeps.
//!
//! The doorbell rings only for a sleeping shard: before it blocks in its event loop a shard sets
//! `sleeping` and looks at its channel once more; a sender pushes first and then swaps `sleeping`
//! to false, writing the eventfd only if it was true. With both sides sequentially consistent,
//! either the shard sees the message in its last look or the sender sees it asleep, so no message
//! waits for a later wake-up, and a busy shard gets no eventfd writes at all.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};

/// A shard's wake-up line.
#[derive(Debug)]
pub struct Doorbell {
    eventfd: OwnedFd,
    sleeping: AtomicBool,
}

impl Doorbell {
    pub fn new() -> io::Result<Doorbell> {
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Doorbell {
            eventfd,
            sleeping: AtomicBool::new(false),
        })
    }

    /// The eventfd the shard's loop waits on (readable when rung).
    pub fn fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// Rings whether or not the shard sleeps (used to deliver a stop request).
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) already means "rung".
        unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
    }

    /// Consumes a ring (after the eventfd polled readable with epoll).
    pub fn drain(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN (not rung) leaves it untouched.
        unsafe { libc::read(self.fd(), (&mut count as *mut u64).cast(), 8) };
    }

    fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.store(sleeping, Ordering::SeqCst);
    }
}

/// What another shard can post to this one.
#[derive(Clone, Debug)]
pub struct Address<M> {
    sender: Sender<M>,
    doorbell: Arc<Doorbell>,
}

impl<M> Address<M> {
    /// Posts `message` and wakes the shard through its eventfd if it sleeps. A shard that has
    /// exited drops the message.
    pub fn post(&self, message: M) {
        if self.post_quietly(message) {
            self.doorbell.ring();
        }
    }

    /// Posts `message` without ringing; returns whether the shard sleeps and must be woken by
    /// the caller (through the eventfd, or an io_uring MSG_RING to the shard's ring).
    pub fn post_quietly(&self, message: M) -> bool {
        self.sender.send(message).is_ok() && self.doorbell.sleeping.swap(false, Ordering::SeqCst)
    }

    pub fn doorbell(&self) -> &Arc<Doorbell> {
        &self.doorbell
    }
}

/// A shard's own end.
#[derive(Debug)]
pub struct Mailbox<M> {
    receiver: Receiver<M>,
    doorbell: Arc<Doorbell>,
}

impl<M> Mailbox<M> {
    /// Makes a mailbox and the address others post to. The channel is unbounded: what bounds it
    /// is the per-connection limit on replies in flight (see `conn::PENDING_REPLIES_MAX`), so
    /// a sender never blocks a shard's loop.
    pub fn new() -> io::Result<(Mailbox<M>, Address<M>)> {
        let (sender, receiver) = crossbeam::channel::unbounded();
        let doorbell = Arc::new(Doorbell::new()?);
        Ok((
            Mailbox {
                receiver,
                doorbell: Arc::clone(&doorbell),
            },
            Address { sender, doorbell },
        ))
    }

    pub fn try_receive(&self) -> Option<M> {
        // Empty and disconnected (every sender gone at shutdown) both mean: nothing to do.
        self.receiver.try_recv().ok()
    }

    pub fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    /// Announces that the loop is about to block. Returns false (and stays awake) when mail
    /// is already waiting, so the caller must not block.
    pub fn prepare_to_sleep(&self) -> bool {
        self.doorbell.set_sleeping(true);
        if self.receiver.is_empty() {
            true
        } else {
            self.doorbell.set_sleeping(false);
            false
        }
    }

    /// Announces that the loop is awake again (senders need not ring).
    pub fn awake(&self) {
        self.doorbell.set_sleeping(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(doorbell: &Doorbell) -> bool {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64.
        let read = unsafe { libc::read(doorbell.fd(), (&mut count as *mut u64).cast(), 8) };
        read == 8 && count > 0
    }

    #[test]
    fn a_busy_shard_is_not_rung_and_a_sleeping_one_is() {
        let (mailbox, address) = Mailbox::<u32>::new().unwrap();
        address.post(1);
        assert!(!rung(mailbox.doorbell()), "awake shard must not be rung");
        assert!(
            !mailbox.prepare_to_sleep(),
            "mail is waiting: must not sleep"
        );
        assert_eq!(mailbox.try_receive(), Some(1));
        assert!(mailbox.prepare_to_sleep());
        address.post(2);
        assert!(rung(mailbox.doorbell()), "sleeping shard must be rung");
        mailbox.awake();
        assert_eq!(mailbox.try_receive(), Some(2));
        assert_eq!(mailbox.try_receive(), None);
    }

    #[test]
    fn messages_cross_threads_in_order() {
        let (mailbox, address) = Mailbox::<u32>::new().unwrap();
        let sender = std::thread::spawn(move || (0..10_000).for_each(|n| address.post(n)));
        let mut expected = 0;
        while expected < 10_000 {
            match mailbox.try_receive() {
                Some(n) => {
                    assert_eq!(n, expected);
                    expected += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        sender.join().unwrap();
    }
}
