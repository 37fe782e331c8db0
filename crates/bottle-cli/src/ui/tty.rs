//! Questions asked on the controlling terminal (`/dev/tty`), never on stdin/stdout: a launch
//! must be confirmed by the person at the keyboard even when stdin is a pipe, and an answer
//! can never come from a script's input by accident. No controlling terminal means no question
//! can be asked, and the caller refuses (or needs `--yes`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};

use bottle_core::SecretString;
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex};

/// The controlling terminal, open for reading and writing.
#[derive(Debug)]
pub(crate) struct Tty {
    file: File,
}

/// Why a question got no answer.
#[derive(Debug)]
pub(crate) enum TtyError {
    /// Ctrl-C or Ctrl-D at the prompt.
    Cancelled,
    /// Reading or writing the terminal failed.
    Io(io::Error),
}

impl From<io::Error> for TtyError {
    fn from(err: io::Error) -> Self {
        TtyError::Io(err)
    }
}

impl From<rustix::io::Errno> for TtyError {
    fn from(errno: rustix::io::Errno) -> Self {
        TtyError::Io(errno.into())
    }
}

impl std::fmt::Display for TtyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TtyError::Cancelled => f.write_str("cancelled at the terminal"),
            TtyError::Io(err) => write!(f, "could not use the terminal: {err}"),
        }
    }
}

impl std::error::Error for TtyError {}

impl Tty {
    /// The controlling terminal, or `None` when the process has none (CI, cron, `setsid`).
    pub(crate) fn open() -> Option<Tty> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        termios::isatty(&file).then_some(Tty { file })
    }

    fn write(&mut self, text: &str) -> io::Result<()> {
        self.file.write_all(text.as_bytes())?;
        self.file.flush()
    }

    /// One line, without its end. End of input counts as an empty answer.
    fn read_line(&mut self) -> io::Result<String> {
        // A fresh reader per question: nothing typed ahead is kept between questions.
        let mut line = String::new();
        BufReader::new(&mut self.file).read_line(&mut line)?;
        Ok(line.trim().to_owned())
    }

    /// Asks `question [y/N] `; only `y` or `yes` (any case) is a yes.
    pub(crate) fn confirm(&mut self, question: &str) -> Result<bool, TtyError> {
        self.write(&format!("{question} [y/N] "))?;
        let answer = self.read_line()?;
        Ok(matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes"))
    }

    /// A numbered menu: the answer is a number or a name. `None` for an empty answer.
    pub(crate) fn pick(
        &mut self,
        title: &str,
        items: &[String],
    ) -> Result<Option<usize>, TtyError> {
        let mut menu = format!("{title}\n");
        for (i, item) in items.iter().enumerate() {
            menu.push_str(&format!("  {:>2}) {item}\n", i + 1));
        }
        self.write(&menu)?;
        loop {
            self.write(&format!(
                "pick 1-{} or a name (empty to cancel): ",
                items.len()
            ))?;
            let answer = self.read_line()?;
            if answer.is_empty() {
                return Ok(None);
            }
            if let Some(i) = answer
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=items.len()).contains(n))
            {
                return Ok(Some(i - 1));
            }
            if let Some(i) = items.iter().position(|item| *item == answer) {
                return Ok(Some(i));
            }
            self.write(&format!("`{answer}` is not in the list\n"))?;
        }
    }

    /// Reads a secret without echo. The terminal is put in non-canonical mode with echo and
    /// signals off, so that Ctrl-C comes back as a byte we handle: the terminal's modes are
    /// always restored, even when the user gives up (a signal would kill us with echo off).
    pub(crate) fn read_secret(&mut self, prompt: &str) -> Result<SecretString, TtyError> {
        // Quiet first, prompt second: whatever is typed once the prompt shows is never echoed.
        let saved = termios::tcgetattr(&self.file)?;
        let mut quiet = saved.clone();
        quiet
            .local_modes
            .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
        quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
        quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
        termios::tcsetattr(&self.file, OptionalActions::Flush, &quiet)?;
        let restore = Restore {
            file: &self.file,
            saved,
        };
        (&self.file).write_all(prompt.as_bytes())?;
        (&self.file).flush()?;
        let result = read_hidden_line(&mut &self.file);
        drop(restore);
        self.write("\n")?;
        let bytes = result?;
        String::from_utf8(bytes)
            .map(SecretString::new)
            .map_err(|_| TtyError::Io(io::Error::other("the value is not valid UTF-8")))
    }
}

/// Puts the terminal's saved modes back when dropped.
struct Restore<'a> {
    file: &'a File,
    saved: termios::Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.file, OptionalActions::Now, &self.saved);
    }
}

/// A line typed with echo off: Enter ends it, Backspace and Ctrl-U edit it, Ctrl-C (or Ctrl-D
/// on an empty line) cancels.
fn read_hidden_line(input: &mut impl Read) -> Result<Vec<u8>, TtyError> {
    let mut line: Vec<u8> = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 {
            return if line.is_empty() {
                Err(TtyError::Cancelled)
            } else {
                Ok(line)
            };
        }
        match byte[0] {
            b'\r' | b'\n' => return Ok(line),
            0x03 => return Err(TtyError::Cancelled),
            0x04 if line.is_empty() => return Err(TtyError::Cancelled),
            0x7f | 0x08 => {
                // Remove one whole UTF-8 character: continuation bytes, then its first byte.
                while line.last().is_some_and(|b| b & 0xC0 == 0x80) {
                    line.pop();
                }
                line.pop();
            }
            0x15 => line.clear(),
            b if b < 0x20 => {}
            b => line.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(input: &[u8]) -> Result<Vec<u8>, TtyError> {
        read_hidden_line(&mut &input[..])
    }

    #[test]
    fn enter_ends_the_line_and_backspace_edits_it() {
        assert_eq!(typed(b"secreX\x7ft\r").unwrap(), b"secret");
        assert_eq!(typed("pä\x7fa\n".as_bytes()).unwrap(), b"pa");
        assert_eq!(typed(b"wrong\x15right\r").unwrap(), b"right");
        assert_eq!(typed(b"a\x1bb\r").unwrap(), b"ab");
    }

    #[test]
    fn ctrl_c_and_ctrl_d_cancel() {
        assert!(matches!(typed(b"abc\x03"), Err(TtyError::Cancelled)));
        assert!(matches!(typed(b"\x04"), Err(TtyError::Cancelled)));
        assert!(matches!(typed(b""), Err(TtyError::Cancelled)));
    }
}
