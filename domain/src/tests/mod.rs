//! Scenario tests, one file per decider, the authorization matrix and properties.

mod access;
mod credential;
mod matrix;
mod person;
mod policy;
mod props;
mod provider;
mod records;
mod staff;
