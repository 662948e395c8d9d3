//! One tracing subscriber for the whole process.
//!
//! Nothing secret is ever passed to a log macro: PINs have no displayable
//! digits, and webhook parameters are logged by name, never by value.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// Installs the subscriber: level from `RUST_LOG` (default `info`), lines
/// to standard error so standard output stays for command results.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests starting several servers) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
