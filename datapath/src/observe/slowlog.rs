//! SLOWLOG: the commands that took longer than a threshold, newest first, as Redis keeps them.
//!
//! Each shard keeps the slow commands its connections ran (at most [`SlowLog`]'s length limit,
//! the oldest dropped first); SLOWLOG GET merges the shards' entries by time. Arguments are
//! shortened as Redis does: at most [`ARGUMENTS_MAX`] of them, each at most
//! [`ARGUMENT_BYTES_MAX`] bytes, the rest summarised.

use std::collections::VecDeque;

/// Entries kept per shard when `--slowlog-max-len` is not given (Redis' default).
pub const LEN_MAX_DEFAULT: usize = 128;
/// Largest `--slowlog-max-len` accepted: bounds a shard's slow log memory (an entry holds at
/// most [`ARGUMENTS_MAX`] arguments of [`ARGUMENT_BYTES_MAX`] bytes, about 4 KiB: 40 MiB at
/// most per shard).
pub const LEN_MAX_LIMIT: usize = 10_000;
/// Threshold in microseconds when `--slowlog-log-slower-than` is not given (Redis' default);
/// 0 logs every command, a negative value none.
pub const SLOWER_THAN_US_DEFAULT: i64 = 10_000;
/// What a secret argument is logged as.
pub const REDACTED: &[u8] = b"(redacted)";

/// Arguments kept per entry (the last slot says how many more there were).
pub const ARGUMENTS_MAX: usize = 32;
/// Bytes kept per argument (the rest summarised).
pub const ARGUMENT_BYTES_MAX: usize = 128;

/// One slow command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowEntry {
    /// Unique over the process: the shard's own sequence number times the shard count plus
    /// the shard.
    pub id: u64,
    pub unix_seconds: u64,
    pub duration_us: u64,
    pub arguments: Vec<Vec<u8>>,
    /// The client's address, `ip:port`.
    pub peer: String,
    /// CLIENT SETNAME's name, empty when none.
    pub client_name: Vec<u8>,
}

/// One shard's slow log.
#[derive(Debug)]
pub struct SlowLog {
    entries: VecDeque<SlowEntry>,
    len_max: usize,
    slower_than_us: i64,
    next_sequence: u64,
    shard: u64,
    shard_count: u64,
}

impl SlowLog {
    pub fn new(shard: usize, shard_count: usize, slower_than_us: i64, len_max: usize) -> SlowLog {
        assert!(
            len_max <= LEN_MAX_LIMIT,
            "config checks the slow log length"
        );
        SlowLog {
            entries: VecDeque::with_capacity(len_max.min(LEN_MAX_DEFAULT)),
            len_max,
            slower_than_us,
            next_sequence: 0,
            shard: shard as u64,
            shard_count: shard_count.max(1) as u64,
        }
    }

    /// Whether a command that took `duration_ns` belongs in the log.
    pub fn is_slow(&self, duration_ns: u64) -> bool {
        self.slower_than_us >= 0
            && self.len_max > 0
            && duration_ns / 1000 >= self.slower_than_us as u64
    }

    /// Logs a command; `arguments` are shortened here.
    pub fn push<'a>(
        &mut self,
        duration_ns: u64,
        unix_seconds: u64,
        arguments: impl ExactSizeIterator<Item = &'a [u8]>,
        peer: String,
        client_name: Vec<u8>,
    ) {
        let id = self.next_sequence * self.shard_count + self.shard;
        self.next_sequence += 1;
        if self.entries.len() >= self.len_max {
            self.entries.pop_back();
        }
        self.entries.push_front(SlowEntry {
            id,
            unix_seconds,
            duration_us: duration_ns / 1000,
            arguments: shorten(redact(arguments.collect()).into_iter()),
            peer,
            client_name,
        });
    }

    /// Entries, newest first.
    pub fn entries(&self) -> impl Iterator<Item = &SlowEntry> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    pub fn slower_than_us(&self) -> i64 {
        self.slower_than_us
    }

    pub fn len_max(&self) -> usize {
        self.len_max
    }

    /// CONFIG SET slowlog-log-slower-than.
    pub fn set_slower_than_us(&mut self, slower_than_us: i64) {
        self.slower_than_us = slower_than_us;
    }

    /// CONFIG SET slowlog-max-len: the oldest entries beyond it go at once.
    pub fn set_len_max(&mut self, len_max: usize) {
        assert!(
            len_max <= LEN_MAX_LIMIT,
            "CONFIG SET checks the slow log length"
        );
        self.len_max = len_max;
        self.entries.truncate(len_max);
    }
}

/// Passwords never reach the log: AUTH and HELLO keep only their name, CONFIG only its name and
/// subcommand when it names `requirepass`.
fn redact(mut arguments: Vec<&[u8]>) -> Vec<&[u8]> {
    let named = |name: &str| {
        arguments
            .first()
            .is_some_and(|first| first.eq_ignore_ascii_case(name.as_bytes()))
    };
    let keep = if named("auth") || named("hello") {
        1
    } else if named("config")
        && arguments
            .iter()
            .any(|argument| argument.eq_ignore_ascii_case(b"requirepass"))
    {
        2
    } else {
        return arguments;
    };
    if arguments.len() > keep {
        arguments.truncate(keep);
        arguments.push(REDACTED);
    }
    arguments
}

