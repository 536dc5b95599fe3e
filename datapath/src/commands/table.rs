//! The RESP command table: names, arities and key positions as Redis publishes them (COMMAND
//! INFO), which redis-cli and client libraries read.

/// What COMMAND INFO says about one command.
#[derive(Debug)]
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// The name as [`lookup`] compares it: one integer instead of a byte string.
    packed_name: u128,
    /// Redis' arity: positive = exactly that many arguments (name included), negative = at least.
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
}

impl Spec {
    pub fn arity_ok(&self, argument_count: usize) -> bool {
        let count = argument_count as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            count == arity
        } else {
            count >= -arity
        }
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:literal),*], $first:expr, $last:expr, $step:expr, $group:literal, $since:literal, $summary:literal) => {
        Spec { name: $name, packed_name: pack_name($name.as_bytes()), arity: $arity, flags: &[$($flag),*], first_key: $first, last_key: $last, step: $step,
               group: $group, summary: $summary, since: $since }
    };
}

/// Every command Ferrite answers, in the order COMMAND lists them.
pub static COMMANDS: &[Spec] = &[
    spec!(
        "ping",
        -1,
        ["fast"],
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Returns the server's liveliness response."
    ),
    spec!(
        "echo",
        2,
        ["fast"],
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Returns the given string."
    ),
    spec!(
        "quit",
        -1,
        ["fast", "no_auth"],
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Closes the connection."
    ),
    spec!(
        "hello",
        -1,
        ["fast", "no_auth"],
        0,
        0,
        0,
        "connection",
        "6.0.0",
        "Handshakes with the server."
    ),
    spec!(
        "auth",
        -2,
        ["fast", "no_auth"],
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Authenticates the connection."
    ),
    spec!(
        "select",
        2,
        ["fast"],
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Changes the selected database (only 0 exists)."
    ),
    spec!(
        "client",
        -2,
        [],
        0,
        0,
        0,
        "connection",
        "2.4.0",
        "A container for client connection commands."
    ),
    spec!(
        "get",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Returns the string value of a key."
    ),
    spec!(
        "set",
        -3,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Sets the string value of a key, ignoring its type."
    ),
    spec!(
        "setnx",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Set the string value of a key only when the key doesn't exist."
    ),
    spec!(
        "setex",
        4,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "2.0.0",
        "Sets the string value and expiration time of a key."
    ),
    spec!(
        "psetex",
        4,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "2.6.0",
        "Sets the string value and expiration time in milliseconds of a key."
    ),
    spec!(
        "getset",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Returns the previous string value of a key after setting it to a new value."
    ),
    spec!(
        "getdel",
        2,
        ["write", "fast"],
        1,
        1,
        1,
        "string",
        "6.2.0",
        "Returns the string value of a key after deleting the key."
    ),
    spec!(
        "getex",
        -2,
        ["write", "fast"],
        1,
        1,
        1,
        "string",
        "6.2.0",
        "Returns the string value of a key after setting its expiration time."
    ),
    spec!(
        "mget",
        -2,
        ["readonly", "fast"],
        1,
        -1,
        1,
        "string",
        "1.0.0",
        "Atomically returns the string values of one or more keys."
    ),
    spec!(
        "mset",
        -3,
        ["write", "denyoom"],
        1,
        -1,
        2,
        "string",
        "1.0.1",
        "Sets the string values of one or more keys."
    ),
    spec!(
        "msetnx",
        -3,
        ["write", "denyoom"],
        1,
        -1,
        2,
        "string",
        "1.0.1",
        "Sets the string values of one or more keys only when all keys don't exist."
    ),
    spec!(
        "del",
        -2,
        ["write"],
        1,
        -1,
        1,
        "generic",
        "1.0.0",
        "Deletes one or more keys."
    ),
    spec!(
        "unlink",
        -2,
        ["write", "fast"],
        1,
        -1,
        1,
        "generic",
        "4.0.0",
        "Asynchronously deletes one or more keys."
    ),
    spec!(
        "exists",
        -2,
        ["readonly", "fast"],
        1,
        -1,
        1,
        "generic",
        "1.0.0",
        "Determines whether one or more keys exist."
    ),
    spec!(
        "type",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "1.0.0",
        "Determines the type of value stored at a key."
    ),
    spec!(
        "expire",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "1.0.0",
        "Sets the expiration time of a key in seconds."
    ),
    spec!(
        "pexpire",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Sets the expiration time of a key in milliseconds."
    ),
    spec!(
        "expireat",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "1.2.0",
        "Sets the expiration time of a key to a Unix timestamp."
    ),
    spec!(
        "pexpireat",
        -3,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp."
    ),
    spec!(
        "ttl",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "1.0.0",
        "Returns the expiration time in seconds of a key."
    ),
    spec!(
        "pttl",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "2.6.0",
        "Returns the expiration time in milliseconds of a key."
    ),
    spec!(
        "expiretime",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix timestamp."
    ),
    spec!(
        "pexpiretime",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix milliseconds timestamp."
    ),
    spec!(
        "persist",
        2,
        ["write", "fast"],
        1,
        1,
        1,
        "generic",
        "2.2.0",
        "Removes the expiration time of a key."
    ),
    spec!(
        "incr",
        2,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Increments the integer value of a key by one."
    ),
    spec!(
        "decr",
        2,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Decrements the integer value of a key by one."
    ),
    spec!(
        "incrby",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Increments the integer value of a key by a number."
    ),
    spec!(
        "decrby",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "1.0.0",
        "Decrements a number from the integer value of a key."
    ),
    spec!(
        "incrbyfloat",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "2.6.0",
        "Increment the floating point value of a key by a number."
    ),
    spec!(
        "append",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        "string",
        "2.0.0",
        "Appends a string to the value of a key."
    ),
    spec!(
        "strlen",
        2,
        ["readonly", "fast"],
        1,
        1,
        1,
        "string",
        "2.2.0",
        "Returns the length of a string value."
    ),
    spec!(
        "getrange",
        4,
        ["readonly"],
        1,
        1,
        1,
        "string",
        "2.4.0",
        "Returns a substring of the string stored at a key."
    ),
    spec!(
        "setrange",
        4,
        ["write", "denyoom"],
        1,
        1,
        1,
        "string",
        "2.2.0",
        "Overwrites a part of a string value with another by an offset."
    ),
    spec!(
        "dbsize",
        1,
        ["readonly", "fast"],
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Returns the number of keys in the database."
    ),
    spec!(
        "flushdb",
        -1,
        ["write"],
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Removes all keys from the current database."
    ),
    spec!(
        "flushall",
        -1,
        ["write"],
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Removes all keys from all databases."
    ),
    spec!(
        "scan",
        -2,
        ["readonly"],
        0,
        0,
        0,
        "generic",
        "2.8.0",
        "Iterates over the key names in the database."
    ),
    spec!(
        "keys",
        2,
        ["readonly"],
        0,
        0,
        0,
        "generic",
        "1.0.0",
        "Returns all key names that match a pattern."
    ),
    spec!(
        "randomkey",
        1,
        ["readonly"],
        0,
        0,
        0,
        "generic",
        "1.0.0",
        "Returns a random key name from the database."
    ),
    spec!(
        "time",
        1,
        ["fast"],
        0,
        0,
        0,
        "server",
        "2.6.0",
        "Returns the server time."
    ),
    spec!(
        "info",
        -1,
        [],
        0,
        0,
        0,
        "server",
        "1.0.0",
        "Returns information and statistics about the server."
    ),
    spec!(
        "config",
        -2,
        [],
        0,
        0,
        0,
        "server",
        "2.0.0",
        "A container for server configuration commands."
    ),
    spec!(
        "command",
        -1,
        [],
        0,
        0,
        0,
        "server",
        "2.8.13",
        "Returns detailed information about all commands."
    ),
    spec!(
        "slowlog",
        -2,
        ["admin"],
        0,
        0,
        0,
        "server",
        "2.2.12",
        "A container for slow log commands."
    ),
    spec!(
        "ferrite.hotkeys",
        -1,
        [],
        0,
        0,
        0,
        "server",
        "0.1.0",
        "Returns the most accessed keys (sampled, estimated) with their access counts."
    ),
];

