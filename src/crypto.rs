//! Keys kept outside the database: the Support PIN key (AES-256-GCM) and
//! the audit chain key (HMAC-SHA-256).
//!
//! Four digits have only 10,000 values, so a hash of a PIN is as good as
//! the PIN to anyone holding the file; and owners must be able to view
//! their PIN. Hence encryption, with the key elsewhere.

use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::domain::account::UserId;
use crate::domain::pin::SupportPin;

/// 32 secret bytes. `Debug` shows only the key's ID.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

/// A key that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key is 32 bytes in base64 (44 characters)")]
pub struct MalformedKey;

impl SecretKey {
    /// Draws a fresh key from the operating system.
    pub fn generate() -> Self {
        Self(aes_gcm::Key::<Aes256Gcm>::generate().into())
    }

    /// Reads base64 text, ignoring surrounding white space.
    pub fn from_base64(text: &str) -> Result<Self, MalformedKey> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| MalformedKey)?;
        bytes.try_into().map(Self).map_err(|_| MalformedKey)
    }

    /// The key as base64, for writing a key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A short public fingerprint that tells keys apart without revealing
    /// them; `purpose` keeps the PIN key's and audit key's IDs unrelated.
    pub fn id(&self, purpose: &str) -> String {
        let digest = Sha256::new()
            .chain_update(b"pinline key id\0")
            .chain_update(purpose.as_bytes())
            .chain_update([0])
            .chain_update(self.0)
            .finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The raw bytes, for the HMAC of the audit chain.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id("debug"))
    }
}

/// A Support PIN as stored: encrypted, bound to its owner, version and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPin {
    /// ID of the key it was sealed under.
    pub key_id: String,
    /// 96-bit GCM nonce, fresh for every sealing.
    pub nonce: Vec<u8>,
    /// Ciphertext with the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// A sealed PIN that would not open: wrong key, or moved or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored Support PIN of user {user_id} does not decrypt under key {key_id}")]
pub struct UnsealError {
    /// Whose PIN.
    pub user_id: UserId,
    /// The key tried.
    pub key_id: String,
}

/// Seals and opens Support PINs under one key.
#[derive(Clone)]
pub struct PinCipher {
    cipher: Aes256Gcm,
    key_id: String,
}

impl fmt::Debug for PinCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinCipher({})", self.key_id)
    }
}

/// What [`SecretKey::id`] is given for PIN keys.
pub const PIN_KEY_PURPOSE: &str = "support-pin";
/// What [`SecretKey::id`] is given for audit keys.
pub const AUDIT_KEY_PURPOSE: &str = "audit-chain";

impl PinCipher {
    /// A cipher for `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self {
            cipher: Aes256Gcm::new(&key.0.into()),
            key_id: key.id(PIN_KEY_PURPOSE),
        }
    }

    /// The ID of this cipher's key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `pin` for `user_id` at `version`.
    pub fn seal(&self, user_id: UserId, version: i64, pin: &SupportPin) -> SealedPin {
        let nonce = Nonce::generate();
        let aad = associated_data(user_id, version, &self.key_id);
        let payload = Payload {
            msg: pin.as_bytes(),
            aad: aad.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .expect("AES-GCM encrypts four bytes without fail");
        SealedPin {
            key_id: self.key_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Decrypts a sealed PIN, which must belong to `user_id` at `version`
    /// and have been sealed under this cipher's key.
    pub fn open(
        &self,
        user_id: UserId,
        version: i64,
        sealed: &SealedPin,
    ) -> Result<SupportPin, UnsealError> {
        let error = || UnsealError {
            user_id,
            key_id: self.key_id.clone(),
        };
        let nonce = Nonce::try_from(sealed.nonce.as_slice()).map_err(|_| error())?;
        // The key ID in the associated data is ours, not the row's: a row
        // sealed under another key fails here instead of decrypting.
        let aad = associated_data(user_id, version, &self.key_id);
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: aad.as_bytes(),
        };
        let plain = self.cipher.decrypt(&nonce, payload).map_err(|_| error())?;
        let text = std::str::from_utf8(&plain).map_err(|_| error())?;
        SupportPin::parse(text).map_err(|_| error())
    }
}

fn associated_data(user_id: UserId, version: i64, key_id: &str) -> String {
    format!("pinline support pin v1\0{user_id}\0{version}\0{key_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> UserId {
        UserId::parse(text).unwrap()
    }

    #[test]
    fn a_sealed_pin_opens_to_the_same_digits() {
        let cipher = PinCipher::new(&SecretKey::generate());
        let pin = SupportPin::parse("0917").unwrap();
        let sealed = cipher.seal(user("12345678"), 3, &pin);
        assert_eq!(cipher.open(user("12345678"), 3, &sealed), Ok(pin));
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"0917"));
    }

    #[test]
    fn the_same_pin_seals_differently_each_time() {
        let cipher = PinCipher::new(&SecretKey::generate());
        let pin = SupportPin::parse("1111").unwrap();
        let a = cipher.seal(user("12345678"), 1, &pin);
        let b = cipher.seal(user("12345678"), 1, &pin);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn a_wrong_key_fails_instead_of_giving_other_digits() {
        let sealed = PinCipher::new(&SecretKey::generate()).seal(
            user("12345678"),
            1,
            &SupportPin::parse("4321").unwrap(),
        );
        let other = PinCipher::new(&SecretKey::generate());
        assert!(other.open(user("12345678"), 1, &sealed).is_err());
    }

    #[test]
    fn a_pin_moved_to_another_user_or_version_fails() {
        let cipher = PinCipher::new(&SecretKey::generate());
        let sealed = cipher.seal(user("12345678"), 1, &SupportPin::parse("4321").unwrap());
        assert!(cipher.open(user("87654321"), 1, &sealed).is_err());
        assert!(cipher.open(user("12345678"), 2, &sealed).is_err());
    }

    #[test]
    fn edited_ciphertext_or_nonce_fails() {
        let cipher = PinCipher::new(&SecretKey::generate());
        let mut sealed = cipher.seal(user("12345678"), 1, &SupportPin::parse("4321").unwrap());
        sealed.ciphertext[0] ^= 1;
        assert!(cipher.open(user("12345678"), 1, &sealed).is_err());
        sealed.nonce.pop();
        assert!(cipher.open(user("12345678"), 1, &sealed).is_err());
    }

    #[test]
    fn keys_round_trip_through_base64_and_reject_other_lengths() {
        let key = SecretKey::generate();
        assert_eq!(
            SecretKey::from_base64(&format!(" {}\n", key.to_base64())),
            Ok(key)
        );
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
        assert!(SecretKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn key_ids_differ_by_purpose_and_debug_hides_the_key() {
        let key = SecretKey::generate();
        assert_ne!(key.id(PIN_KEY_PURPOSE), key.id(AUDIT_KEY_PURPOSE));
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }
}
