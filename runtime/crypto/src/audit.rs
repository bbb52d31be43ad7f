//! The SM3 hash chain behind the audit log (全程可记录).
//!
//! Entry `n` stores `hash_n = SM3(hash_{n-1} ‖ fields of n)`, each field
//! length-prefixed so no two different entries share an encoding. Altering,
//! removing or reordering any stored entry breaks every later hash.
//!
//! A chain alone cannot tell that its last entries were deleted, nor that
//! an entry was removed and every later hash recomputed. So the platform
//! key signs [`Checkpoint`]s — (entries, head hash) — at every filing and
//! periodically; [`verify_checkpoints`] holds a chain to all of them: fewer
//! entries than one covers is a truncation, another hash at its position a
//! rewrite, a filing without its checkpoint a deletion.

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// JSON text with the details of the action (never row-level data).
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry with the given fields after `prev_hash`.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut buf = Vec::with_capacity(256);
    for field in [
        prev_hash.as_bytes(),
        &seq.to_be_bytes(),
        at.as_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        subject.as_bytes(),
        detail.as_bytes(),
    ] {
        buf.extend_from_slice(&(field.len() as u64).to_be_bytes());
        buf.extend_from_slice(field);
    }
    crate::sm3_hex(&buf)
}

/// Outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    pub head: String,
    /// The first entry whose link or hash is wrong, if any.
    pub first_bad_seq: Option<i64>,
    /// The last entry a valid signed checkpoint covers (0 when none does).
    pub vouched: u64,
}

/// A signed statement that the chain had `entries` entries ending in `head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub entries: u64,
    pub head: String,
    pub at: String,
    /// SM2 signature (DER, hex) of [`checkpoint_message`] by the platform key.
    pub signature_hex: String,
}

/// The bytes a stored checkpoint's signature covers. Only the store signs
/// these, inside the transaction that appends the entry.
pub fn checkpoint_message(entries: u64, head_hash: &str) -> Vec<u8> {
    format!("keyong-audit-checkpoint-v1\n{entries}\n{head_hash}").into_bytes()
}

/// The bytes of an attestation: what the verify endpoint signs over the
/// chain it found. Its own tag, so an attestation — which signs whatever the
/// database holds — can never pass for a checkpoint.
pub fn attestation_message(entries: u64, head_hash: &str) -> Vec<u8> {
    format!("keyong-audit-attestation-v1\n{entries}\n{head_hash}").into_bytes()
}

impl Checkpoint {
    /// Signs (entries, head) with the platform key.
    pub fn sign(key: &crate::SigningKey, entries: u64, head: &str, at: &str) -> crate::Result<Self> {
        let signature_hex = key.sign(&checkpoint_message(entries, head))?;
        Ok(Self { entries, head: head.to_string(), at: at.to_string(), signature_hex })
    }
}

/// Verifies `entries` (ascending `seq`) as a chain and against every
/// checkpoint, whose signatures must verify under `public_key_hex`: a
/// checkpoint with a bad signature, one covering more entries than there
/// are (truncation), or one whose head differs from the entry at its
/// position (re-chaining) makes the chain bad from that entry. Every
/// `filing.*` entry must have a checkpoint at its own position, so deleting
/// checkpoints shows too. `vouched` is the last entry a valid checkpoint covers.
pub fn verify_checkpoints(entries: &[Entry], checkpoints: &[Checkpoint], public_key_hex: &str) -> Verification {
    let mut v = verify(entries);
    let mut bad = v.first_bad_seq;
    let mut mark = |seq: i64| bad = Some(bad.map_or(seq, |b| b.min(seq)));
    for cp in checkpoints {
        let signed = crate::verify(public_key_hex, &checkpoint_message(cp.entries, &cp.head), &cp.signature_hex);
        if signed.is_err() || cp.entries == 0 {
            // A checkpoint the platform did not sign vouches for nothing.
            mark(1);
        } else if v.entries < cp.entries {
            mark(v.first_bad_seq.unwrap_or(v.entries as i64 + 1));
        } else if entries[cp.entries as usize - 1].hash != cp.head {
            mark(cp.entries as i64);
        } else {
            v.vouched = v.vouched.max(cp.entries);
        }
    }
    let at: std::collections::HashSet<u64> = checkpoints.iter().map(|c| c.entries).collect();
    for e in entries.iter().take(v.entries as usize) {
        if e.action.starts_with("filing.") && !at.contains(&(e.seq as u64)) {
            mark(e.seq);
        }
    }
    v.first_bad_seq = bad;
    v
}

