//! Secrets: API tokens, session and link secrets, password hashes, and the instance's signing key.
//!
//! Secrets are shown once and stored only as hashes: SHA-256 for high-entropy random secrets
//! (tokens, sessions, links), Argon2id for passwords, which people choose.

use std::path::Path;

use agora_domain::{Error, Password, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The start of every API token, so that secret scanners can recognise one.
pub const TOKEN_PREFIX: &str = "agora_";
const TOKEN_ID_HEX_CHARS: usize = 12;
const TOKEN_SECRET_HEX_CHARS: usize = 64;

/// A fresh token: what the user is shown once, the visible prefix, and the hash to store.
pub struct NewSecretToken {
    pub full: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buffer);
    hex::encode(buffer)
}

pub fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Compares two hashes in constant time.
pub fn hashes_equal(left: &[u8], right: &[u8]) -> bool {
    left.ct_eq(right).into()
}

pub fn new_token() -> NewSecretToken {
    let prefix = format!("{TOKEN_PREFIX}{}", random_hex(TOKEN_ID_HEX_CHARS / 2));
    let full = format!("{prefix}_{}", random_hex(TOKEN_SECRET_HEX_CHARS / 2));
    let hash = sha256(&full);
    NewSecretToken { full, prefix, hash }
}

/// The visible prefix of a presented token, if it has the shape of one.
pub fn token_prefix(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_at_checked(TOKEN_ID_HEX_CHARS)?;
    let secret = secret.strip_prefix('_')?;
    let well_formed = id.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == TOKEN_SECRET_HEX_CHARS
        && secret.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| &presented[..TOKEN_PREFIX.len() + TOKEN_ID_HEX_CHARS])
}

/// A random secret for a session cookie, a sign-in link or a CSRF token.
pub fn new_secret() -> String {
    random_hex(32)
}

pub fn hash_password(password: &Password) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))
}

/// Checks a password against a stored Argon2id hash; a malformed hash never matches.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so that timing does not tell.
pub fn decoy_password_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let password =
            Password::parse("decoy password that never matches").expect("the decoy is long enough");
        hash_password(&password).expect("hashing a fixed password works")
    })
}

/// The instance's Ed25519 key: signs audit checkpoints (and, later, launch contexts and ID tokens).
#[derive(Clone)]
pub struct InstanceKey {
    signing: SigningKey,
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceKey")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

impl InstanceKey {
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut OsRng),
        }
    }

    /// Reads the key from `path`; `None` if there is no file.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|_| {
                    Error::invalid(
                        "instance key",
                        format!("{} is not hexadecimal", path.display()),
                    )
                })?;
                let seed: [u8; 32] = bytes.try_into().map_err(|_| {
                    Error::invalid(
                        "instance key",
                        format!("{} must hold 32 bytes", path.display()),
                    )
                })?;
                Ok(Some(Self {
                    signing: SigningKey::from_bytes(&seed),
                }))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::Unavailable(format!(
                "cannot read {}: {error}",
                path.display()
            ))),
        }
    }

    /// Creates a new key at `path`, readable by its owner only; refuses to overwrite one.
    pub fn create(path: &Path) -> Result<Self> {
        let key = Self::generate();
        write_private(path, &hex::encode(key.signing.to_bytes()))?;
        Ok(key)
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    pub fn public_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// A secret value derived from the key for one purpose (`label`): HMAC-SHA-256 under a key
    /// that is itself derived from the signing key, so the signing key never keys a MAC directly.
    pub fn derive(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut outer = Sha256::new();
        outer.update(b"agora derived key\0");
        outer.update(label);
        outer.update(self.signing.to_bytes());
        let derived_key = outer.finalize();
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&derived_key).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// Checks an Ed25519 signature given hex of the public key and of the signature.
pub fn verify_signature(public_hex: &str, message: &[u8], signature_hex: &str) -> bool {
    let Ok(public) = hex::decode(public_hex) else {
        return false;
    };
    let Ok(public) = <[u8; 32]>::try_from(public.as_slice()) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&public) else {
        return false;
    };
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(&signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::Unavailable(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::Unavailable(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_a_visible_prefix_and_parse_back() {
        let token = new_token();
        assert_eq!(token_prefix(&token.full), Some(token.prefix.as_str()));
        assert!(token.prefix.starts_with("agora_"));
        assert_eq!(token.hash, sha256(&token.full));
        assert_eq!(token_prefix("agora_short"), None);
        assert_eq!(token_prefix(&token.full.replace('_', "-")), None);
        assert_eq!(token_prefix(&format!("{}x", token.full)), None);
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let password = Password::parse("a long enough password").unwrap();
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("a long enough password", &hash));
        assert!(!verify_password("another long password", &hash));
        assert!(!verify_password("a long enough password", "not a hash"));
    }

    #[test]
    fn signatures_verify_with_the_public_key_only() {
        let key = InstanceKey::generate();
        let signature = hex::encode(key.sign(b"message"));
        assert!(verify_signature(&key.public_hex(), b"message", &signature));
        assert!(!verify_signature(&key.public_hex(), b"other", &signature));
        assert!(!verify_signature(
            &InstanceKey::generate().public_hex(),
            b"message",
            &signature
        ));
    }
}
