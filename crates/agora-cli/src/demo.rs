//! `agora demo`: a small ecosystem with an operator, two partners and their members, served.
//!
//! Each capability adds its part of the story: the marketplace here, the data commons (FreshMart's
//! sales shared with brands, carriers pooling shipments) in `demo_commons.rs`; later a
//! coalition, the clinic's mini-app, customers' ideas.

use std::path::{Path, PathBuf};

use agora_app::{App, Call, CreateOrg, CreateToken, NewMember};
use agora_domain::{Actor, Email, OrgName, Password, PersonName, RequestId, Role};
use clap::Args;

use crate::Failure;
use crate::config::Config;
use crate::serve::{ServeArgs, bind, init_logging, open_app, serve};

/// The password of every demo account. The demo is for trying Agora, never for real data.
pub const DEMO_PASSWORD: &str = "agora-demo-password";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's data; reused if it already holds the demo [default: ./agora-demo].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Seed the data and exit without serving (for scripts and tests).
    #[arg(long)]
    pub seed_only: bool,
}

/// One demo account: who, where, which role.
struct Account {
    org: &'static str,
    email: &'static str,
    name: &'static str,
    role: Role,
}

const OPERATOR: &str = "Agora Operator";
const ACCOUNTS: &[Account] = &[
    Account {
        org: OPERATOR,
        email: "olivia@operator.example",
        name: "Olivia Operator",
        role: Role::Admin,
    },
    Account {
        org: "FreshMart",
        email: "ana@freshmart.example",
        name: "Ana Lima",
        role: Role::Owner,
    },
    Account {
        org: "FreshMart",
        email: "ben@freshmart.example",
        name: "Ben Okafor",
        role: Role::Analyst,
    },
    Account {
        org: "Brightbrew Brands",
        email: "carla@brightbrew.example",
        name: "Carla Mendes",
        role: Role::Owner,
    },
    Account {
        org: "Brightbrew Brands",
        email: "dev@brightbrew.example",
        name: "Dev Patel",
        role: Role::Developer,
    },
    Account {
        org: "Vila Clinic",
        email: "vera@vilaclinic.example",
        name: "Vera Costa",
        role: Role::Owner,
    },
];

/// The demo's customer: a person with no organisation, who shops.
const CUSTOMER_EMAIL: &str = "cleo@customer.example";

pub async fn run(config_file: Option<&Path>, args: DemoArgs) -> Result<(), Failure> {
    let flags = ServeArgs {
        data_dir: Some(
            args.data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./agora-demo")),
        ),
        listen: args.listen.clone(),
        ..ServeArgs::default()
    };
    let mut config = Config::load(config_file, flags.overrides())?;
    init_logging(&config);
    let listener = if args.seed_only {
        None
    } else {
        Some(bind(&mut config).await?)
    };
    let app = open_app(&config).await?;
    let fresh = app
        .bootstrap(OPERATOR, "owner@agora.localhost")
        .await?
        .is_some();
    let (tokens, story) = if fresh {
        let tokens = seed(&app).await?;
        let mut story = seed_market(&app).await?;
        story.push_str(&crate::demo_commons::seed(&app).await?);
        story.push_str(&crate::demo_coalition::seed(&app).await?);
        story.push_str(&crate::demo_superapp::seed(&app).await?);
        (tokens, story)
    } else {
        (Vec::new(), String::new())
    };
    let mut banner = String::new();
    banner.push_str(if fresh {
        "Seeded a fresh demo ecosystem"
    } else {
        "Reusing the demo ecosystem"
    });
    banner.push_str(&format!(
        " in {}.\n\nSign in at {}/signin with any of these (password: {DEMO_PASSWORD}):\n",
        config.storage.data_dir.display(),
        config.public_url()
    ));
    for account in ACCOUNTS {
        banner.push_str(&format!(
            "  {:<28} {:<10} of {}\n",
            account.email,
            account.role.as_str(),
            account.org
        ));
    }
    banner.push_str(&format!("  {CUSTOMER_EMAIL:<28} customer\n"));
    for (org, email, _) in crate::demo_commons::COMMONS_ACCOUNTS
        .iter()
        .chain(crate::demo_coalition::COALITION_ACCOUNTS)
    {
        banner.push_str(&format!("  {email:<28} {:<10} of {org}\n", "owner"));
    }
    if !tokens.is_empty() {
        banner.push_str("\nAPI tokens (shown only now), e.g. curl -H \"Authorization: Bearer …\" …/api/v1/me:\n");
        for (email, token) in &tokens {
            banner.push_str(&format!("  {email:<28} {token}\n"));
        }
    }
    banner.push_str(&story);
    match listener {
        Some(listener) => serve(&config, listener, app, Some(banner)).await,
        None => {
            println!("{banner}");
            Ok(())
        }
    }
}

