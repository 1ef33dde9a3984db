//! Signing secrets: made, kept encrypted, and used to sign as Standard Webhooks says.
//!
//! A secret is `whsec_` and 32 random bytes in standard base64; the HMAC key is those bytes.
//! A delivery is signed over `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256, and
//! `webhook-signature` carries `v1,<base64>` for every secret still valid, separated by
//! spaces, so receivers verify with whichever they hold during a rotation.

use aes_gcm::{Aes256Gcm, KeyInit, Nonce, aead::Aead};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// The version tag of stored ciphertexts.
const STORED_PREFIX: &str = "v1.";

/// A new signing secret, `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key of `secret`: its bytes after the prefix.
fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()
        .filter(|key| !key.is_empty())
}

/// The `v1,<base64>` signature of one delivery attempt with `secret`.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key_of(secret)?).ok()?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Encrypts secrets for the database and decrypts them for signing (AES-256-GCM, a random
/// nonce per secret; the key is derived from the configured key material).
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// A box keyed by `material` (a configured secret string).
    pub fn new(material: &str) -> Self {
        let mut kdf = <Hmac<Sha256> as Mac>::new_from_slice(material.as_bytes())
            .expect("HMAC takes keys of any length");
        kdf.update(b"dishpatch webhook signing secrets v1");
        let key = kdf.finalize().into_bytes();
        Self {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// `secret`, encrypted, as the database keeps it.
    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0_u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), secret.as_bytes())
            .expect("AES-GCM encrypts any short message");
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        format!("{STORED_PREFIX}{}", STANDARD.encode(stored))
    }

    /// The secret in `stored`; none when it was sealed with another key or is damaged.
    pub fn open(&self, stored: &str) -> Option<String> {
        let bytes = STANDARD.decode(stored.strip_prefix(STORED_PREFIX)?).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&Nonce::from(nonce), sealed).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (and its libraries' tests).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("not-a-secret", "msg", 1, body), None);
    }

    #[test]
    fn secrets_are_sealed_per_key_and_never_stored_in_the_clear() {
        let secret = new_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        assert_eq!(key_of(&secret).map(|key| key.len()), Some(32));
        let sealed = SecretBox::new("key material one, long enough").seal(&secret);
        assert!(!sealed.contains(&secret[SECRET_PREFIX.len()..]));
        assert_ne!(
            sealed,
            SecretBox::new("key material one, long enough").seal(&secret)
        );
        assert_eq!(
            SecretBox::new("key material one, long enough").open(&sealed),
            Some(secret)
        );
        assert_eq!(SecretBox::new("another key").open(&sealed), None);
        assert_eq!(SecretBox::new("x").open("v1.AAAA"), None);
    }
}
