//! What the kernel lets Ferrite use for I/O: io_uring, and which of its operations.
//!
//! The probe sets up a small real ring, asks the kernel which opcodes it supports, and registers
//! (then drops) a provided-buffer ring, because that is what the datapath's io_uring loop needs;
//! a kernel or a seccomp policy that refuses any of it makes the datapath take epoll, and the
//! reason is kept so the server can say it.

use io_uring::{opcode, IoUring, Probe};

/// Entries of the probe ring: the smallest ring the kernel accepts is enough to ask questions.
const PROBE_RING_ENTRIES: u32 = 4;
/// Buffer-group id used only for the probe's provided-buffer ring registration.
const PROBE_BUFFER_GROUP: u16 = 0x7ff0;
/// The sysctl that disables io_uring system-wide (0 on, 1 root only, 2 off).
const IO_URING_DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// The opcodes the datapath's io_uring loop submits, with the names the log prints.
const NEEDED_OPCODES: [(u8, &str); 5] = [
    (opcode::AcceptMulti::CODE, "ACCEPT"),
    (opcode::RecvMulti::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Read::CODE, "READ"),
    (opcode::Close::CODE, "CLOSE"),
];

/// The answer of [`probe_io_uring`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoUringSupport {
    /// Everything the io_uring loop needs works; `msg_ring` says whether rings can wake each
    /// other directly (IORING_OP_MSG_RING, kernel 5.18+).
    Available { msg_ring: bool },
    /// io_uring cannot be used; the reason is for the log.
    Unavailable { reason: String },
}

impl IoUringSupport {
    pub fn is_available(&self) -> bool {
        matches!(self, IoUringSupport::Available { .. })
    }
}

/// Probes io_uring as the datapath would use it. Never panics; every failure is a reason.
pub fn probe_io_uring() -> IoUringSupport {
    let disabled = std::fs::read_to_string(IO_URING_DISABLED_SYSCTL)
        .ok()
        .and_then(|text| text.trim().parse::<u8>().ok())
        .unwrap_or(0);
    let ring = match IoUring::new(PROBE_RING_ENTRIES) {
        Ok(ring) => ring,
        Err(error) => {
            let why = match error.raw_os_error() {
                Some(libc::ENOSYS) => "the kernel has no io_uring (ENOSYS)".to_owned(),
                Some(libc::EPERM) if disabled > 0 => {
                    format!("io_uring is disabled by sysctl kernel.io_uring_disabled={disabled} (EPERM)")
                }
                Some(libc::EPERM) => {
                    "io_uring_setup is forbidden (EPERM: seccomp or a container policy)".to_owned()
                }
                _ => format!("io_uring_setup failed: {error}"),
            };
            return IoUringSupport::Unavailable { reason: why };
        }
    };
    let mut probe = Probe::new();
    if let Err(error) = ring.submitter().register_probe(&mut probe) {
        return IoUringSupport::Unavailable {
            reason: format!("IORING_REGISTER_PROBE failed: {error}"),
        };
    }
    let missing: Vec<&str> = NEEDED_OPCODES
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return IoUringSupport::Unavailable {
            reason: format!("the kernel's io_uring lacks {}", missing.join(", ")),
        };
    }
    if let Err(reason) = probe_buffer_ring(&ring) {
        return IoUringSupport::Unavailable { reason };
    }
    IoUringSupport::Available {
        msg_ring: probe.is_supported(opcode::MsgRingData::CODE),
    }
}

/// Registers and unregisters a one-entry provided-buffer ring (kernel 5.19+, which also brought
/// multishot accept and receive).
fn probe_buffer_ring(ring: &IoUring) -> Result<(), String> {
    /// One ring entry (`struct io_uring_buf`: addr u64, len u32, bid u16, resv u16).
    const ENTRY_BYTES: usize = 16;
    let page = vec![0u8; 4096 + ENTRY_BYTES];
    // The kernel wants the ring page-aligned.
    let offset = page.as_ptr().align_offset(4096);
    let address = page[offset..].as_ptr() as u64;
    // SAFETY: `address` points at ENTRY_BYTES zeroed bytes inside `page`, page-aligned, which
    // stays alive until after the ring is unregistered below.
    let registered = unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(address, 1, PROBE_BUFFER_GROUP, 0)
    };
    if let Err(error) = registered {
        return Err(format!(
            "provided-buffer rings are not supported (IORING_REGISTER_PBUF_RING: {error})"
        ));
    }
    ring.submitter()
        .unregister_buf_ring(PROBE_BUFFER_GROUP)
        .map_err(|error| format!("IORING_UNREGISTER_PBUF_RING failed: {error}"))?;
    drop(page);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_without_panicking_and_explains_a_refusal() {
        match probe_io_uring() {
            IoUringSupport::Available { .. } => {}
            IoUringSupport::Unavailable { reason } => assert!(!reason.is_empty()),
        }
    }
}
