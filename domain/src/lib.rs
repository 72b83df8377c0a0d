//! Pure core of mebyo: events, commands and deciders (see ARCHITECTURE.md).
#![forbid(unsafe_code)]

