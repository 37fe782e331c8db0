//! Tidy checks over the sources of the crates whose text reaches the terminal: every path and
//! name is shown through `bottle_manifest::escape`/`escape_path`, the one place that decides how
//! control characters look. A raw `Path::display` (or a second escaper) would let a repository's
//! file names carry terminal escapes into a message again.

use std::path::{Path, PathBuf};

/// The sources searched, relative to the workspace root.
const CRATES: &[&str] = &[
    "crates/bottle-cli/src",
    "crates/bottle-core/src",
    "crates/bottle-manifest/src",
];

/// The escaper itself.
const ESCAPER: &str = "crates/bottle-manifest/src/escape.rs";

/// Files that may still call `escape_debug`, with why. Their messages are shown only through
/// `Diagnostic`, whose `Display` escapes again, so the terminal is safe either way.
const ESCAPE_DEBUG_ALLOWED: &[(&str, &str)] = &[];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file, line number, line)` for every line holding `needle` outside comments.
fn lines_with(needle: &str) -> Vec<(String, usize, String)> {
    let root = workspace();
    let mut files = Vec::new();
    for krate in CRATES {
        sources(&root.join(krate), &mut files);
    }
    assert!(files.len() > 20, "the sources were found: {files:?}");
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&root)
            .expect("under the root")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).expect("read a source");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains(needle) {
                found.push((relative.clone(), i + 1, line.trim().to_owned()));
            }
        }
    }
    found
}

#[test]
fn paths_are_shown_through_escape_path() {
    let raw: Vec<_> = lines_with(".display()")
        .into_iter()
        .filter(|(file, ..)| file != ESCAPER)
        .collect();
    assert!(
        raw.is_empty(),
        "show paths with bottle_manifest::escape_path, not Path::display: {raw:#?}"
    );
}

#[test]
fn there_is_one_escaper() {
    let other: Vec<_> = lines_with("escape_debug")
        .into_iter()
        .filter(|(file, ..)| {
            file != ESCAPER && !ESCAPE_DEBUG_ALLOWED.iter().any(|(f, _)| f == file)
        })
        .collect();
    assert!(
        other.is_empty(),
        "escape shown text with bottle_manifest::escape, not escape_debug: {other:#?}"
    );
}
