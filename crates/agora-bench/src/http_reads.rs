//! Authenticated reads: `GET /api/v1/orgs/{id}` with a bearer token on the real server, against a
//! bare axum handler on another port returning the same JSON bytes, under the same load generator.
//!
//! Cheaper routes of the real server and single in-process calls show where the time goes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_app::agora_policy::Authorizer;
use agora_app::{App, Call};
use agora_domain::authz::{Action, Context as PolicyContext, Resource};
use agora_domain::{OrgId, RequestId};
use anyhow::{Context, Result, ensure};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::http::{HeaderValue, Request, StatusCode, Uri, header};

use crate::database::{BackendOptions, Database};
use crate::load::{self, LoadOptions, MakeRequest};
use crate::report::{self, Table};
use crate::servers;

/// The goal: the real server answers at least this fraction of bare axum's requests per second.
const GOAL_RATIO: f64 = 0.5;

/// The real route, mounted as is on the bare server.
const ROUTE: &str = "/api/v1/orgs/{org_id}";

/// Beyond this difference in busy cores between bare axum and a target, their ratio compares
/// different machines: some virtual machines pack busy threads onto fewer cores at times.
const CORES_DIFFERENCE_MAX: f64 = 0.25;

/// How long and how many times each part of a read is called on its own.
const SINGLE_CALLS_TIME: Duration = Duration::from_secs(1);
const SINGLE_CALLS_MAX: u32 = 1_000_000;

/// What one database's run measured.
struct Measured {
    /// Bare axum first, the authenticated read last.
    targets: Vec<(String, load::Measured)>,
    /// Parts of the read, called one at a time: what, and the mean time of one call.
    calls: Vec<SingleCall>,
}

pub async fn run(load: &LoadOptions, backend_options: &BackendOptions) -> Result<()> {
    println!("## http: authenticated reads against bare axum\n");
    println!(
        "`GET /api/v1/orgs/{{id}}` of the operator organisation with an operator owner's API token, over loopback HTTP/1.1 keep-alive, against a bare axum handler returning the same bytes."
    );
    println!(
        "Two more routes of the real server split the cost: `/healthz` (router and middleware only) and `/api/v1/me` (plus the token lookup)."
    );
    println!(
        "{} connections, {} s warm-up, {} s measured per target, one target after the other; bare axum runs first and last.",
        load.connections, load.warmup_seconds, load.seconds
    );
    println!(
        "`cores busy` is the process's CPU time over the measured time: compare ratios only between rows that kept the same number of cores busy.\n"
    );
    let mut table = Table::new(
        2,
        &[
            "database",
            "target",
            "requests",
            "req/s",
            "p50",
            "p99",
            "req/s ÷ bare",
            "cores busy",
        ],
    );
    let mut call_table = Table::new(
        2,
        &[
            "database",
            "call, one at a time",
            "latency",
            "CPU, all threads",
        ],
    );
    let mut goals = Vec::new();
    for backend in backend_options.backends()? {
        let database = Database::create(backend, backend_options).await?;
        let measured = measure(&database, load, backend_options).await;
        database.remove().await?;
        let Measured { targets, calls } =
            measured.with_context(|| format!("http on {}", backend.name()))?;
        for call in calls {
            call_table.row(vec![
                backend.name().to_owned(),
                call.what.to_owned(),
                report::latency(call.latency),
                call.cpu.map_or_else(|| "n/a".to_owned(), report::latency),
            ]);
        }
        let bare_per_second = targets[0].1.per_second();
        for (target, measured) in &targets {
            table.row(vec![
                backend.name().to_owned(),
                target.clone(),
                report::count(measured.requests),
                report::rate(measured.per_second()),
                report::latency(measured.percentile(0.50)),
                report::latency(measured.percentile(0.99)),
                format!("{:.3}", measured.per_second() / bare_per_second),
                measured
                    .cores_busy
                    .map_or_else(|| "n/a".to_owned(), |cores| format!("{cores:.2}")),
            ]);
        }
        let (_, bare) = &targets[0];
        let (_, read) = targets
            .last()
            .expect("the authenticated read is measured last");
        goals.push((
            backend,
            read.per_second() / bare.per_second(),
            read.percentile(0.99),
            bare.cores_busy.zip(read.cores_busy),
        ));
    }
    table.print();
    println!();
    for (backend, ratio, p99, cores) in goals {
        report::ratio_line(
            &format!(
                "authenticated reads on {} / bare axum, req/s (p99 {})",
                backend.name(),
                report::latency(p99)
            ),
            ratio,
            Some(GOAL_RATIO),
        );
        if let Some((bare_cores, read_cores)) = cores
            && (bare_cores - read_cores).abs() > CORES_DIFFERENCE_MAX
        {
            println!(
                "warning: bare axum kept {bare_cores:.2} cores busy and the authenticated read {read_cores:.2}: the scheduler gave them different machines, so this ratio is not comparable; run again"
            );
        }
    }
    println!(
        "\nThe parts of an authenticated read, each called one at a time in process for a second: mean wall-clock time, and mean CPU time of the whole process per call.\n"
    );
    call_table.print();
    println!();
    Ok(())
}

async fn measure(
    database: &Database,
    load: &LoadOptions,
    backend_options: &BackendOptions,
) -> Result<Measured> {
    let app = database.open_app(backend_options).await?;
    let measured = measure_app(&app, load).await;
    app.store().close().await;
    measured
}

