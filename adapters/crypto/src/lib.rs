//! mebyo-crypto (being built).
