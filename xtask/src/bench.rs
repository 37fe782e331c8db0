//! `cargo xtask bench` — owned by the bottle-egress work.
use anyhow::{Result, bail};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask bench` is not built yet")
}
