//! Access control: the server password (`--requirepass`) and how each protocol proves it.
//!
//! RESP clients send `AUTH [default] <password>` or `HELLO <proto> AUTH default <password>`;
//! memcached clients do what memcached 1.6 asks in its `-Y` authfile mode, a `set` whose data
//! block is `<username> <password>` on a connection not yet authenticated. There is one user
//! (Redis' `default`): RESP accepts only that name, memcached ignores the name it is given.
//! Until a connection authenticates, every other command is refused and has no effect.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The reply to a RESP command on a connection that has not authenticated.
pub const RESP_NOAUTH: &str = "NOAUTH Authentication required.";
/// The reply to HELLO without AUTH on a connection that has not authenticated (Redis' words).
pub const RESP_NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
/// The reply to a wrong user name or password.
pub const RESP_WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// The reply to AUTH when no password is set.
pub const RESP_AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// The memcached reply to any command before authentication.
pub const MEMCACHE_UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
/// The memcached reply to wrong credentials.
pub const MEMCACHE_AUTH_FAILED: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
/// The one user name RESP knows.
pub const DEFAULT_USER: &[u8] = b"default";

/// The server password. Compared in constant time over SHA-256 digests, so neither its bytes
/// nor its length leak through the time a wrong guess takes.
#[derive(Clone)]
pub struct Secret {
    digest: [u8; 32],
    /// Kept for CONFIG GET requirepass, which shows it (as Redis does).
    text: Vec<u8>,
}

impl Secret {
    pub fn new(password: &[u8]) -> Secret {
        Secret {
            digest: Sha256::digest(password).into(),
            text: password.to_vec(),
        }
    }

    /// Whether `candidate` is the password.
    pub fn admits(&self, candidate: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate).into();
        digest.ct_eq(&self.digest).into()
    }

    pub fn text(&self) -> &[u8] {
        &self.text
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.digest.ct_eq(&other.digest).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(..)")
    }
}

/// Checks RESP credentials: `user` is None for the one-argument AUTH.
pub fn resp_admits(secret: &Secret, user: Option<&[u8]>, password: &[u8]) -> bool {
    // Both checks always run, so a wrong user name takes as long as a wrong password.
    let user_ok = user.is_none_or(|user| user == DEFAULT_USER);
    secret.admits(password) & user_ok
}

/// Checks the data block of a memcached authentication `set`: `<username> <password>`.
pub fn memcache_admits(secret: &Secret, data: &[u8]) -> bool {
    match data.iter().position(|&byte| byte == b' ') {
        Some(space) => secret.admits(&data[space + 1..]),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_is_admitted() {
        let secret = Secret::new(b"s3cret");
        assert!(secret.admits(b"s3cret"));
        assert!(!secret.admits(b"s3cre"));
        assert!(!secret.admits(b"s3cret "));
        assert!(!secret.admits(b""));
        assert!(resp_admits(&secret, None, b"s3cret"));
        assert!(resp_admits(&secret, Some(b"default"), b"s3cret"));
        assert!(!resp_admits(&secret, Some(b"admin"), b"s3cret"));
        assert!(memcache_admits(&secret, b"anyone s3cret"));
        assert!(!memcache_admits(&secret, b"anyone wrong"));
        assert!(!memcache_admits(&secret, b"s3cret"));
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }
}
