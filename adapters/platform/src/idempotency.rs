//! Idempotency keys (issue 19 §5): a client that got no answer, or a 500 for a
//! write that was in fact durable, retries with the same key and gets the first
//! outcome instead of a second record. One home for the key's syntax (the bus's
//! `Mebyo-Idempotency-Key` and the JSON API's `Idempotency-Key` share it) and for
//! the ids derived from keys.
//!
//! The id of what a keyed request creates is derived from who asks and the key,
//! not drawn: the ledger itself then remembers the key (the created stream entry
//! *is* the record of it), across restarts and on every node, with no index
//! beside it to lose or roll back.

/// Longest key accepted, in bytes (the IETF draft sets none; 128 holds a UUID
/// with a prefix and keeps keys out of the way of real data).
pub const KEY_MAX_BYTES: usize = 128;

/// 1 to [`KEY_MAX_BYTES`] characters of `[A-Za-z0-9._:-]`: enough for UUIDs and
/// ULIDs, and nothing that could carry text a person typed.
pub fn valid_key(k: &str) -> bool {
    (1..=KEY_MAX_BYTES).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The id (`{prefix}-` and 16 hex digits, as drawn ids are) of what the request
/// with `key` from `scope` (the person or actor it belongs to) creates. Keys are
/// scoped: two people's equal keys name two things. 64 bits: a collision within
/// one scope needs ~2^32 keyed writes.
pub fn derived_id(prefix: &str, scope: &str, key: &str) -> String {
    debug_assert!(valid_key(key), "derive ids from checked keys only");
    let mut h = blake3::Hasher::new();
    h.update(b"mebyo idempotent id\n");
    h.update(prefix.as_bytes());
    h.update(b"\n");
    h.update(scope.as_bytes());
    h.update(b"\n");
    h.update(key.as_bytes());
    format!("{prefix}-{}", &h.finalize().to_hex()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2_1_keys_have_a_narrow_syntax() {
        assert!(valid_key("order-1:2"));
        assert!(valid_key("0f8c2e9a-6f0b-4a7e-9d52-2f1b3c4d5e6f"));
        assert!(!valid_key(""));
        assert!(!valid_key("a b"));
        assert!(!valid_key("山田"));
        assert!(!valid_key(&"k".repeat(KEY_MAX_BYTES + 1)));
        assert!(valid_key(&"k".repeat(KEY_MAX_BYTES)));
    }

    #[test]
    fn p2_1_derived_ids_are_stable_and_scoped() {
        let a = derived_id("rec", "p-1", "k1");
        assert_eq!(a, derived_id("rec", "p-1", "k1"));
        assert_ne!(a, derived_id("rec", "p-2", "k1"));
        assert_ne!(a, derived_id("rec", "p-1", "k2"));
        assert_ne!(
            a,
            derived_id("con", "p-1", "k1")[..].replacen("con", "rec", 1)
        );
        assert!(a.starts_with("rec-") && a.len() == 20);
    }
}
