//! The node's log output: tracing's formatter, with the id of the client
//! request a line was written for.
//!
//! With debug logging on for the API, a request's work runs inside
//! `atoll_cluster::with_request_id` on every node it touches (forwarded
//! requests carry the id); the formatter reads that scope, so a line
//! written for the request on a node whose own filter shows no span still
//! names it. Lines inside a span say nothing more: the span names the
//! request itself.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Installs the process's subscriber: `filter` picks the lines, `format`
/// their shape; they go to stderr.
pub fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .event_format(WithRequestId {
                inner: Format::default(),
            })
            .init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(WithRequestId {
                inner: Format::default().json(),
            })
            .init(),
    }
}

/// A formatter that adds the current request's id to lines written
/// outside any span: a `request_id=` prefix in text, a member in JSON.
struct WithRequestId<F> {
    inner: F,
}

impl<S, N> FormatEvent<S, N> for WithRequestId<Format<Full>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(id) = request_id_to_add(ctx) {
            write!(writer, "request_id={id} ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

impl<S, N> FormatEvent<S, N> for WithRequestId<Format<Json>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = request_id_to_add(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        // `{"timestamp":…}` becomes `{"request_id":"…","timestamp":…}`.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"request_id\":\"{id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

/// The id of the request being served, when the line is not in a span.
fn request_id_to_add<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<std::sync::Arc<str>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    if ctx.lookup_current().is_some() {
        return None;
    }
    atoll_cluster::current_request_id()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::{Format, JsonFields};

    use super::WithRequestId;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Logs one line inside a request scope and one outside.
    fn log_lines() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            atoll_cluster::with_request_id("REQ123".into(), async {
                tracing::warn!(detail = 7, "inside");
            })
            .await;
            tracing::warn!("outside");
        });
    }

    #[test]
    fn text_lines_of_a_request_name_it() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .event_format(WithRequestId {
                inner: Format::default().with_ansi(false),
            })
            .finish();
        tracing::subscriber::with_default(subscriber, log_lines);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("request_id=REQ123 "), "{text}");
        assert!(
            lines[0].contains("inside") && lines[0].contains("detail=7"),
            "{text}"
        );
        assert!(!lines[1].contains("request_id"), "{text}");
    }

    #[test]
    fn json_lines_of_a_request_carry_it_as_a_member() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .fmt_fields(JsonFields::new())
            .event_format(WithRequestId {
                inner: Format::default().json(),
            })
            .finish();
        tracing::subscriber::with_default(subscriber, log_lines);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["request_id"], "REQ123", "{text}");
        assert_eq!(lines[0]["fields"]["message"], "inside", "{text}");
        assert!(lines[1].get("request_id").is_none(), "{text}");
    }
}