/// Bare axum first, then the real server's routes from the cheapest to the authenticated read.
async fn measure_app(app: &App, load: &LoadOptions) -> Result<Measured> {
    let bootstrap = app
        .bootstrap("Agora Operator", "owner@agora.localhost")
        .await
        .context("bootstrapping")?
        .context("a fresh database was already bootstrapped")?;
    let token = bootstrap.token.as_str();
    let path = format!("/api/v1/orgs/{}", bootstrap.operator.id);
    let real = servers::real(app).await?;
    let measured = async {
        let (status, headers, body) =
            load::send_once(real.addr, read_request(real.addr, &path, token)?(0, 0)).await?;
        ensure!(
            status == StatusCode::OK,
            "the real GET answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .context("the real GET has no content type")?;
        let bare = servers::bare(ROUTE, content_type, body.clone()).await?;
        let real_targets = async {
            let (_, _, bare_body) =
                load::send_once(bare.addr, read_request(bare.addr, &path, token)?(0, 0)).await?;
            ensure!(bare_body == body, "bare axum answers other bytes");
            let bare_request = read_request(bare.addr, &path, token)?;
            let bare_before =
                load::run(bare.addr, load, StatusCode::OK, bare_request.clone()).await?;
            let mut targets = Vec::new();
            for (target, route) in [
                ("agora GET /healthz: middleware", "/healthz"),
                ("agora GET /api/v1/me: + token lookup", "/api/v1/me"),
                (
                    "agora GET /api/v1/orgs/{id}: + policy, org read",
                    path.as_str(),
                ),
            ] {
                let measured = load::run(
                    real.addr,
                    load,
                    StatusCode::OK,
                    read_request(real.addr, route, token)?,
                )
                .await?;
                targets.push((target.to_owned(), measured));
            }
            // Bare axum runs before and after the real server; the faster run is the baseline,
            // so that a disturbance of one bare run cannot flatter the ratios.
            let bare_after = load::run(bare.addr, load, StatusCode::OK, bare_request).await?;
            let bare_best = if bare_after.per_second() > bare_before.per_second() {
                bare_after
            } else {
                bare_before
            };
            targets.insert(
                0,
                (
                    format!(
                        "bare axum, the same {} bytes of JSON (faster of 2 runs)",
                        body.len()
                    ),
                    bare_best,
                ),
            );
            Ok(targets)
        }
        .await;
        let stopped = bare.stop().await;
        let targets = real_targets?;
        stopped?;
        Ok(targets)
    }
    .await;
    let stopped = real.stop().await;
    let measured = measured?;
    stopped?;
    let calls = single_calls(app, token, bootstrap.operator.id).await?;
    Ok(Measured {
        targets: measured,
        calls,
    })
}

/// How long the parts of an authenticated read take when called one at a time, with nothing
/// else running: the latency of each part, which bounds what removing it could gain.
async fn single_calls(app: &App, token: &str, org_id: OrgId) -> Result<Vec<SingleCall>> {
    let authorizer = Authorizer::builtin().context("loading the built-in policies")?;
    let actor = app.authenticate_token(token).await?;
    let resource = Resource::Organisation(org_id);
    let context = PolicyContext::default();
    let call = Call::new(&actor, RequestId::new());
    Ok(vec![
        time_calls("Authorizer::decide (Cedar, org.read)", || async {
            let decision = authorizer.decide(&actor, Action::OrgRead, &resource, &context);
            ensure!(
                decision.allowed,
                "the operator owner may read its organisation"
            );
            Ok(())
        })
        .await?,
        time_calls("App::authenticate_token (SHA-256, token)", || async {
            app.authenticate_token(token).await?;
            Ok(())
        })
        .await?,
        time_calls("Store::org (one row by id)", || async {
            app.store()
                .org(org_id)
                .await?
                .context("the organisation exists")?;
            Ok(())
        })
        .await?,
        time_calls("App::org (decide, then the organisation)", || async {
            app.org(&call, org_id).await?;
            Ok(())
        })
        .await?,
    ])
}

/// One part of a read, called over and over on its own.
struct SingleCall {
    what: &'static str,
    /// Mean wall-clock time of one call.
    latency: Duration,
    /// Mean CPU time of one call over all of the process's threads (sqlx runs SQLite on threads of its own).
    cpu: Option<Duration>,
}

/// Calls `call` for a second or `SINGLE_CALLS_MAX` times, after a few to warm up.
async fn time_calls<F, Fut>(what: &'static str, mut call: F) -> Result<SingleCall>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    for _ in 0..100 {
        call().await?;
    }
    let cpu_before = load::process_cpu_time();
    let started = Instant::now();
    let mut calls = 0;
    while calls < SINGLE_CALLS_MAX && started.elapsed() < SINGLE_CALLS_TIME {
        call().await?;
        calls += 1;
    }
    let latency = started.elapsed() / calls;
    let cpu = cpu_before
        .zip(load::process_cpu_time())
        .map(|(before, after)| after.saturating_sub(before) / calls);
    Ok(SingleCall { what, latency, cpu })
}

/// The same GET every time; the bare server and `/healthz` ignore the token.
fn read_request(addr: SocketAddr, path: &str, token: &str) -> Result<MakeRequest> {
    let uri: Uri = path.parse().context("the path is a URI")?;
    let host = HeaderValue::from_str(&addr.to_string()).context("the address is a header")?;
    let authorization =
        HeaderValue::from_str(&format!("Bearer {token}")).context("the token is a header")?;
    Ok(Arc::new(move |_, _| {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(header::HOST, host.clone());
        headers.insert(header::AUTHORIZATION, authorization.clone());
        request
    }))
}
