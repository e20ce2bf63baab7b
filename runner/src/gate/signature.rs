//! Ed25519 signatures of decisions.
//!
//! Keys are standard files: a PKCS#8 PEM private key and its SPKI PEM public
//! key, as `openssl genpkey -algorithm ed25519 -out me.pem` and
//! `openssl pkey -in me.pem -pubout` write them. A public key in the project
//! file may also be the base64 of its 32 bytes.

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// A key that does not read, or a signature that cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// Signs a payload with the private key in a PEM file; base64 signature.
pub fn sign(key_file: &std::path::Path, payload: &[u8]) -> Result<String, SignError> {
    let pem = std::fs::read_to_string(key_file)
        .map_err(|e| SignError(format!("cannot read the key {}: {e}", key_file.display())))?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
        SignError(format!(
            "{} is not an Ed25519 private key in PKCS#8 PEM",
            key_file.display()
        ))
    })?;
    let sig: Signature = key.sign(payload);
    Ok(base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()))
}

fn public_key(text: &str) -> Result<VerifyingKey, SignError> {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(t)
            .map_err(|_| SignError("not an Ed25519 public key in PEM".into()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|_| SignError("a public key is PEM or base64".into()))?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return VerifyingKey::from_bytes(&raw)
            .map_err(|_| SignError("not an Ed25519 public key".into()));
    }
    VerifyingKey::from_public_key_der(&bytes)
        .map_err(|_| SignError("not an Ed25519 public key".into()))
}

/// Whether `signature` (base64) is `public_key`'s signature of `payload`.
pub fn verify(public_key_text: &str, payload: &[u8], signature: &str) -> Result<bool, SignError> {
    let key = public_key(public_key_text)?;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return Ok(false);
    };
    let Ok(sig) = Signature::from_slice(&bytes) else {
        return Ok(false);
    };
    Ok(key.verify_strict(payload, &sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let pem = key.to_pkcs8_pem(Default::default()).unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, pem.as_bytes()).unwrap();
        let public =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
        let sig = sign(&path, b"hello").unwrap();
        assert!(verify(&public, b"hello", &sig).unwrap());
        assert!(!verify(&public, b"hellO", &sig).unwrap());
        assert!(!verify(&public, b"hello", "AAAA").unwrap());
    }
}
