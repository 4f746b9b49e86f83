//! What the binary prints besides tables: errors, paths, logs; all of it escaped, since
//! file names, column names and labels come from files a user may have been handed.

use std::io::Write;
use std::path::Path;

/// A path as it is printed: escaped (a file name can hold control characters).
pub fn shown(path: &Path) -> String {
    l2m_engine::text::terminal_safe(&path.to_string_lossy()).into_owned()
}

/// The error and its causes, each printed once: a cause whose text already ends its
/// error's message (an I/O error inside "path: cause") is not repeated.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    // Messages quote column names, labels and paths from the user's files: none of their
    // characters may drive the terminal.
    l2m_engine::text::terminal_safe_text(&out).into_owned()
}

/// Logs on standard error at `warn` (`debug` with `--debug`; `L2M_LOG` overrides), with
/// every field escaped, and colour only on a terminal.
pub fn init_logging(debug: bool) {
    let filter = if debug { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("L2M_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never where NO_COLOR is set.
        .with_ansi(colour(&std::io::stderr()))
        // Field values (messages quote labels, columns and paths from the user's files)
        // are escaped before they reach the terminal.
        .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
            |w, field, value| {
                let text = format!("{value:?}");
                let text = l2m_engine::text::terminal_safe_text(&text);
                if field.name() == "message" {
                    write!(w, "{text}")
                } else {
                    write!(w, "{}={text}", field.name())
                }
            },
        ))
        .without_time()
        .try_init();
}

/// Whether `stream` gets colour: it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
fn colour(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes `text` to standard output.
pub fn print(text: &str) -> anyhow::Result<()> {
    write!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// `message` with "did you mean `x`?" appended when it is serde's "unknown field `y`,
/// expected one of ..." and a listed field is close to `y`.
pub fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let distance = |a: &str, b: &str| -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|f| (distance(unknown, f), f))
        .min();
    match best {
        Some((d, f)) if d <= 3 => format!("{} (did you mean `{f}`?)", message.trim_end()),
        _ => message.to_string(),
    }
}
