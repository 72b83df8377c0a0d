//! Provider signing keys (P4.12(1)) as the bus uses them: the rule is the domain's
//! (`mebyo_domain::signing_key`), registering and reading a key the platform's
//! (`mebyo_platform::signing_keys`); the bus checks every request against them.

pub use mebyo_domain::signing_key::{KeyCommand, KeyEvent, KeyState, ProviderKey, stream};
pub use mebyo_platform::signing_keys::{load_key, parse_key, parse_public_key_hex, register};
