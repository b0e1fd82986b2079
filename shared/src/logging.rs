//! Structured logs through `tracing`. Under Lambda the level and format follow
//! `AWS_LAMBDA_LOG_LEVEL` and `AWS_LAMBDA_LOG_FORMAT` (JSON or Text), and
//! `RUST_LOG` is used when the Lambda level is unset.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber and a panic hook that logs panics as
/// structured errors. Calling it twice keeps the first subscriber.
pub fn init() {
    let filter = match std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().filter(|v| !v.is_empty()) {
        // Lambda's levels are uppercase and include FATAL, which tracing lacks.
        Some(level) => EnvFilter::new(match level.to_ascii_lowercase().as_str() {
            "fatal" => "error".to_string(),
            other => other.to_string(),
        }),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_target(false);
    let installed = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        // Lambda stamps every line with its own time.
        builder.without_time().try_init()
    };
    if installed.is_ok() {
        std::panic::set_hook(Box::new(move |info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %payload, location = %location, "thread panicked");
        }));
    }
}

/// Installs a subscriber for command-line use: plain text on stderr, so that
/// stdout carries only the command's output. The level comes from `RUST_LOG`
/// and defaults to `warn`.
pub fn init_cli() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

/// Returns the value of a start-up step, or logs the error with its causes
/// and exits with status 1. Returning the error from `main` instead would print
/// its debug form, which names Rust types rather than the problem.
pub fn or_exit<T>(step: &str, result: crate::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => {
            tracing::error!(error = %err.chain(), "{step} failed");
            std::process::exit(1)
        }
    }
}
