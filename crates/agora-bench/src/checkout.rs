//! End-to-end checkout over HTTP: `POST /api/v1/customers/{id}/orders` with a cart from two
//! sellers paid from the wallet, each request placing an order, reserving stock, resolving and
//! freezing commission, moving the money through the ledger's single writer (durably), and
//! storing the order with its audit entry and events. The baseline, in the same run on the same
//! database, is the simplest audited write: `POST /api/v1/orgs`.

use std::net::SocketAddr;
use std::sync::Arc;

use agora_app::{App, Call, CartLine, NewCommissionRule, NewListing, NewOrder, PayWith};
use agora_domain::listing::ListingKind;
use agora_domain::{Actor, ListingId, RequestId, UserId};
use agora_market::AccountPurpose;
use agora_market::commission::RuleScope;
use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::http::{HeaderValue, Method, Request, StatusCode, Uri, header};

use crate::database::{BackendOptions, Database};
use crate::load::{self, LoadOptions, MakeRequest, Measured};
use crate::report::{self, Table};
use crate::servers;

/// What each customer's wallet starts with: far more than any run spends.
const WALLET_MINOR: i64 = 1_000_000_000_000;

pub async fn run(load: &LoadOptions, backend_options: &BackendOptions) -> Result<()> {
    println!("## checkout: orders over HTTP\n");
    println!(
        "`POST /api/v1/customers/{{id}}/orders`: a cart of two lines from two sellers, paid from the wallet, as the operator acting for the customer. Each request reserves stock, freezes a 5% commission per line, records the step, moves the total through the ledger's single writer (durably) and stores the order with its audit entry and events. The baseline is `POST /api/v1/orgs` (one audited write) on the same database in the same run; the ratio says how many audited writes a checkout costs."
    );
    println!(
        "{} connections, {} s warm-up, {} s measured per scenario; SQLite runs with `synchronous = FULL`.\n",
        load.connections, load.warmup_seconds, load.seconds
    );
    let mut table = Table::new(
        1,
        &[
            "database",
            "scenario",
            "requests",
            "req/s",
            "p50",
            "p99",
            "vs baseline",
        ],
    );
    let mut checks = Vec::new();
    for backend in backend_options.backends()? {
        let database = Database::create(backend, backend_options).await?;
        let measured = measure(&database, load, backend_options).await;
        database.remove().await?;
        let (baseline, checkout, check) =
            measured.with_context(|| format!("checkout on {}", backend.name()))?;
        for (scenario, measured) in [
            ("audited write (baseline)", &baseline),
            ("checkout", &checkout),
        ] {
            table.row(vec![
                backend.name().to_owned(),
                scenario.to_owned(),
                report::count(measured.requests),
                report::rate(measured.per_second()),
                report::latency(measured.percentile(0.50)),
                report::latency(measured.percentile(0.99)),
                format!("{:.2}", measured.per_second() / baseline.per_second()),
            ]);
        }
        checks.push(format!("{}: {check}", backend.name()));
    }
    table.print();
    println!();
    for check in checks {
        println!("{check}");
    }
    println!();
    Ok(())
}

async fn measure(
    database: &Database,
    load: &LoadOptions,
    backend_options: &BackendOptions,
) -> Result<(Measured, Measured, String)> {
    let app = database.open_app(backend_options).await?;
    let measured = measure_app(&app, load).await;
    app.shutdown().await;
    app.store().close().await;
    measured
}

