//! The SM3 hash chain behind the audit log (全程可记录).
//!
//! Entry `n` stores `hash_n = SM3(hash_{n-1} ‖ fields of n)`, each field
//! length-prefixed so no two different entries share an encoding. Altering,
//! removing or reordering any stored entry breaks every later hash.

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
}

/// Verifies entries given in ascending `seq` order, starting at the genesis.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Verification {
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (expected_seq, e) in (1..).zip(entries) {
        let recomputed = entry_hash(&e.prev_hash, e.seq, &e.at, &e.actor, &e.action, &e.subject, &e.detail);
        if e.seq != expected_seq || e.prev_hash != prev || e.hash != recomputed {
            return Verification { entries: n, head: prev, first_bad_seq: Some(e.seq) };
        }
        prev = e.hash.clone();
        n += 1;
    }
    Verification { entries: n, head: prev, first_bad_seq: None }
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
}
