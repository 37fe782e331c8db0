//! `cargo xtask ci` and `cargo xtask package`.
use anyhow::{Result, bail};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask ci` is not built yet")
}

pub(crate) fn package(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask package` is not built yet")
}
