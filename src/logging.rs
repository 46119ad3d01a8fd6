//! Logs: JSON lines (for collectors) or pretty text (for people at a terminal); and, when
//! traces are exported, the layers that turn spans and database queries into them.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use opentelemetry_sdk::trace::SdkTracer;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

use crate::config::LogFormat;
use crate::telemetry::{TARGET, Telemetry};

const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// The target of sqlx's event for each statement it ran.
const SQLX_QUERY: &str = "sqlx::query";

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: Option<LogFormat>, telemetry: Option<&Telemetry>) {
    let env_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let Some(telemetry) = telemetry else {
        // No traces: one global filter and the log layer's own type, no boxed layer: a
        // request's span and log line are a handful of layer calls each, every one of them
        // a virtual call through a box.
        let builder = tracing_subscriber::fmt().with_env_filter(env_filter);
        let _ = match format {
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .try_init(),
            LogFormat::Pretty => builder.compact().try_init(),
        };
        return;
    };
    // Traces: each layer its own filter. Spans made for the exporter never reach the log
    // (log lines keep the request's span), and the exporter takes only those spans.
    let log = log_layer(format).with_filter(env_filter).with_filter(
        filter::Targets::new()
            .with_default(tracing::Level::TRACE)
            .with_target(TARGET, filter::LevelFilter::OFF),
    );
    // Only what an operator reads in a trace: no source lines, threads or idle times.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(telemetry.tracer.clone())
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(filter::filter_fn(|m| m.target() == TARGET));
    let dispatch = Arc::new(OnceLock::new());
    let queries = QuerySpans {
        tracer: telemetry.tracer.clone(),
        dispatch: Arc::clone(&dispatch),
    }
    .with_filter(filter::filter_fn(|m| {
        m.target() == TARGET || m.target() == SQLX_QUERY
    }));
    let installed = tracing_subscriber::registry()
        .with(log)
        .with(spans)
        .with(queries)
        .try_init();
    // A filtered layer is not told which dispatcher it is in; the query layer needs it to
    // find a span's trace context.
    if installed.is_ok() {
        tracing::dispatcher::get_default(|d| {
            let _ = dispatch.set(d.downgrade());
        });
    }
}

fn log_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    }
}

/// A client span for each statement, made from the event sqlx logs when the statement is done
/// (with its summary and duration), under the traced span it ran in. sqlx makes no span of
/// its own, and wrapping each of the store's queries by hand would miss the next one added.
struct QuerySpans {
    tracer: SdkTracer,
    /// The global dispatcher, set once it is installed.
    dispatch: Arc<OnceLock<tracing::dispatcher::WeakDispatch>>,
}

impl<S> Layer<S> for QuerySpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != SQLX_QUERY {
            return;
        }
        // Only statements run for a traced request (or task) become spans.
        let Some(current) = ctx.lookup_current() else {
            return;
        };
        let Some(dispatch) = self.dispatch.get().and_then(|d| d.upgrade()) else {
            return;
        };
        let Some(parent) = tracing_opentelemetry::get_otel_context(&current.id(), &dispatch) else {
            return;
        };
        let mut fields = QueryFields::default();
        event.record(&mut fields);
        let end = SystemTime::now();
        let start = end
            .checked_sub(Duration::from_secs_f64(fields.elapsed_secs.max(0.0)))
            .unwrap_or(end);
        let name = fields.summary.trim_end_matches(" …").to_string();
        let mut attributes = vec![KeyValue::new("db.query.summary", name.clone())];
        let text = fields.statement.trim();
        attributes.push(KeyValue::new(
            "db.query.text",
            if text.is_empty() {
                name.clone()
            } else {
                text.to_string()
            },
        ));
        if let Some(rows) = fields.rows_returned {
            attributes.push(KeyValue::new("db.response.returned_rows", rows as i64));
        }
        let mut span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(end);
    }
}

#[derive(Default)]
struct QueryFields {
    summary: String,
    statement: String,
    elapsed_secs: f64,
    rows_returned: Option<u64>,
}

impl Visit for QueryFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = value;
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows_returned = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}
