//! Credentials at rest: passwords as argon2id hashes, API keys as SHA-256 digests. Neither is ever stored in clear.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

/// Every API key starts with this, so leaked keys are easy to recognise in logs and by secret scanners.
pub const API_KEY_PREFIX: &str = "rw_";
const API_KEY_RANDOM_CHARS: usize = 43; // 43 base62 characters hold more than 256 bits.
const DISPLAY_PREFIX_LEN: usize = 10;

/// A freshly generated API key: shown to the caller once, then only its digest is kept.
pub struct NewApiKey {
    pub plaintext: String,
    pub display_prefix: String,
    pub digest: String,
}

pub fn generate_api_key() -> NewApiKey {
    let random: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(API_KEY_RANDOM_CHARS)
        .map(char::from)
        .collect();
    let plaintext = format!("{API_KEY_PREFIX}{random}");
    NewApiKey {
        display_prefix: plaintext[..DISPLAY_PREFIX_LEN].to_string(),
        digest: api_key_digest(&plaintext),
        plaintext,
    }
}

pub fn api_key_digest(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// A random password for the first installation admin; printed once at first start.
pub fn generate_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// A random secret for signing user tokens, generated at first start when none is configured.
pub fn generate_signing_secret() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Constant-time check of a password against its stored argon2id hash. A malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so login takes as long for unknown emails as for known ones.
pub fn dummy_password_hash() -> &'static str {
    use std::sync::OnceLock;
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("relaywatch-timing-equaliser").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert!(a.plaintext.starts_with("rw_"));
        assert_eq!(a.plaintext.len(), 46);
        assert_ne!(a.plaintext, b.plaintext);
        assert_eq!(a.digest, api_key_digest(&a.plaintext));
        assert_eq!(a.digest.len(), 64);
        assert!(a.plaintext.starts_with(&a.display_prefix));
    }

    #[test]
    fn passwords_verify_only_with_the_right_secret() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
