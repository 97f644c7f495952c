//! Request counts, latencies and errors in the Prometheus text format, for `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS_SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS_SECONDS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latencies: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        {
            let mut requests = self
                .requests
                .lock()
                .expect("metrics lock is never poisoned: no panics while held");
            *requests
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        let seconds = elapsed.as_secs_f64();
        let mut latencies = self
            .latencies
            .lock()
            .expect("metrics lock is never poisoned: no panics while held");
        let histogram = latencies
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        histogram.count += 1;
        histogram.sum_seconds += seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS_SECONDS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Renders every metric, with the database pool's figures appended.
    pub fn render(&self, pool: agora_app::agora_store::PoolStats) -> String {
        let mut out = String::new();
        out.push_str("# HELP agora_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE agora_http_requests_total counter\n");
        let mut errors: BTreeMap<(String, String), u64> = BTreeMap::new();
        for ((method, route, status), count) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "agora_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
            if *status >= 500 {
                *errors.entry((method.clone(), route.clone())).or_default() += count;
            }
        }
        out.push_str(
            "# HELP agora_http_server_errors_total HTTP requests answered with a 5xx status.\n",
        );
        out.push_str("# TYPE agora_http_server_errors_total counter\n");
        for ((method, route), count) in &errors {
            let _ = writeln!(
                out,
                "agora_http_server_errors_total{{method=\"{method}\",route=\"{route}\"}} {count}"
            );
        }
        out.push_str("# HELP agora_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE agora_http_request_duration_seconds histogram\n");
        for ((method, route), histogram) in self.latencies.lock().expect("metrics lock").iter() {
            for (bound, count) in BUCKETS_SECONDS.iter().zip(histogram.buckets) {
                let _ = writeln!(
                    out,
                    "agora_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "agora_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "agora_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {}",
                histogram.sum_seconds
            );
            let _ = writeln!(
                out,
                "agora_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}} {}",
                histogram.count
            );
        }
        out.push_str("# HELP agora_db_pool_connections Open connections in the database pool.\n# TYPE agora_db_pool_connections gauge\n");
        let _ = writeln!(out, "agora_db_pool_connections {}", pool.connections);
        out.push_str("# HELP agora_db_pool_idle_connections Idle connections in the database pool.\n# TYPE agora_db_pool_idle_connections gauge\n");
        let _ = writeln!(out, "agora_db_pool_idle_connections {}", pool.idle);
        out.push_str("# HELP agora_db_pool_connections_max The pool's connection limit.\n# TYPE agora_db_pool_connections_max gauge\n");
        let _ = writeln!(
            out,
            "agora_db_pool_connections_max {}",
            pool.connections_max
        );
        out
    }
}