/// No command name is longer; longer names are unknown without comparing.
const NAME_BYTES_MAX: usize = 16;

/// `name` lower-cased and zero-padded into one integer (the length is compared apart: a name
/// may hold zero bytes). Comparing these costs one instruction where comparing byte strings of
/// a length known only at run time is a `memcmp` call per candidate (2 % of a P=16 SET).
const fn pack_name(name: &[u8]) -> u128 {
    assert!(
        name.len() <= NAME_BYTES_MAX,
        "command names fit NAME_BYTES_MAX"
    );
    let mut bytes = [0u8; NAME_BYTES_MAX];
    let mut index = 0;
    while index < name.len() {
        bytes[index] = name[index].to_ascii_lowercase();
        index += 1;
    }
    u128::from_le_bytes(bytes)
}

/// Looks a command up by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > NAME_BYTES_MAX {
        return None;
    }
    let packed_name = pack_name(name);
    COMMANDS
        .iter()
        .find(|spec| spec.packed_name == packed_name && spec.name.len() == name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lower_case_and_found_in_any_case() {
        for (index, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(
                COMMANDS[..index]
                    .iter()
                    .all(|other| other.name != spec.name),
                "{} twice",
                spec.name
            );
            assert!(std::ptr::eq(
                lookup(spec.name.to_ascii_uppercase().as_bytes()).unwrap(),
                spec
            ));
        }
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"get\0").is_none() && lookup(b"ge").is_none());
        assert!(lookup(b"getexgetexgetexge").is_none());
    }

    #[test]
    fn arity_follows_redis_convention() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let set = lookup(b"set").unwrap();
        assert!(set.arity_ok(3) && set.arity_ok(9) && !set.arity_ok(2));
    }
}
