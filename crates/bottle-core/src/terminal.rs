//! The host terminal, as far as an attached session needs it: raw mode and the window size.
//!
//! A trait, not a terminal library: the embedder implements it at its edge (the CLI with
//! `rustix`, a GUI with its own widget) and hands it to the backend, so no terminal crate
//! enters bottle-core or a backend. Every backend that attaches a session with a terminal
//! (Docker's exec, a Kubernetes attach) takes the same one.

/// The host terminal of an attached session.
pub trait TerminalHost: Send + Sync + 'static {
    /// Puts the terminal in raw mode; the returned guard restores it when dropped.
    fn enter_raw(&self) -> std::io::Result<Box<dyn Send>>;
    /// The terminal's size, `(rows, cols)`.
    fn size(&self) -> Option<(u16, u16)>;
}

/// No terminal control: sessions still attach, but the caller's terminal stays as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTerminal;

impl TerminalHost for NoTerminal {
    fn enter_raw(&self) -> std::io::Result<Box<dyn Send>> {
        Ok(Box::new(()))
    }
    fn size(&self) -> Option<(u16, u16)> {
        None
    }
}