/// Creates the partners, their members and one token per partner owner.
async fn seed(app: &App) -> Result<Vec<(String, String)>, Failure> {
    let system = Actor::system();
    let call = Call::new(&system, RequestId::new());
    let operator = app
        .store()
        .operator_org()
        .await?
        .ok_or_else(|| anyhow::anyhow!("bootstrap made no operator"))?;
    let mut tokens = Vec::new();
    let mut orgs = vec![(OPERATOR, operator.id)];
    for account in ACCOUNTS {
        let org_id = match orgs.iter().find(|(name, _)| *name == account.org) {
            Some((_, org_id)) => *org_id,
            None => {
                let org = app
                    .create_org(
                        &call,
                        CreateOrg {
                            name: OrgName::parse(account.org)?,
                        },
                    )
                    .await?;
                orgs.push((account.org, org.id));
                org.id
            }
        };
        let member = NewMember {
            email: Email::parse(account.email)?,
            role: account.role,
            display_name: Some(PersonName::parse(account.name)?),
            password: Some(Password::parse(DEMO_PASSWORD)?),
        };
        let added = app.add_member(&call, org_id, member).await?;
        if account.role == Role::Owner {
            let actor = Actor {
                user_id: Some(added.member.user_id),
                acting: Some(agora_domain::actor::Acting {
                    org_id,
                    role: Role::Owner,
                    is_operator: false,
                }),
                credential: agora_domain::Credential::System,
            };
            let owner_call = Call::new(&actor, RequestId::new());
            let created = app
                .create_token(
                    &owner_call,
                    org_id,
                    CreateToken {
                        name: "demo".into(),
                        role: Role::Owner,
                        expires_in_days: None,
                    },
                )
                .await?;
            tokens.push((account.email.to_owned(), created.secret));
        }
    }
    Ok(tokens)
}

