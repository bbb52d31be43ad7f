//! SM2 signatures (GB/T 32918, distinguishing ID `1234567812345678`):
//! release receipts, audit checkpoints and operators' module signatures.

use sm2::dsa::signature::{Signer, Verifier};
use sm2::dsa::{Signature, VerifyingKey};

use crate::{Error, Result, SM2_DIST_ID, random_bytes};

/// An SM2 signing key (the platform's, or an operator's in the CLI).
#[derive(Clone)]
pub struct SigningKey(sm2::dsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_key_hex())
    }
}

impl SigningKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Result<Self> {
        loop {
            let mut d = [0u8; 32];
            random_bytes(&mut d)?;
            // Rejection sampling: retry the (negligibly rare) out-of-range scalars.
            if let Ok(k) = sm2::dsa::SigningKey::from_slice(SM2_DIST_ID, &d) {
                return Ok(Self(k));
            }
        }
    }

    /// Parses the 32-byte secret scalar from hex.
    pub fn from_hex(secret_hex: &str) -> Result<Self> {
        let d = hex::decode(secret_hex.trim()).map_err(|_| Error::Malformed("SM2 secret key"))?;
        sm2::dsa::SigningKey::from_slice(SM2_DIST_ID, &d).map(Self).map_err(|_| Error::Malformed("SM2 secret key"))
    }

    /// The secret scalar as hex. Handle with care.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The uncompressed SEC1 public key (65 bytes, `04 ‖ x ‖ y`) as hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_sec1_bytes())
    }

    /// Signs `msg` (SM3 with the Z value over the pinned ID, per GB/T 32918);
    /// returns the DER signature as hex.
    pub fn sign(&self, msg: &[u8]) -> Result<String> {
        let sig: Signature = self.0.try_sign(msg).map_err(|_| Error::Random)?;
        Ok(hex::encode(sig.to_der().as_bytes()))
    }
}

/// An SEC1 public key (hex) as a PEM SubjectPublicKeyInfo on the SM2 curve
/// (OID 1.2.156.10197.1.301), as OpenSSL and GmSSL read it.
pub fn public_key_pem(public_key_hex: &str) -> Result<String> {
    use base64::Engine as _;
    let point = hex::decode(public_key_hex.trim()).map_err(|_| Error::Malformed("SM2 public key"))?;
    VerifyingKey::from_sec1_bytes(SM2_DIST_ID, &point).map_err(|_| Error::Malformed("SM2 public key"))?;
    if point.len() != 65 {
        return Err(Error::Malformed("SM2 public key"));
    }
    // SEQUENCE { SEQUENCE { id-ecPublicKey, sm2p256v1 }, BIT STRING (0 unused bits) point }
    let mut der = hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d034200").expect("hex");
    der.extend_from_slice(&point);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    Ok(pem)
}

/// Verifies a DER signature (hex) on `msg` against an SEC1 public key (hex).
pub fn verify(public_key_hex: &str, msg: &[u8], signature_hex: &str) -> Result<()> {
    let pk = hex::decode(public_key_hex.trim()).map_err(|_| Error::Malformed("SM2 public key"))?;
    let vk = VerifyingKey::from_sec1_bytes(SM2_DIST_ID, &pk).map_err(|_| Error::Malformed("SM2 public key"))?;
    let sig = hex::decode(signature_hex.trim()).map_err(|_| Error::Malformed("SM2 signature"))?;
    let sig = Signature::from_der(&sig).map_err(|_| Error::Malformed("SM2 signature"))?;
    vk.verify(msg, &sig).map_err(|_| Error::Verification)
}

/// Checks that `public_key_hex` is a valid SM2 public key.
pub fn check_public_key(public_key_hex: &str) -> Result<()> {
    let pk = hex::decode(public_key_hex.trim()).map_err(|_| Error::Malformed("SM2 public key"))?;
    VerifyingKey::from_sec1_bytes(SM2_DIST_ID, &pk).map(|_| ()).map_err(|_| Error::Malformed("SM2 public key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_and_tamper() {
        let k = SigningKey::generate().unwrap();
        let sig = k.sign(b"hello").unwrap();
        verify(&k.public_key_hex(), b"hello", &sig).unwrap();
        assert!(matches!(verify(&k.public_key_hex(), b"hellO", &sig), Err(Error::Verification)));
        let other = SigningKey::generate().unwrap();
        assert!(verify(&other.public_key_hex(), b"hello", &sig).is_err());
        assert!(matches!(verify("zz", b"hello", &sig), Err(Error::Malformed(_))));
        assert!(matches!(verify(&k.public_key_hex(), b"hello", "3002"), Err(Error::Malformed(_))));
        check_public_key(&k.public_key_hex()).unwrap();
    }

    #[test]
    fn secret_round_trips() {
        let k = SigningKey::generate().unwrap();
        let k2 = SigningKey::from_hex(&k.secret_hex()).unwrap();
        assert_eq!(k.public_key_hex(), k2.public_key_hex());
        assert!(SigningKey::from_hex("00").is_err());
    }
}
