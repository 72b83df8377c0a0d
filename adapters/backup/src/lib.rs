//! mebyo-backup (being built).
