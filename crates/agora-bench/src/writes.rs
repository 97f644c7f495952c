//! Audited writes: `POST /api/v1/orgs` with unique names, each creating an organisation, a
//! membership, an audit entry and an event in one transaction, on each database.

use std::net::SocketAddr;
use std::sync::Arc;

use agora_app::{App, ChainReport};
use anyhow::{Context, Result, anyhow};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::http::{HeaderValue, Method, Request, StatusCode, Uri, header};

use crate::database::{BackendOptions, Database};
use crate::load::{self, LoadOptions, MakeRequest, Measured};
use crate::report::{self, Table};
use crate::servers;

pub async fn run(load: &LoadOptions, backend_options: &BackendOptions) -> Result<()> {
    println!("## writes: audited creates\n");
    println!(
        "`POST /api/v1/orgs` with a unique name per request, as the operator owner; each request writes an organisation, a membership, an audit entry and an event in one transaction."
    );
    println!(
        "{} connections, {} s warm-up, {} s measured per database; SQLite runs with `synchronous = FULL` (a sync per commit).\n",
        load.connections, load.warmup_seconds, load.seconds
    );
    let mut table = Table::new(1, &["database", "requests", "req/s", "p50", "p99"]);
    let mut checks = Vec::new();
    for backend in backend_options.backends()? {
        let database = Database::create(backend, backend_options).await?;
        let written = measure(&database, load, backend_options).await;
        database.remove().await?;
        let written = written.with_context(|| format!("writes on {}", backend.name()))?;
        table.row(vec![
            backend.name().to_owned(),
            report::count(written.measured.requests),
            report::rate(written.measured.per_second()),
            report::latency(written.measured.percentile(0.50)),
            report::latency(written.measured.percentile(0.99)),
        ]);
        checks.push(format!(
            "{}: the run (warm-up included) appended {} audit entries; the whole chain of {} entries verifies.",
            backend.name(),
            report::count(written.audit_entries_appended),
            report::count(written.chain.entries.unsigned_abs()),
        ));
    }
    table.print();
    println!();
    for check in checks {
        println!("{check}");
    }
    println!();
    Ok(())
}

struct Written {
    measured: Measured,
    audit_entries_appended: u64,
    chain: ChainReport,
}

async fn measure(
    database: &Database,
    load: &LoadOptions,
    backend_options: &BackendOptions,
) -> Result<Written> {
    let app = database.open_app(backend_options).await?;
    let written = measure_app(&app, load).await;
    app.store().close().await;
    written
}

async fn measure_app(app: &App, load: &LoadOptions) -> Result<Written> {
    let bootstrap = app
        .bootstrap("Agora Operator", "owner@agora.localhost")
        .await
        .context("bootstrapping")?
        .context("a fresh database was already bootstrapped")?;
    let (seq_before, _) = app.store().audit_head().await?;
    let real = servers::real(app).await?;
    let measured = async {
        load::run(
            real.addr,
            load,
            StatusCode::CREATED,
            create_request(real.addr, &bootstrap.token)?,
        )
        .await
    }
    .await;
    let stopped = real.stop().await;
    let measured = measured?;
    stopped?;
    let (seq_after, _) = app.store().audit_head().await?;
    let chain = agora_app::verify_chain(app.store(), &app.key().public_hex(), &mut |_, _| {})
        .await?
        .map_err(|chain_break| anyhow!("the audit chain is broken after the run: {chain_break}"))?;
    Ok(Written {
        measured,
        audit_entries_appended: (seq_after - seq_before).unsigned_abs(),
        chain,
    })
}

/// A create with a name no other request of the run uses.
fn create_request(addr: SocketAddr, token: &str) -> Result<MakeRequest> {
    let uri: Uri = "/api/v1/orgs".parse().context("the path is a URI")?;
    let host = HeaderValue::from_str(&addr.to_string()).context("the address is a header")?;
    let authorization =
        HeaderValue::from_str(&format!("Bearer {token}")).context("the token is a header")?;
    let json = HeaderValue::from_static("application/json");
    Ok(Arc::new(move |connection, index| {
        let body = format!(r#"{{"name":"Bench partner {connection}-{index}"}}"#);
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(header::HOST, host.clone());
        headers.insert(header::AUTHORIZATION, authorization.clone());
        headers.insert(header::CONTENT_TYPE, json.clone());
        request
    }))
}
