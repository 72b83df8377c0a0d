//! Every end-to-end test of the workspace in one test binary. Each file here was
//! its own binary, and each linked the whole platform (web, bus, store, crypto):
//! 42 links of some 50 MB each were the larger part of a cold suite's build and
//! of its disk. As modules of one crate they link once, and the support modules
//! (`web_common`, `bus_support`, `browser_support`) compile once. nextest still
//! runs every test in a process of its own, so no test shares state with another.
//! Filter one file's tests with `cargo nextest run -E 'test(/^web_api::/)'`.

mod browser_support;
mod bus_support;
mod web_common;

mod architecture;
mod audit_forged_grant;
mod audit_proofs;
mod audit_replay;
mod audit_tamper;
mod backup_cli;
mod bus_edges;
mod bus_feed;
mod bus_guide;
mod bus_ingest;
mod bus_one_commit;
mod bus_provider_cli;
mod bus_services;
mod bus_transport;
mod cli_server;
mod crash;
mod demo_cli;
mod first_start;
mod keys_cli;
mod ops_cli;
mod ops_platform;
mod ops_probe_target;
mod ops_retention;
mod plaintext_scan;
mod revocation_at_once;
mod serve_checkpoints;
mod serve_crash;
mod serve_operations;
mod settings_check;
mod tamper;
mod truncation;
mod web_api;
mod web_browser;
mod web_browser_operate;
mod web_dashboard_actions;
mod web_edges;
mod web_every_role;
mod web_ops;
mod web_schemathesis;
mod web_serve;
mod web_server_edges;
mod web_staff_commands;
mod web_staff_signin;
mod web_writes;
