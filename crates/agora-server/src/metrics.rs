//! Request counts, latencies and errors in the Prometheus text format, for `/metrics`.
//!
//! Recording is on every request's path: one lock, and no allocation once a route and method
//! have been seen.

use std::collections::HashMap;
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

/// One method on one route: answers by status, and latencies.
struct MethodStats {
    method: String,
    statuses: Vec<(u16, u64)>,
    latency: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    /// By route, then by method in a short list (a route has few methods).
    routes: Mutex<HashMap<String, Vec<MethodStats>>>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut routes = self
            .routes
            .lock()
            .expect("metrics lock is never poisoned: no panics while held");
        let methods = match routes.get_mut(route) {
            Some(methods) => methods,
            None => routes.entry(route.to_owned()).or_default(),
        };
        let stats = match methods.iter().position(|stats| stats.method == method) {
            Some(index) => &mut methods[index],
            None => {
                methods.push(MethodStats {
                    method: method.to_owned(),
                    statuses: Vec::new(),
                    latency: Histogram::default(),
                });
                methods.last_mut().expect("just pushed")
            }
        };
        match stats
            .statuses
            .iter_mut()
            .find(|(known, _)| *known == status)
        {
            Some((_, count)) => *count += 1,
            None => stats.statuses.push((status, 1)),
        }
        let histogram = &mut stats.latency;
        histogram.count += 1;
        histogram.sum_seconds += seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS_SECONDS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Renders every metric, with the database pool's figures appended; series in a stable order.
    pub fn render(&self, pool: agora_app::agora_store::PoolStats) -> String {
        let routes = self
            .routes
            .lock()
            .expect("metrics lock is never poisoned: no panics while held");
        let mut series: Vec<(&str, &MethodStats)> = routes
            .iter()
            .flat_map(|(route, methods)| methods.iter().map(move |stats| (route.as_str(), stats)))
            .collect();
        series.sort_by(|(route_a, a), (route_b, b)| {
            (*route_a, &a.method).cmp(&(*route_b, &b.method))
        });
        let mut out = String::new();
        out.push_str("# HELP agora_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE agora_http_requests_total counter\n");
        for (route, stats) in &series {
            let mut statuses = stats.statuses.clone();
            statuses.sort_unstable();
            for (status, count) in statuses {
                let _ = writeln!(
                    out,
                    "agora_http_requests_total{{method=\"{}\",route=\"{route}\",status=\"{status}\"}} {count}",
                    stats.method
                );
            }
        }
        out.push_str(
            "# HELP agora_http_server_errors_total HTTP requests answered with a 5xx status.\n",
        );
        out.push_str("# TYPE agora_http_server_errors_total counter\n");
        for (route, stats) in &series {
            let errors: u64 = stats
                .statuses
                .iter()
                .filter(|(status, _)| *status >= 500)
                .map(|(_, count)| count)
                .sum();
            if errors > 0 {
                let _ = writeln!(
                    out,
                    "agora_http_server_errors_total{{method=\"{}\",route=\"{route}\"}} {errors}",
                    stats.method
                );
            }
        }
        out.push_str("# HELP agora_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE agora_http_request_duration_seconds histogram\n");
        for (route, stats) in &series {
            let (method, histogram) = (&stats.method, &stats.latency);
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
