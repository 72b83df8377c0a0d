//! Provider signing keys on the platform (P4.12(1)): registering one (the rule is
//! `mebyo_domain::signing_key`), reading the registered one, and reading a key as
//! a provider hands it over. One home for the CLI, the server's endpoint and the
//! bus, which checks every request's signature against it.

use ed25519_dalek::VerifyingKey;
use mebyo_domain::signing_key::{KeyCommand, KeyEvent, KeyState, ProviderKey, stream};
use mebyo_domain::{Actor, CredentialId, Decider, ProviderId};
use mebyo_store::EventStore;

use crate::{Outcome, Platform, PlatformError};

/// Most events one key stream is read for: a key is registered a handful of
/// times in a credential's life; the cap is a guard, not a page size.
const KEY_STREAM_EVENTS_MAX: usize = 1024;

/// Registers (or replaces) the signing key of a provider credential. `actor` must
/// be prefecture or office staff with current training (the decider says).
pub async fn register(
    platform: &Platform,
    actor: &Actor,
    credential: &CredentialId,
    key: &VerifyingKey,
) -> Outcome<Vec<KeyEvent>> {
    let mut facts = platform.facts_for(actor).await?;
    facts.credential = Some(platform.credential_state(credential).await?);
    let cmd = KeyCommand::Register {
        credential: credential.clone(),
        public_key: hex::encode(key.as_bytes()),
    };
    platform
        .execute_uncached::<ProviderKey>(&stream(credential), actor, &cmd, &facts)
        .await
}

/// Reads an ed25519 public key as a provider hands it over (64 hex digits,
/// surrounding whitespace allowed). The error says what is wrong, citing the
/// clause under which keys are registered (P4.12(1)); it never echoes the input.
pub fn parse_public_key_hex(text: &str) -> Result<VerifyingKey, String> {
    let t = text.trim();
    let bytes: [u8; 32] = hex::decode(t)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            format!(
                "P4.12(1): an ed25519 public key is 64 hex digits (32 bytes); got {} characters",
                t.chars().count()
            )
        })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "P4.12(1): those 32 bytes are not an ed25519 public key".to_string())
}

/// The registered key of a credential, read from its stream now.
pub async fn load_key(
    platform: &Platform,
    credential: &CredentialId,
) -> Result<Option<(ProviderId, VerifyingKey)>, PlatformError> {
    let events = platform
        .store()
        .read_stream(&stream(credential), 0, KEY_STREAM_EVENTS_MAX)
        .await?;
    let mut state = KeyState::default();
    for env in &events {
        if let crate::codec::Decoded::Event(e) =
            crate::codec::decode::<KeyEvent>(env, platform.keys())?
        {
            state = ProviderKey::evolve(state, &e);
        }
    }
    Ok(parse_key(&state))
}

/// The key a folded key stream holds, if it is a valid ed25519 point.
pub fn parse_key(state: &KeyState) -> Option<(ProviderId, VerifyingKey)> {
    let bytes: [u8; 32] = hex::decode(state.public_key.as_ref()?)
        .ok()?
        .try_into()
        .ok()?;
    Some((
        state.provider.clone()?,
        VerifyingKey::from_bytes(&bytes).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p4_12_1_public_keys_are_read_as_64_hex_digits() {
        let k = parse_public_key_hex(
            "  ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c\n",
        )
        .unwrap();
        assert_eq!(k.as_bytes()[0], 0xea);
        for bad in ["", "ea4a", &"zz".repeat(32), &"ab".repeat(33)] {
            let e = parse_public_key_hex(bad).unwrap_err();
            assert!(e.starts_with("P4.12(1)"), "{e}");
        }
    }
}
