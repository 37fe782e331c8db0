//! Integration tests: the egress on loopback, driven by real clients (curl, Python, Node,
//! git, hyper) against local TLS origins signed by a test CA the egress trusts.

mod admission;
mod cli;
mod clients;
mod dlp;
mod lifecycle;
mod policy;
mod red_team;
mod streaming;
mod support;
mod upstream;
mod vocabulary;
