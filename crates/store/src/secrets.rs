//! Credentials at rest: passwords as argon2id hashes, API keys as SHA-256 digests. Neither is ever stored in clear.
//!
//! Webhook signing secrets are the exception that cannot be hashed: Relaywatch must read them back to sign each
//! delivery. They are stored encrypted ([`SecretCipher`], AES-256-GCM under a key derived from the installation's
//! signing secret) and bound to their row, so a database dump alone does not reveal them.

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

/// Every webhook signing secret starts with this (the Standard Webhooks convention); the rest is base64.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a webhook signing secret (Standard Webhooks asks for 24 to 64).
const WEBHOOK_SECRET_BYTES: usize = 32;

/// A new webhook signing secret, `whsec_<base64 of 32 random bytes>`; the HMAC key is the decoded part.
pub fn generate_webhook_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; WEBHOOK_SECRET_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Encrypts and decrypts secrets that must be read back (webhook signing secrets).
///
/// The key is derived from the installation secret (`signing_secret`) with HMAC-SHA256 under a label of its own, so
/// it differs from the token-signing key. Each value gets a random 96-bit nonce; the associated data names the row
/// it belongs to, so a ciphertext copied into another row does not decrypt. Stored form: `v1.<base64 nonce+sealed>`.
/// Changing the installation secret makes stored secrets unreadable: deliveries then fail with a clear error until
/// each webhook's secret is rotated.
#[derive(Clone)]
pub struct SecretCipher {
    key: std::sync::Arc<aws_lc_rs::aead::LessSafeKey>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(***)")
    }
}

/// A stored secret that does not decrypt: another installation secret, or an edited row.
#[derive(Debug, thiserror::Error)]
#[error("the stored secret cannot be decrypted (was the installation's signing_secret changed?)")]
pub struct UndecryptableSecret;

const CIPHER_LABEL: &[u8] = b"relaywatch: encryption of secrets at rest, v1";
const CIPHER_VERSION: &str = "v1.";

impl SecretCipher {
    pub fn new(installation_secret: &[u8]) -> Self {
        use aws_lc_rs::{aead, hmac};
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, installation_secret),
            CIPHER_LABEL,
        );
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, derived.as_ref())
            .expect("an HMAC-SHA256 tag is a valid AES-256 key");
        Self {
            key: std::sync::Arc::new(aead::LessSafeKey::new(key)),
        }
    }

    /// Encrypts `plaintext` for the row named by `context` (e.g. `webhook:<id>`).
    pub fn encrypt(&self, context: &str, plaintext: &str) -> String {
        use aws_lc_rs::aead;
        use base64::Engine;
        let mut nonce = [0u8; aead::NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let mut sealed = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM sealing of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{CIPHER_VERSION}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    pub fn decrypt(&self, context: &str, stored: &str) -> Result<String, UndecryptableSecret> {
        use aws_lc_rs::aead;
        use base64::Engine;
        let raw = stored
            .strip_prefix(CIPHER_VERSION)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or(UndecryptableSecret)?;
        if raw.len() < aead::NONCE_LEN {
            return Err(UndecryptableSecret);
        }
        let (nonce, sealed) = raw.split_at(aead::NONCE_LEN);
        let nonce =
            aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| UndecryptableSecret)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| UndecryptableSecret)?;
        String::from_utf8(plain.to_vec()).map_err(|_| UndecryptableSecret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_are_prefixed_base64_of_32_bytes() {
        use base64::Engine;
        let s = generate_webhook_secret();
        let raw = s.strip_prefix("whsec_").unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap()
                .len(),
            32
        );
        assert_ne!(s, generate_webhook_secret());
    }

    #[test]
    fn encrypted_secrets_decrypt_only_with_the_same_key_and_row() {
        let cipher = SecretCipher::new(b"installation secret");
        let stored = cipher.encrypt("webhook:1", "whsec_abc");
        assert!(stored.starts_with("v1."));
        assert!(!stored.contains("whsec_abc"));
        assert_ne!(
            stored,
            cipher.encrypt("webhook:1", "whsec_abc"),
            "random nonce"
        );
        assert_eq!(cipher.decrypt("webhook:1", &stored).unwrap(), "whsec_abc");
        assert!(cipher.decrypt("webhook:2", &stored).is_err());
        assert!(
            SecretCipher::new(b"another secret")
                .decrypt("webhook:1", &stored)
                .is_err()
        );
        assert!(cipher.decrypt("webhook:1", "v1.AAAA").is_err());
        assert!(cipher.decrypt("webhook:1", "garbage").is_err());
    }

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
