//! mebyo-audit (being built).
