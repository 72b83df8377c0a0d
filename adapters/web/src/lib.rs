//! mebyo-web (being built).
