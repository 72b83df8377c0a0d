//! mebyo-bus (being built).
