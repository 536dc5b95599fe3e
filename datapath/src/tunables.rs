//! The settings a running server may change (CONFIG SET), each shard holding its own copy.
//!
//! CONFIG SET parses every name/value pair first (all or nothing, as Redis does), then sends
//! the changes to every shard as [`Op::Configure`](crate::exec::Op::Configure), so the request
//! path reads its shard's copy and never a shared lock. The other settings are fixed at start.

use crate::access::Secret;

/// Idle seconds after which a client is closed when none is given: never (Redis' `timeout 0`;
/// connection pools keep idle connections on purpose).
pub const IDLE_TIMEOUT_SECS_DEFAULT: u64 = 0;
/// Seconds a client may hold a partial request, or leave replies unread, without progress
/// before it is closed: a slowloris client (a byte now and then) or one that never reads holds
/// its connection slot and its bounded buffers for this long at most.
pub const STALL_TIMEOUT_SECS_DEFAULT: u64 = 30;

/// One shard's copy of the changeable settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Tunables {
    /// The password clients must give (None: no authentication).
    pub requirepass: Option<Secret>,
    /// Close clients idle (no input, no replies owed) this long; 0 never.
    pub idle_timeout_secs: u64,
    /// Close clients making no progress on a partial request or on unread replies this long;
    /// 0 never.
    pub stall_timeout_secs: u64,
}

/// One accepted CONFIG SET change.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    RequirePass(Option<Secret>),
    IdleTimeout(u64),
    StallTimeout(u64),
    /// Applied by the shard that runs CONFIG SET (the limit is process-wide).
    MaxClients(usize),
    /// The slow log's threshold in microseconds (negative: off); the shard's `Observer` keeps it.
    SlowlogSlowerThan(i64),
    /// The slow log's entries per shard; the shard's `Observer` keeps it.
    SlowlogMaxLen(usize),
}

/// The names CONFIG SET accepts (CONFIG GET shows them with the fixed settings).
pub const CHANGEABLE: [&str; 6] = [
    "requirepass",
    "timeout",
    "stall-timeout",
    "maxclients",
    "slowlog-log-slower-than",
    "slowlog-max-len",
];

impl Change {
    /// Parses `CONFIG SET name value`; the error is Redis' reason text.
    pub fn parse(name: &[u8], value: &[u8]) -> Result<Change, String> {
        let number = || -> Result<u64, String> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_owned())
        };
        match name.to_ascii_lowercase().as_slice() {
            b"requirepass" => Ok(Change::RequirePass(
                (!value.is_empty()).then(|| Secret::new(value)),
            )),
            b"timeout" => Ok(Change::IdleTimeout(number()?)),
            b"stall-timeout" => Ok(Change::StallTimeout(number()?)),
            b"slowlog-log-slower-than" => std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse().ok())
                .map(Change::SlowlogSlowerThan)
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_owned()),
            b"slowlog-max-len" => match number()? {
                length if length as usize > crate::observe::slowlog::LEN_MAX_LIMIT => Err(format!(
                    "argument must be between 0 and {} inclusive",
                    crate::observe::slowlog::LEN_MAX_LIMIT
                )),
                length => Ok(Change::SlowlogMaxLen(length as usize)),
            },
            b"maxclients" => match number()? {
                0 => Err("argument must be between 1 and 4294967295 inclusive".to_owned()),
                clients => Ok(Change::MaxClients(clients as usize)),
            },
            _ => Err("can't set immutable config".to_owned()),
        }
    }
}

impl Tunables {
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::RequirePass(secret) => self.requirepass = secret.clone(),
            Change::IdleTimeout(secs) => self.idle_timeout_secs = *secs,
            Change::StallTimeout(secs) => self.stall_timeout_secs = *secs,
            // Kept elsewhere: the process-wide limit, the shard's slow log.
            Change::MaxClients(_) | Change::SlowlogSlowerThan(_) | Change::SlowlogMaxLen(_) => {}
        }
    }

    /// The CONFIG GET pairs of this shard's settings (maxclients is the caller's to add).
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        let password = self
            .requirepass
            .as_ref()
            .map(|secret| String::from_utf8_lossy(secret.text()).into_owned())
            .unwrap_or_default();
        [
            ("requirepass", password),
            ("timeout", self.idle_timeout_secs.to_string()),
            ("stall-timeout", self.stall_timeout_secs.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_and_apply() {
        let mut tunables = Tunables {
            requirepass: None,
            idle_timeout_secs: 0,
            stall_timeout_secs: STALL_TIMEOUT_SECS_DEFAULT,
        };
        for (name, value) in [
            (&b"TIMEOUT"[..], &b"5"[..]),
            (b"requirepass", b"pw"),
            (b"stall-timeout", b"0"),
        ] {
            tunables.apply(&Change::parse(name, value).unwrap());
        }
        assert_eq!(tunables.idle_timeout_secs, 5);
        assert_eq!(tunables.stall_timeout_secs, 0);
        assert!(tunables.requirepass.as_ref().unwrap().admits(b"pw"));
        tunables.apply(&Change::parse(b"requirepass", b"").unwrap());
        assert_eq!(tunables.requirepass, None);
        assert!(Change::parse(b"timeout", b"-1").is_err());
        assert!(Change::parse(b"maxclients", b"0").is_err());
        assert_eq!(
            Change::parse(b"slowlog-log-slower-than", b"-1"),
            Ok(Change::SlowlogSlowerThan(-1))
        );
        assert_eq!(
            Change::parse(b"SLOWLOG-MAX-LEN", b"10000"),
            Ok(Change::SlowlogMaxLen(10_000))
        );
        assert!(Change::parse(b"slowlog-max-len", b"10001").is_err());
        assert_eq!(
            Change::parse(b"port", b"1"),
            Err("can't set immutable config".to_owned())
        );
    }
}
