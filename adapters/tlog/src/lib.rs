//! mebyo-tlog (being built).