/// The marketplace's story: FreshMart's groceries, Brightbrew's coffee and Vila Clinic's
/// consultations, a 5% commission, a customer's wallet, an order paid, refunded in part and
/// paid out, and a consultation booked by card. Returns what happened, with the figures a
/// reader can check by hand.
async fn seed_market(app: &App) -> Result<String, Failure> {
    use agora_app::{
        CartLine, NewCommissionRule, NewListing, NewOrder, NewPayout, NewRefund, NewSlot, PayWith,
    };
    use agora_domain::listing::ListingKind;
    use agora_market::commission::RuleScope;
    use agora_market::payout::{PayoutSchedule, SellerSettings};

    let system = Actor::system();
    let call = || Call::new(&system, RequestId::new());
    let eur: agora_domain::ledger::Currency = "EUR".parse()?;
    let org = |name: &'static str| async move {
        app.store()
            .org_by_name(&OrgName::parse(name)?)
            .await?
            .map(|org| org.id)
            .ok_or_else(|| Failure::from(anyhow::anyhow!("the demo has no {name}")))
    };
    let (fresh, bright, clinic) = (
        org("FreshMart").await?,
        org("Brightbrew Brands").await?,
        org("Vila Clinic").await?,
    );

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
    for seller in [fresh, bright, clinic] {
        // No hold in the demo, so that funds are available at once; payouts on request.
        let settings = SellerSettings {
            hold_days: 0,
            schedule: PayoutSchedule::Manual,
            minimum: 500,
            ..SellerSettings::default()
        };
        app.set_seller_settings(&call(), seller, settings).await?;
    }

    // Points: 1 point per euro spent, funded by the operator; 50 points for a customer's idea a
    // brand ships, funded by that brand. A point is worth 0.01 EUR when redeemed at a partner.
    use agora_app::{GrantPoints, NewPointsRule, PointsEarning, PointsSettings, RedeemPoints};
    app.set_points_settings(
        &call(),
        PointsSettings {
            currency: eur,
            minor_per_point: 1,
        },
    )
    .await?;
    app.set_points_rule(
        &call(),
        NewPointsRule {
            id: None,
            earning: PointsEarning::PerAmountSpent,
            points_per_major_unit: Some(1),
            action: None,
            points: None,
            funder: None,
            expiry_days: 365,
        },
    )
    .await?;
    app.set_points_rule(
        &call(),
        NewPointsRule {
            id: None,
            earning: PointsEarning::PerAction,
            points_per_major_unit: None,
            action: Some("idea_shipped".to_owned()),
            points: Some(50),
            funder: Some(bright),
            expiry_days: 180,
        },
    )
    .await?;

    let product = |seller, title: &str, category: &str, price, stock| NewListing {
        seller: Some(seller),
        kind: ListingKind::Product { stock: Some(stock) },
        title: title.to_owned(),
        description: String::new(),
        category: category.to_owned(),
        price,
        currency: "EUR".to_owned(),
    };
    let milk = app
        .create_listing(
            &call(),
            product(
                fresh,
                "Organic whole milk, 1 l",
                "groceries/dairy",
                125,
                200,
            ),
        )
        .await?;
    app.create_listing(
        &call(),
        product(fresh, "Sourdough loaf", "groceries/bakery", 390, 40),
    )
    .await?;
    let apples = app
        .create_listing(
            &call(),
            product(fresh, "Apples, 1 kg", "groceries/fruit", 260, 120),
        )
        .await?;
    let cold_brew = app
        .create_listing(
            &call(),
            product(
                bright,
                "Cold brew coffee, 6 cans",
                "drinks/coffee",
                1_200,
                80,
            ),
        )
        .await?;
    let consultation = app
        .create_listing(
            &call(),
            NewListing {
                seller: Some(clinic),
                kind: ListingKind::Service {
                    duration_minutes: 30,
                },
                title: "General practitioner consultation".to_owned(),
                description: "Thirty minutes with a general practitioner at Vila Clinic."
                    .to_owned(),
                category: "health/consultations".to_owned(),
                price: 4_500,
                currency: "EUR".to_owned(),
            },
        )
        .await?;
    let tomorrow_nine = {
        let day = 86_400_000_000;
        let now = agora_domain::Timestamp::now().as_micros();
        agora_domain::Timestamp::from_micros(now - now % day + day + 9 * 3_600_000_000)
    };
    let mut slots = Vec::new();
    for half_hour in 0..6 {
        let starts_at = agora_domain::Timestamp::from_micros(
            tomorrow_nine.as_micros() + half_hour * 1_800_000_000,
        );
        slots.push(
            app.add_slot(
                &call(),
                consultation.id,
                NewSlot {
                    starts_at,
                    ends_at: None,
                },
            )
            .await?,
        );
    }

    let customer = app
        .sign_up(
            CUSTOMER_EMAIL,
            "Cleo Customer",
            DEMO_PASSWORD,
            RequestId::new(),
        )
        .await?
        .user
        .id;
    app.top_up_wallet(&call(), customer, eur, 10_000, None)
        .await?;
    let order = app
        .place_order(
            &call(),
            customer,
            NewOrder {
                lines: vec![
                    CartLine {
                        listing_id: milk.id,
                        quantity: 4,
                        slot_id: None,
                    },
                    CartLine {
                        listing_id: apples.id,
                        quantity: 2,
                        slot_id: None,
                    },
                    CartLine {
                        listing_id: cold_brew.id,
                        quantity: 1,
                        slot_id: None,
                    },
                ],
                pay_with: PayWith::Wallet,
                expected_total: None,
            },
        )
        .await?
        .order;
    app.fulfil_order(&call(), order.id, fresh).await?;
    app.fulfil_order(&call(), order.id, bright).await?;
    let apple_line = order
        .lines
        .iter()
        .find(|line| line.listing == apples.id)
        .map(|line| line.id)
        .ok_or_else(|| anyhow::anyhow!("the demo order has no apples"))?;
    let refund = app
        .refund_order(
            &call(),
            order.id,
            NewRefund {
                line_id: apple_line,
                amount: 260,
                reason: "one bag of apples was bruised".into(),
            },
        )
        .await?;
    app.release_due(&call(), agora_domain::Timestamp::now())
        .await?;
    let payout = app
        .request_payout(
            &call(),
            fresh,
            NewPayout {
                currency: eur,
                amount: None,
                reference: "FreshMart demo payout".into(),
            },
        )
        .await?;
    let booking = app
        .place_order(
            &call(),
            customer,
            NewOrder {
                lines: vec![CartLine {
                    listing_id: consultation.id,
                    quantity: 1,
                    slot_id: Some(slots[0].id),
                }],
                pay_with: PayWith::Card {
                    token: "tok_visa".into(),
                },
                expected_total: None,
            },
        )
        .await?
        .order;
    // Brightbrew ships Cleo's idea; she spends 60 points at FreshMart, the soonest-expiring first.
    app.grant_points(
        &call(),
        bright,
        GrantPoints {
            customer,
            action: "idea_shipped".to_owned(),
            reference: Some("idea: a decaf cold brew".to_owned()),
        },
    )
    .await?;
    let redemption = app
        .redeem_points(
            &call(),
            customer,
            RedeemPoints {
                points: 60,
                at_partner: fresh,
                reference: Some("demo redemption".to_owned()),
            },
        )
        .await?;
    let points = app.points_balance(&call(), customer).await?;
    let settlement = app.close_settlement_window(&call(), None).await?;
    let owed: Vec<String> = redemption
        .obligations
        .iter()
        .map(|obligation| {
            let debtor = if obligation.debtor == bright {
                "Brightbrew"
            } else {
                "the operator"
            };
            format!("{debtor} owes FreshMart {}", eur.format(obligation.amount))
        })
        .collect();
    let net_of = |seller| order.part(seller).map_or(0, |part| part.net);
    let (fresh_net, bright_net) = (net_of(fresh), net_of(bright));
    let wallet = app.wallet(&call(), customer, eur).await?;
    let revenue = app.revenue(&call(), eur).await?;
    let bright_balance = app.seller_balance(&call(), bright, eur).await?;
    Ok(format!(
        "\nThe marketplace (5% commission, no hold in the demo):\n\
         \x20 {CUSTOMER_EMAIL} topped up 100.00 EUR and paid order {} from the wallet: 4 × 1.25 milk + 2 × 2.60 apples (FreshMart) + 12.00 cold brew (Brightbrew) = {}.\n\
         \x20 Commission 0.25 + 0.26 + 0.60 = 1.11; FreshMart nets {} (10.20 − 0.51), Brightbrew {} (12.00 − 0.60).\n\
         \x20 One bag of apples (2.60) was refunded: {} of commission reversed, {} from FreshMart.\n\
         \x20 FreshMart was paid out {} ({} − {}); Brightbrew has {} available; commission revenue is {}.\n\
         \x20 The wallet holds {} (100.00 − {} + 2.60).\n\
         \x20 A consultation at Vila Clinic was booked by card (order {}): paid when the sandbox provider's notification arrives.\n\
         \x20 Points: the order earned 22 (1 per euro, the operator's), Brightbrew granted 50 for a shipped idea; Cleo spent 60 at FreshMart (Brightbrew's 50 first, they expire sooner, then 10 of the operator's): {} left.\n\
         \x20 Settlement: {}; the window closed with {} positions summing to zero.\n",
        order.id,
        order.currency.format(order.total),
        eur.format(fresh_net),
        eur.format(bright_net),
        eur.format(refund.commission_reversed),
        eur.format(refund.seller_share),
        eur.format(payout.amount),
        eur.format(fresh_net),
        eur.format(refund.seller_share),
        bright_balance.available_formatted,
        revenue.formatted,
        wallet.formatted,
        order.currency.format(order.total),
        booking.id,
        points.spendable,
        owed.join(", "),
        settlement.positions.len(),
    ))
}
