//! The load generator: connections that each keep one HTTP/1.1 request in flight, for a warm-up
//! and then a measured time, recording every measured request's latency.
//!
//! Each connection is a tokio task on hyper's connection API, without a client pool: the less
//! the generator costs, the more of the shared cores go to the server under test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::http::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long and how hard to load each target.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// Seconds each target is measured, after the warm-up.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Seconds of load before measuring, to open connections and fill pools and caches.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup_seconds: u64,
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub connections: u64,
    /// Measured requests per target at most; the run ends at this count or after `--seconds`.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub requests_max: u64,
}

/// Builds request number `index` (counted from 0) of connection number `connection`.
pub type MakeRequest = Arc<dyn Fn(u64, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// What one target did in the measured time.
pub struct Measured {
    pub requests: u64,
    /// From the start of the measured time to the end of its last request.
    pub elapsed: Duration,
    /// Sorted, shortest first.
    latencies: Vec<Duration>,
    /// CPU time of the whole process (generator and servers) over the measured time, in cores.
    pub cores_busy: Option<f64>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency that `fraction` (0.99 for p99) of the requests did not exceed.
    pub fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (fraction * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// Loads `addr` with `options.connections` connections, every answer expected to have `expected` status.
pub async fn run(
    addr: SocketAddr,
    options: &LoadOptions,
    expected: StatusCode,
    make_request: MakeRequest,
) -> Result<Measured> {
    let measure_from = Instant::now() + Duration::from_secs(options.warmup_seconds);
    let window = Window {
        measure_from,
        measure_until: measure_from + Duration::from_secs(options.seconds),
        requests_max: options.requests_max,
        claimed: Arc::new(AtomicU64::new(0)),
    };
    // Samples the process's CPU time when measuring starts, to tell how busy the cores were.
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        process_cpu_time()
    });
    let mut connections = JoinSet::new();
    for connection in 0..options.connections {
        connections.spawn(drive(
            addr,
            connection,
            window.clone(),
            expected,
            make_request.clone(),
        ));
    }
    let mut latencies = Vec::new();
    let mut last_finish = measure_from;
    while let Some(joined) = connections.join_next().await {
        let driven = joined.context("a connection task panicked")??;
        latencies.extend(driven.latencies);
        last_finish = last_finish.max(driven.last_finish.unwrap_or(measure_from));
    }
    let cpu_at_end = process_cpu_time();
    let elapsed = last_finish - measure_from;
    let cores_busy = cpu_at_start
        .await
        .context("the CPU sampling task panicked")?
        .zip(cpu_at_end)
        .map(|(start, end)| end.saturating_sub(start).as_secs_f64() / elapsed.as_secs_f64());
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    if requests == 0 {
        bail!("no request finished in the measured time");
    }
    Ok(Measured {
        requests,
        elapsed,
        latencies,
        cores_busy,
    })
}

/// Sends one request on a connection of its own, for setting up and checking.
pub async fn send_once(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, HeaderMap, Bytes)> {
    let (mut sender, connection) = connect(addr).await?;
    let response = sender
        .send_request(request)
        .await
        .context("sending a request")?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading a response")?
        .to_bytes();
    drop(sender);
    connection.await.context("the connection task panicked")??;
    Ok((status, headers, body))
}

/// User and system time of the whole process so far, from `/proc/self/stat` (Linux only).
pub fn process_cpu_time() -> Option<Duration> {
    // USER_HZ, the unit of these fields, is 100 on every Linux architecture we run on.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it are numbered from 3 (the state).
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (user + system) * 1_000 / TICKS_PER_SECOND,
    ))
}

#[derive(Clone)]
struct Window {
    measure_from: Instant,
    measure_until: Instant,
    requests_max: u64,
    /// Measured requests started so far, over all connections.
    claimed: Arc<AtomicU64>,
}

struct Driven {
    latencies: Vec<Duration>,
    last_finish: Option<Instant>,
}

type Connection = tokio::task::JoinHandle<Result<()>>;

async fn connect(addr: SocketAddr) -> Result<(http1::SendRequest<Full<Bytes>>, Connection)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    let connection =
        tokio::spawn(async move { connection.await.context("the HTTP connection failed") });
    Ok((sender, connection))
}

/// One connection's loop: a request, its whole answer, the next request.
async fn drive(
    addr: SocketAddr,
    connection_number: u64,
    window: Window,
    expected: StatusCode,
    make_request: MakeRequest,
) -> Result<Driven> {
    let (mut sender, connection) = connect(addr).await?;
    let mut latencies = Vec::new();
    let mut last_finish = None;
    for index in 0.. {
        let started = Instant::now();
        if started >= window.measure_until {
            break;
        }
        let measured = started >= window.measure_from;
        if measured && window.claimed.fetch_add(1, Ordering::Relaxed) >= window.requests_max {
            break;
        }
        sender.ready().await.context("waiting for the connection")?;
        let response = sender
            .send_request(make_request(connection_number, index))
            .await
            .context("sending a request")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading a response")?
            .to_bytes();
        if status != expected {
            bail!(
                "expected {expected}, got {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let finished = Instant::now();
        if measured {
            latencies.push(finished - started);
            last_finish = Some(finished);
        }
    }
    // Closing the sending half ends the connection, so that servers can stop gracefully.
    drop(sender);
    connection.await.context("the connection task panicked")??;
    Ok(Driven {
        latencies,
        last_finish,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(micros: &[u64]) -> Measured {
        Measured {
            requests: micros.len() as u64,
            elapsed: Duration::from_secs(1),
            latencies: micros.iter().copied().map(Duration::from_micros).collect(),
            cores_busy: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let hundred: Vec<u64> = (1..=100).collect();
        let latencies = measured(&hundred);
        assert_eq!(latencies.percentile(0.5), Duration::from_micros(50));
        assert_eq!(latencies.percentile(0.99), Duration::from_micros(99));
        assert_eq!(latencies.percentile(1.0), Duration::from_micros(100));
        assert_eq!(measured(&[7]).percentile(0.99), Duration::from_micros(7));
    }
}
