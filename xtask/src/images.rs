//! `cargo xtask images` — owned by the bottle-docker work.
use anyhow::{Result, bail};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask images` is not built yet")
}
