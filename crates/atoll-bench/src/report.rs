//! Latency histograms, error counts, and the report.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use crate::workload::Op;

/// What one worker (or all, merged) observed.
#[derive(Default)]
pub struct Stats {
    /// Latency of successful operations, in microseconds, by operation.
    pub latencies: BTreeMap<Op, Histogram<u64>>,
    /// Failed operations by DynamoDB error type.
    pub errors: BTreeMap<String, u64>,
}

#[expect(
    clippy::expect_used,
    reason = "1 µs to 60 s at 3 significant digits: constant bounds, valid by construction"
)]
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

impl Stats {
    /// Records a successful operation.
    pub fn record(&mut self, op: Op, latency: Duration) {
        let micros = latency.as_micros().clamp(1, 60_000_000) as u64;
        let _ = self
            .latencies
            .entry(op)
            .or_insert_with(histogram)
            .record(micros);
    }

    /// Records a failed operation.
    pub fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_insert(0) += 1;
    }

    /// Adds another worker's observations.
    pub fn merge(&mut self, other: Stats) {
        for (op, h) in other.latencies {
            let _ = self.latencies.entry(op).or_insert_with(histogram).add(&h);
        }
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_insert(0) += count;
        }
    }

    /// Successful operations.
    pub fn operations(&self) -> u64 {
        self.latencies.values().map(Histogram::len).sum()
    }

    /// Failed operations.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }

    fn all(&self) -> Histogram<u64> {
        let mut all = histogram();
        for h in self.latencies.values() {
            let _ = all.add(h);
        }
        all
    }
}

/// The outcome of a run.
pub struct Report {
    /// Label of the run (workload, concurrency...).
    pub label: String,
    /// Measured wall time.
    pub elapsed: Duration,
    /// What was observed.
    pub stats: Stats,
    /// Client CPU time (user + system) during the measurement.
    pub client_cpu: Duration,
}

fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |micros: u64| (micros as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p95_ms": ms(h.value_at_quantile(0.95)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

impl Report {
    /// Operations per second.
    pub fn throughput(&self) -> f64 {
        self.stats.operations() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Client CPU use in percent of one core.
    pub fn client_cpu_percent(&self) -> f64 {
        100.0 * self.client_cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as one JSON object.
    pub fn json(&self) -> Value {
        let mut ops = Map::new();
        for (op, h) in &self.stats.latencies {
            let mut entry = percentiles(h);
            entry["count"] = json!(h.len());
            ops.insert(op.name().to_string(), entry);
        }
        let mut out = json!({
            "label": self.label,
            "seconds": (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "operations": self.stats.operations(),
            "ops_per_sec": self.throughput().round(),
            "errors": self.stats.errors,
            "client_cpu_percent": self.client_cpu_percent().round(),
            "by_operation": ops,
        });
        if let (Some(object), Value::Object(all)) =
            (out.as_object_mut(), percentiles(&self.stats.all()))
        {
            object.extend(all);
        }
        out
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let all = self.stats.all();
        let mut text = format!(
            "{}\n  {:.0} ops/s ({} ops in {:.1} s), errors {}, client CPU {:.0}% of a core\n",
            self.label,
            self.throughput(),
            self.stats.operations(),
            self.elapsed.as_secs_f64(),
            self.stats.failures(),
            self.client_cpu_percent()
        );
        let line = |name: &str, h: &Histogram<u64>| {
            format!(
                "  {name:<7} p50 {:>8.3} ms  p95 {:>8.3} ms  p99 {:>8.3} ms  p99.9 {:>8.3} ms  max {:>8.3} ms\n",
                h.value_at_quantile(0.50) as f64 / 1000.0,
                h.value_at_quantile(0.95) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.value_at_quantile(0.999) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            )
        };
        text.push_str(&line("all", &all));
        if self.stats.latencies.len() > 1 {
            for (op, h) in &self.stats.latencies {
                text.push_str(&line(op.name(), h));
            }
        }
        for (kind, count) in &self.stats.errors {
            text.push_str(&format!("  error {kind}: {count}\n"));
        }
        text
    }
}

/// CPU time this process has used (user + system).
pub fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if result != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}
