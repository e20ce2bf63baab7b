//! Time spent in lethe's tracing spans, by name (to split a workload into phases).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

static TOTALS: Mutex<Option<HashMap<&'static str, Duration>>> = Mutex::new(None);

struct Started(Instant);

pub struct Timing;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Timing {
    fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(Instant::now()));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(started) = span.extensions().get::<Started>().map(|s| s.0) else {
            return;
        };
        if let Ok(mut t) = TOTALS.lock() {
            *t.get_or_insert_with(HashMap::new)
                .entry(span.name())
                .or_default() += started.elapsed();
        }
    }
}

pub fn install() {
    use tracing_subscriber::prelude::*;
    let _ = tracing_subscriber::registry().with(Timing).try_init();
}

/// Takes the totals collected so far.
pub fn take() -> HashMap<&'static str, Duration> {
    TOTALS
        .lock()
        .ok()
        .and_then(|mut t| t.take())
        .unwrap_or_default()
}
