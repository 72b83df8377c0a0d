//! mebyo-platform (being built).
