//! Compact JWS with EdDSA (Ed25519), as RFC 8037 defines it: ID tokens, launch contexts and
//! payment notifications are all signed with the instance key.

use agora_domain::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::InstanceKey;

/// The key id published in the JWKS: the RFC 7638 thumbprint of the OKP key.
pub fn jwk_thumbprint_kid(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Signs `claims` as a compact JWS (`typ` names what it is, such as `JWT`).
pub(crate) fn sign_jws(key: &InstanceKey, typ: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({
        "alg": "EdDSA",
        "typ": typ,
        "kid": jwk_thumbprint_kid(&key.public_bytes()),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Verifies a compact JWS signed with EdDSA by `public` and returns its claims. It checks the
/// signature and the algorithm only; the caller checks `exp`, `aud` and the rest.
pub fn verify_jws(public: &[u8; 32], token: &str) -> Result<serde_json::Value> {
    let refuse = |why: &str| Error::Unauthenticated(format!("the signed token {why}"));
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse("is not a compact JWS"));
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("has a malformed header"))?;
    if header["alg"] != "EdDSA" {
        return Err(refuse("is not signed with EdDSA"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("has a malformed signature"))?;
    let key = VerifyingKey::from_bytes(public).map_err(|_| refuse("names a bad key"))?;
    let signing_input = &token[..header_len(token)];
    key.verify(signing_input.as_bytes(), &signature)
        .map_err(|_| refuse("has a bad signature"))?;
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("has a malformed payload"))
}

/// The length of `header.payload`, the part the signature covers.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_any_change_breaks_it() {
        let key = InstanceKey::generate();
        let claims = serde_json::json!({ "sub": "abc", "exp": 10 });
        let token = sign_jws(&key, "JWT", &claims);
        assert_eq!(verify_jws(&key.public_bytes(), &token).unwrap(), claims);
        let other = InstanceKey::generate();
        assert!(verify_jws(&other.public_bytes(), &token).is_err());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"someone else","exp":10}"#);
        parts[1] = &forged;
        assert!(verify_jws(&key.public_bytes(), &parts.join(".")).is_err());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        assert!(verify_jws(&key.public_bytes(), &none).is_err());
        assert!(verify_jws(&key.public_bytes(), "a.b").is_err());
    }

    #[test]
    fn the_key_id_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 public key.
        let public = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            jwk_thumbprint_kid(&public.try_into().unwrap()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
