//! mebyo-operations (being built).
