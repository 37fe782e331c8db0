//! The host terminal for an attached session: raw mode while Claude Code (or `--exec`) owns
//! it, and its size. The Docker backend forwards later size changes itself.

use std::io;

use rustix::termios::{self, OptionalActions, Termios};

/// The terminal on our stdin/stdout.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HostTerminal;

/// Restores the terminal's modes when dropped: after the session, on an error, on a signal
/// that ends the session.
struct RawMode {
    saved: Termios,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}

impl bottle_core::TerminalHost for HostTerminal {
    fn enter_raw(&self) -> io::Result<Box<dyn Send>> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Box::new(RawMode { saved }))
    }

    fn size(&self) -> Option<(u16, u16)> {
        let size = termios::tcgetwinsize(io::stdout()).ok()?;
        (size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
    }
}
