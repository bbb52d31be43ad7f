//! SM4-GCM sealing at rest: outputs, logs and released cells are sealed
//! under the platform key with the job id as associated data.

use aes_gcm::aead::{Aead, KeyInit, consts::U12};
use sm4::Sm4;

use crate::{Error, Result, random_bytes};

type Sm4Gcm = aes_gcm::AesGcm<Sm4, U12>;

const NONCE_LEN: usize = 12;

/// A 128-bit SM4-GCM key used to seal results and logs at rest.
#[derive(Clone)]
pub struct SealKey([u8; 16]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; 16];
        random_bytes(&mut k)?;
        Ok(Self(k))
    }

    pub fn from_hex(h: &str) -> Result<Self> {
        let v = hex::decode(h.trim()).map_err(|_| Error::Malformed("SM4 key"))?;
        Ok(Self(v.try_into().map_err(|_| Error::Malformed("SM4 key"))?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Encrypts with a fresh random nonce, binding `aad`; output is `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let ct = self
            .cipher()
            .encrypt(&nonce.into(), aes_gcm::aead::Payload { msg: plaintext, aad })
            .map_err(|_| Error::Malformed("plaintext"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Reverses [`SealKey::seal`]; fails if anything (including `aad`) was altered.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(Error::Malformed("sealed blob"));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        self.cipher().decrypt(&nonce.into(), aes_gcm::aead::Payload { msg: ct, aad }).map_err(|_| Error::Verification)
    }

    fn cipher(&self) -> Sm4Gcm {
        Sm4Gcm::new(&self.0.into())
    }
}

/// GB/T 32907 SM4 block and RFC 8998 A.1 SM4-GCM known answers.
pub(crate) fn known_answer() -> Result<()> {
    use sm4::cipher::BlockCipherEncrypt;
    let key = hex::decode("0123456789abcdeffedcba9876543210").expect("constant");
    let key: [u8; 16] = key.try_into().expect("constant");
    let mut block = key.into();
    Sm4::new(&key.into()).encrypt_block(&mut block);
    if hex::encode(block) != "681edf34d206965e86b3e94f536e4246" {
        return Err(Error::SelfTest("SM4"));
    }
    let k: [u8; 16] = hex::decode("0123456789ABCDEFFEDCBA9876543210").expect("constant").try_into().expect("constant");
    let iv: [u8; 12] = hex::decode("00001234567800000000ABCD").expect("constant").try_into().expect("constant");
    let pt = hex::decode(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
    )
    .expect("constant");
    let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").expect("constant");
    let out = Sm4Gcm::new(&k.into())
        .encrypt(&iv.into(), aes_gcm::aead::Payload { msg: &pt, aad: &aad })
        .map_err(|_| Error::SelfTest("SM4-GCM"))?;
    let expected = "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D83DE3541E4C2B58177E065A9BF7B62EC";
    if !hex::encode(out).eq_ignore_ascii_case(expected) {
        return Err(Error::SelfTest("SM4-GCM"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper() {
        let k = SealKey::generate().unwrap();
        let s = k.seal(b"result table", b"job-1").unwrap();
        assert_eq!(k.open(&s, b"job-1").unwrap(), b"result table");
        assert!(k.open(&s, b"job-2").is_err());
        let mut t = s.clone();
        t[20] ^= 1;
        assert!(k.open(&t, b"job-1").is_err());
        assert!(k.open(&s[..5], b"job-1").is_err());
        let k2 = SealKey::from_hex(&k.to_hex()).unwrap();
        assert_eq!(k2.open(&s, b"job-1").unwrap(), b"result table");
    }
}