fn shorten<'a>(arguments: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let count = arguments.len();
    let kept = if count > ARGUMENTS_MAX {
        ARGUMENTS_MAX - 1
    } else {
        count
    };
    let mut shortened: Vec<Vec<u8>> = arguments
        .take(kept)
        .map(|argument| {
            if argument.len() > ARGUMENT_BYTES_MAX {
                let mut kept = argument[..ARGUMENT_BYTES_MAX].to_vec();
                kept.extend_from_slice(
                    format!("... ({} more bytes)", argument.len() - ARGUMENT_BYTES_MAX).as_bytes(),
                );
                kept
            } else {
                argument.to_vec()
            }
        })
        .collect();
    if count > kept {
        shortened.push(format!("... ({} more arguments)", count - kept).into_bytes());
    }
    shortened
}

/// The shards' entries merged, newest first (by time, then id), at most `count` of them.
pub fn merge<'a>(shards: impl Iterator<Item = &'a SlowEntry>, count: usize) -> Vec<&'a SlowEntry> {
    let mut all: Vec<&SlowEntry> = shards.collect();
    all.sort_by(|a, b| {
        b.unix_seconds
            .cmp(&a.unix_seconds)
            .then_with(|| b.id.cmp(&a.id))
    });
    all.truncate(count);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(log: &mut SlowLog, duration_us: u64, arguments: &[&[u8]]) {
        log.push(
            duration_us * 1000,
            1_700_000_000,
            arguments.iter().copied(),
            "127.0.0.1:5000".into(),
            Vec::new(),
        );
    }

    #[test]
    fn keeps_the_newest_within_its_length() {
        let mut log = SlowLog::new(1, 4, 100, 2);
        assert!(!log.is_slow(99_999));
        assert!(log.is_slow(100_000));
        push(&mut log, 150, &[b"get", b"a"]);
        push(&mut log, 200, &[b"get", b"b"]);
        push(&mut log, 300, &[b"get", b"c"]);
        let ids: Vec<u64> = log.entries().map(|entry| entry.id).collect();
        // Shard 1 of 4: sequence numbers 2 and 1.
        assert_eq!(ids, vec![9, 5]);
        assert_eq!(log.entries().next().unwrap().duration_us, 300);
        log.reset();
        assert!(log.is_empty());
    }

    #[test]
    fn shortens_arguments_as_redis_does() {
        let mut log = SlowLog::new(0, 1, 0, 8);
        let long = vec![b'v'; ARGUMENT_BYTES_MAX + 10];
        let many: Vec<&[u8]> = (0..ARGUMENTS_MAX + 5).map(|_| &long[..3]).collect();
        push(&mut log, 1, &many);
        push(&mut log, 1, &[b"set", b"k", &long]);
        let entries: Vec<&SlowEntry> = log.entries().collect();
        assert_eq!(entries[0].arguments[2].len(), ARGUMENT_BYTES_MAX + 19);
        assert!(entries[0].arguments[2].ends_with(b"... (10 more bytes)"));
        assert_eq!(entries[1].arguments.len(), ARGUMENTS_MAX);
        assert_eq!(
            entries[1].arguments[ARGUMENTS_MAX - 1],
            b"... (6 more arguments)"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let mut log = SlowLog::new(0, 1, 0, 8);
        push(&mut log, 1, &[b"AUTH", b"user", b"secret"]);
        push(
            &mut log,
            1,
            &[b"hello", b"3", b"AUTH", b"default", b"secret"],
        );
        push(&mut log, 1, &[b"config", b"set", b"requirepass", b"secret"]);
        push(&mut log, 1, &[b"config", b"get", b"maxmemory"]);
        let logged: Vec<Vec<Vec<u8>>> =
            log.entries().map(|entry| entry.arguments.clone()).collect();
        assert_eq!(
            logged[0],
            vec![b"config".to_vec(), b"get".to_vec(), b"maxmemory".to_vec()]
        );
        assert_eq!(
            logged[1],
            vec![b"config".to_vec(), b"set".to_vec(), REDACTED.to_vec()]
        );
        assert_eq!(logged[2], vec![b"hello".to_vec(), REDACTED.to_vec()]);
        assert_eq!(logged[3], vec![b"AUTH".to_vec(), REDACTED.to_vec()]);
    }

    #[test]
    fn off_below_zero_and_everything_at_zero() {
        assert!(!SlowLog::new(0, 1, -1, 8).is_slow(u64::MAX));
        assert!(SlowLog::new(0, 1, 0, 8).is_slow(0));
        assert!(!SlowLog::new(0, 1, 0, 0).is_slow(0));
    }
}