async fn measure_app(app: &App, load: &LoadOptions) -> Result<(Measured, Measured, String)> {
    let bootstrap = app
        .bootstrap("Agora Operator", "owner@agora.localhost")
        .await
        .context("bootstrapping")?
        .context("a fresh database was already bootstrapped")?;
    let (customers, cart) = seed(app, load.connections as usize).await?;
    let real = servers::real(app).await?;
    let measured = async {
        let baseline = load::run(
            real.addr,
            load,
            StatusCode::CREATED,
            org_request(real.addr, &bootstrap.token)?,
        )
        .await?;
        let checkout = load::run(
            real.addr,
            load,
            StatusCode::CREATED,
            checkout_request(real.addr, &bootstrap.token, customers.clone(), &cart)?,
        )
        .await?;
        Ok::<_, anyhow::Error>((baseline, checkout))
    }
    .await;
    let stopped = real.stop().await;
    let (baseline, checkout) = measured?;
    stopped?;

    // Every order the run placed moved its total out of a wallet exactly once.
    let eur = "EUR".parse()?;
    let mut spent = 0;
    for customer in &customers {
        let wallet = app
            .ledger()
            .await?
            .account(agora_market::account_id(
                &AccountPurpose::CustomerWallet {
                    customer: *customer,
                },
                eur,
            ))
            .await?
            .context("a customer's wallet is missing")?;
        spent += WALLET_MINOR - wallet.credit_balance();
    }
    let mut orders = 0;
    let mut totals = 0;
    let mut after: Option<String> = None;
    loop {
        let page = app
            .store()
            .documents("order", None, after.as_deref(), 1_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for doc in &page {
            let order: agora_market::order::Order = serde_json::from_str(&doc.body)?;
            orders += 1;
            totals += order.total;
        }
    }
    if spent != totals {
        bail!("the wallets paid {spent} but the stored orders total {totals}");
    }
    let ledger = app.store().verify_ledger_chain().await?;
    let batches = match ledger {
        Ok(batches) => batches,
        Err(broken) => bail!("the ledger's chain is broken after the run: {broken}"),
    };
    Ok((
        baseline,
        checkout,
        format!(
            "the run (warm-up included) placed {} orders; the wallets paid exactly their {} minor units; the ledger's {} batches verify.",
            report::count(orders),
            report::count(totals.unsigned_abs()),
            report::count(batches.unsigned_abs()),
        ),
    ))
}

/// Two sellers with one unlimited listing each, a 5% commission, and one funded customer per connection.
async fn seed(app: &App, connections: usize) -> Result<(Vec<UserId>, Vec<ListingId>)> {
    let system = Actor::system();
    let call = || Call::new(&system, RequestId::new());
    app.set_commission_rule(
        &call(),
        NewCommissionRule {
            scope: RuleScope::Default,
            currency: None,
            rate_bps: 500,
            fixed: 0,
            floor: 0,
            cap: None,
        },
    )
    .await?;
    let mut cart = Vec::new();
    for (seller, title, price) in [
        ("Bench Grocer", "Bread", 390),
        ("Bench Roaster", "Coffee", 1_200),
    ] {
        let org = app
            .create_org(
                &call(),
                agora_app::CreateOrg {
                    name: agora_domain::OrgName::parse(seller)?,
                },
            )
            .await?;
        let listing = app
            .create_listing(
                &call(),
                NewListing {
                    seller: Some(org.id),
                    kind: ListingKind::Product { stock: None },
                    title: title.to_owned(),
                    description: String::new(),
                    category: "bench".to_owned(),
                    price,
                    currency: "EUR".to_owned(),
                },
            )
            .await?;
        cart.push(listing.id);
    }
    let mut customers = Vec::new();
    for index in 0..connections {
        let email = format!("customer{index}@bench.example");
        let signed_up = app
            .sign_up(
                &email,
                "Bench customer",
                "a bench password",
                RequestId::new(),
            )
            .await?;
        app.top_up_wallet(
            &call(),
            signed_up.user.id,
            "EUR".parse()?,
            WALLET_MINOR,
            None,
        )
        .await?;
        customers.push(signed_up.user.id);
    }
    Ok((customers, cart))
}

fn org_request(addr: SocketAddr, token: &str) -> Result<MakeRequest> {
    let uri: Uri = "/api/v1/orgs".parse().context("the path is a URI")?;
    let headers = Headers::new(addr, token)?;
    Ok(Arc::new(move |connection, index| {
        let body = format!(r#"{{"name":"Bench partner {connection}-{index}"}}"#);
        headers.post(uri.clone(), body)
    }))
}

/// Each connection buys for its own customer, so that concurrent orders do not share a wallet.
fn checkout_request(
    addr: SocketAddr,
    token: &str,
    customers: Vec<UserId>,
    cart: &[ListingId],
) -> Result<MakeRequest> {
    let headers = Headers::new(addr, token)?;
    let lines: Vec<CartLine> = cart
        .iter()
        .map(|&listing_id| CartLine {
            listing_id,
            quantity: 1,
            slot_id: None,
        })
        .collect();
    let body = serde_json::to_string(&NewOrder {
        lines,
        pay_with: PayWith::Wallet,
        expected_total: None,
    })?;
    let uris: Vec<Uri> = customers
        .iter()
        .map(|customer| format!("/api/v1/customers/{customer}/orders").parse())
        .collect::<Result<_, _>>()
        .context("the path is a URI")?;
    Ok(Arc::new(move |connection, _| {
        headers.post(uris[connection as usize % uris.len()].clone(), body.clone())
    }))
}

struct Headers {
    host: HeaderValue,
    authorization: HeaderValue,
}

impl Headers {
    fn new(addr: SocketAddr, token: &str) -> Result<Self> {
        Ok(Self {
            host: HeaderValue::from_str(&addr.to_string()).context("the address is a header")?,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the token is a header")?,
        })
    }

    fn post(&self, uri: Uri, body: String) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.host.clone());
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        request
    }
}
