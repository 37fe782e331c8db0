//! Integration tests: the real `bottle-git-gate` binary between a real git client (isolated
//! HOME and config, proxies pointing nowhere) and a real OpenSSH upstream on loopback.

mod agent;
mod cli;
mod fetch;
mod hostkey;
mod image;
mod key;
mod push;
mod refs;
mod support;