/// Verifies entries given in ascending `seq` order, starting at the genesis.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Verification {
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (expected_seq, e) in (1..).zip(entries) {
        let recomputed = entry_hash(&e.prev_hash, e.seq, &e.at, &e.actor, &e.action, &e.subject, &e.detail);
        if e.seq != expected_seq || e.prev_hash != prev || e.hash != recomputed {
            return Verification { entries: n, head: prev, first_bad_seq: Some(e.seq), vouched: 0 };
        }
        prev = e.hash.clone();
        n += 1;
    }
    Verification { entries: n, head: prev, first_bad_seq: None, vouched: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let at = format!("2026-01-01T00:00:{seq:02}Z");
                let hash = entry_hash(&prev, seq, &at, "u1", "act", "s", "{}");
                let e = Entry {
                    seq,
                    at,
                    actor: "u1".into(),
                    action: "act".into(),
                    subject: "s".into(),
                    detail: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let v = verify(&c);
        assert_eq!(v.first_bad_seq, None);
        assert_eq!(v.entries, 5);
        assert_eq!(v.head, c[4].hash);
    }

    #[test]
    fn any_alteration_is_caught() {
        let c = chain(5);
        for i in 0..5 {
            for field in 0..4 {
                let mut t = c.clone();
                match field {
                    0 => t[i].detail.push(' '),
                    1 => t[i].actor = "u2".into(),
                    2 => t[i].at.push('x'),
                    _ => t[i].seq += 10,
                }
                assert_eq!(verify(&t).first_bad_seq, Some(t[i].seq), "entry {i} field {field}");
            }
        }
        let mut removed = c.clone();
        removed.remove(2);
        assert_eq!(verify(&removed).first_bad_seq, Some(4));
    }

    /// Re-links entries after `from` so the chain verifies on its own again.
    fn rechain(c: &mut [Entry]) {
        let mut prev = GENESIS.to_string();
        for (seq, e) in (1..).zip(c.iter_mut()) {
            e.seq = seq;
            e.prev_hash = prev.clone();
            e.hash = entry_hash(&prev, seq, &e.at, &e.actor, &e.action, &e.subject, &e.detail);
            prev = e.hash.clone();
        }
    }

    #[test]
    fn checkpoints_catch_truncation_rewrites_and_deletions() {
        let key = crate::SigningKey::generate().unwrap();
        let public = key.public_key_hex();
        let mut c = chain(6);
        c[3].action = "filing.x".into();
        rechain(&mut c);
        let cp = vec![Checkpoint::sign(&key, 4, &c[3].hash, "t").unwrap()];
        let v = verify_checkpoints(&c, &cp, &public);
        assert_eq!((v.first_bad_seq, v.vouched), (None, 4));
        // The last entries deleted: the chain alone still verifies.
        let truncated = &c[..3];
        assert_eq!(verify(truncated).first_bad_seq, None);
        assert_eq!(verify_checkpoints(truncated, &cp, &public).first_bad_seq, Some(4));
        // Entries after the last checkpoint may still be cut: why checkpoints are frequent.
        assert_eq!(verify_checkpoints(&c[..4], &cp, &public).first_bad_seq, None);
        // One entry removed and the rest re-chained.
        let mut rewritten = c.clone();
        rewritten.remove(1);
        rechain(&mut rewritten);
        assert_eq!(verify(&rewritten).first_bad_seq, None);
        assert_eq!(verify_checkpoints(&rewritten, &cp, &public).first_bad_seq, Some(3));
        // The checkpoint deleted too: the filing has none.
        assert_eq!(verify_checkpoints(&rewritten, &[], &public).first_bad_seq, Some(3));
        assert_eq!(verify_checkpoints(&c, &[], &public).first_bad_seq, Some(4));
        // A checkpoint not signed by the platform key vouches for nothing, and
        // neither does an attestation's signature over the same numbers.
        let other = crate::SigningKey::generate().unwrap();
        let forged = vec![Checkpoint::sign(&other, 4, &c[3].hash, "t").unwrap()];
        assert_eq!(verify_checkpoints(&c, &forged, &public).first_bad_seq, Some(1));
        let attested = key.sign(&attestation_message(4, &c[3].hash)).unwrap();
        let replayed = vec![Checkpoint { signature_hex: attested, ..cp[0].clone() }];
        assert_eq!(verify_checkpoints(&c, &replayed, &public).first_bad_seq, Some(1));
    }
}
