//! Strings that come from a user's files (column names, labels, folder names, paths) as
//! they may be shown: with every character that could drive a terminal escaped, and cut
//! to a readable length.
//!
//! A file handed to someone can hold `ESC [ 2 J` in a column name, a bell, a carriage
//! return that overwrites the line, or U+202E (right-to-left override) that reverses what
//! follows. Whatever prints such a string (the command line, a report shown on a
//! terminal) passes it through [`terminal_safe`] first.

use std::borrow::Cow;

/// Characters that are not controls but change how the text around them is shown:
/// bidirectional embeddings, overrides and isolates, zero-width characters, the byte
/// order mark.
fn is_format_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Whether `c` must be escaped before a terminal sees it (line breaks and tabs only where
/// `keep_lines`).
fn must_escape(c: char, keep_lines: bool) -> bool {
    if keep_lines && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control() || is_format_control(c)
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| must_escape(c, keep_lines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if must_escape(c, keep_lines) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One field (a label, a column name, a path) as it may be printed: every control and
/// bidirectional-format character, line breaks included, written as its Rust escape
/// (`\u{1b}`, `\n`, `\u{202e}`). Plain text comes back borrowed.
///
/// ```
/// use l2m_data::text::terminal_safe;
/// assert_eq!(terminal_safe("cat"), "cat");
/// assert_eq!(terminal_safe("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
/// assert_eq!(terminal_safe("x\u{202e}y"), "x\\u{202e}y");
/// ```
pub fn terminal_safe(field: &str) -> Cow<'_, str> {
    escape(field, false)
}

/// A message of several lines as it may be printed: like [`terminal_safe`], but line
/// breaks and tabs stay.
pub fn terminal_safe_text(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// [`terminal_safe`], cut to at most `max` characters (counted before escaping) with an
/// ellipsis and the full length when it was longer: a label of megabytes prints as one
/// short cell.
///
/// ```
/// use l2m_data::text::shorten;
/// assert_eq!(shorten("abc", 10), "abc");
/// assert_eq!(shorten(&"x".repeat(50), 5), "xxxxx... (50 characters)");
/// ```
pub fn shorten(field: &str, max: usize) -> String {
    let n = field.chars().count();
    if n <= max {
        terminal_safe(field).into_owned()
    } else {
        let head: String = field.chars().take(max).collect();
        format!("{}... ({n} characters)", terminal_safe(&head))
    }
}

/// The longest label, group or column name a table may hold, in bytes: longer ones are an
/// error naming their row or column (a name of megabytes is a broken file, not a class).
pub const MAX_NAME_BYTES: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        let evil = "a\u{1b}[2J\u{1b}[31mEVIL\u{07}\r\n\u{202e}txt.exe\u{9b}";
        let safe = terminal_safe(evil);
        assert!(
            !safe.chars().any(|c| c.is_control() || is_format_control(c)),
            "{safe}"
        );
        assert_eq!(
            safe,
            "a\\u{1b}[2J\\u{1b}[31mEVIL\\u{7}\\r\\n\\u{202e}txt.exe\\u{9b}"
        );
        let text = terminal_safe_text("line 1\n\tline 2\u{1b}");
        assert_eq!(text, "line 1\n\tline 2\\u{1b}");
    }

    #[test]
    fn plain_text_and_unicode_letters_pass_unchanged() {
        for s in ["cat", "<1H OCEAN", "chi-squared", "Straße", "猫", "ü ∑ ±"] {
            assert!(matches!(terminal_safe(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn long_fields_are_shortened_after_escaping_nothing_of_their_tail() {
        let long = format!("{}\u{1b}", "y".repeat(5_000_000));
        let s = shorten(&long, 40);
        assert_eq!(s, format!("{}... (5000001 characters)", "y".repeat(40)));
    }
}
