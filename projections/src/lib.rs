//! Pure folds from events to read models (see ARCHITECTURE.md).
#![forbid(unsafe_code)]

