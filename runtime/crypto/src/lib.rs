//! 商用密码 (commercial cryptography) for keyong, on the RustCrypto SM crates:
//! SM2 signatures (distinguishing ID pinned to `1234567812345678`), SM3
//! hashing and HMAC-SM3 pseudonyms, SM4-GCM sealing at rest, a known-answer
//! self-test run at start-up, and the SM3 hash chain of the audit log.
//!
//! Architecture invariant: no I/O besides the OS random source. Everything
//! else in keyong reaches cryptography only through this crate, so a
//! certified hardware module can replace it behind the same functions.

pub mod audit;
mod seal;
mod sign;

pub use seal::SealKey;
pub use sign::{SigningKey, check_public_key, public_key_pem, verify};

use hmac::{KeyInit, Mac};
use sm3::{Digest, Sm3};

/// The SM2 distinguishing identifier used for every signature (GB/T 35276 default).
pub const SM2_DIST_ID: &str = "1234567812345678";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Caller-supplied key, signature or ciphertext is malformed.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A signature or authentication tag did not verify.
    #[error("verification failed")]
    Verification,
    /// The OS random source failed; nothing was produced.
    #[error("the operating system random source failed")]
    Random,
    /// A known-answer test failed: the implementation must not be used.
    #[error("cryptographic self-test failed: {0}")]
    SelfTest(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SM3 digest.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// SM3 digest as lowercase hex.
pub fn sm3_hex(data: &[u8]) -> String {
    hex::encode(sm3(data))
}

/// An SM3 digest computed over data written to it piece by piece; as a
/// `Write` it hashes everything written through it into `inner`.
pub struct Sm3Writer<W> {
    inner: W,
    hasher: Sm3,
}

impl<W> Sm3Writer<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sm3::new() }
    }

    /// The inner writer and the SM3 (hex) of everything written.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex::encode(self.hasher.finalize()))
    }
}

impl<W: std::io::Write> std::io::Write for Sm3Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// HMAC-SM3 of `data` under `key`.
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <hmac::Hmac<Sm3> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Fills `buf` from the OS random source.
// The one place keyong draws from the operating system's CSPRNG.
#[allow(clippy::disallowed_methods)]
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// A fresh random 32-byte secret, hex-encoded (tokens, keys).
pub fn random_hex32() -> Result<String> {
    let mut b = [0u8; 32];
    random_bytes(&mut b)?;
    Ok(hex::encode(b))
}

/// Known-answer tests for SM3 (GB/T 32905), SM4 (GB/T 32907) and SM4-GCM
/// (RFC 8998 A.1), plus an SM2 sign/verify round trip. Run at start-up.
pub fn self_test() -> Result<()> {
    if sm3_hex(b"abc") != "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0" {
        return Err(Error::SelfTest("SM3"));
    }
    seal::known_answer()?;
    let key = SigningKey::from_hex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")?;
    let sig = key.sign(b"message digest")?;
    verify(&key.public_key_hex(), b"message digest", &sig).map_err(|_| Error::SelfTest("SM2"))?;
    if verify(&key.public_key_hex(), b"message digesT", &sig).is_ok() {
        return Err(Error::SelfTest("SM2 accepts a wrong message"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_test_passes() {
        self_test().unwrap();
    }

    #[test]
    fn sm3_long_vector() {
        // GB/T 32905 example 2: "abcd" × 16.
        assert_eq!(sm3_hex(&b"abcd".repeat(16)), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
    }

    #[test]
    fn streaming_hash_matches_one_shot() {
        use std::io::Write;
        let mut w = Sm3Writer::new(Vec::new());
        w.write_all(b"abcd").unwrap();
        w.write_all(&b"abcd".repeat(15)).unwrap();
        let (inner, h) = w.finish();
        assert_eq!(inner, b"abcd".repeat(16));
        assert_eq!(h, sm3_hex(&b"abcd".repeat(16)));
    }

    #[test]
    fn hmac_depends_on_key() {
        assert_ne!(hmac_sm3(b"k1", b"x"), hmac_sm3(b"k2", b"x"));
        assert_eq!(hmac_sm3(b"k1", b"x"), hmac_sm3(b"k1", b"x"));
    }
}
