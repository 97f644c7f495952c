//! The demo's superapp: Vila Clinic's consultation mini-app (pick a doctor and a slot, pay from
//! the wallet) and FreshMart's shop, both uploaded as bundles and approved by the operator.
//!
//! With `AGORA_TEST_HOSTILE_APP_DIR` set, a third, hostile mini-app from that folder is
//! registered too: the browser's isolation test uses it.

use std::fmt::Write as _;

use agora_app::superapp::zip_files;
use agora_app::{App, Call, NewListing, NewSlot, ReviewDecision};
use agora_domain::listing::ListingKind;
use agora_domain::{Actor, RequestId, Timestamp};

use crate::Failure;
use crate::demo_commons::owner_of;

const CLINIC: &[(&str, &[u8])] = &[
    (
        "manifest.json",
        include_bytes!("../demo-apps/clinic/manifest.json"),
    ),
    (
        "index.html",
        include_bytes!("../demo-apps/clinic/index.html"),
    ),
    ("app.js", include_bytes!("../demo-apps/clinic/app.js")),
    ("app.css", include_bytes!("../demo-apps/clinic/app.css")),
    ("icon.svg", include_bytes!("../demo-apps/clinic/icon.svg")),
];

const GROCER: &[(&str, &[u8])] = &[
    (
        "manifest.json",
        include_bytes!("../demo-apps/grocer/manifest.json"),
    ),
    (
        "index.html",
        include_bytes!("../demo-apps/grocer/index.html"),
    ),
    ("app.js", include_bytes!("../demo-apps/grocer/app.js")),
    ("app.css", include_bytes!("../demo-apps/grocer/app.css")),
    ("icon.svg", include_bytes!("../demo-apps/grocer/icon.svg")),
];

/// The environment variable naming a folder with a hostile mini-app (tests only).
pub const HOSTILE_APP_DIR: &str = "AGORA_TEST_HOSTILE_APP_DIR";

pub async fn seed(app: &App) -> Result<String, Failure> {
    let mut story = String::new();
    let clinic = owner_of(app, "Vila Clinic", "vera@vilaclinic.example").await?;
    let grocer = owner_of(app, "FreshMart", "ana@freshmart.example").await?;
    add_paediatrician(app, &clinic).await?;
    let operator = Actor::system();
    let clinic_app = register(app, &clinic, &operator, CLINIC).await?;
    let grocer_app = register(app, &grocer, &operator, GROCER).await?;
    writeln!(
        story,
        "\nSuperapp: {} (Vila Clinic) and {} (FreshMart) are approved mini-apps at {} and {};\n  the customer opens them from Apps, grants scopes in the portal's consent dialog and pays in its cashier.",
        clinic_app.0,
        grocer_app.0,
        app.miniapp_origin("clinic"),
        app.miniapp_origin("grocer"),
    )?;
    writeln!(
        story,
        "  Vila Clinic's backend signs customers in with OpenID Connect: client_id {} client_secret {}",
        clinic_app.1, clinic_app.2,
    )?;
    if let Some(dir) = std::env::var_os(HOSTILE_APP_DIR) {
        let dir = std::path::PathBuf::from(dir);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                files.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    std::fs::read(entry.path())?,
                ));
            }
        }
        let borrowed: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(name, body)| (name.as_str(), body.as_slice()))
            .collect();
        let bright = owner_of(app, "Brightbrew Brands", "carla@brightbrew.example").await?;
        let hostile = register(app, &bright, &operator, &borrowed).await?;
        writeln!(
            story,
            "  (test) the hostile mini-app {} is registered from {}.",
            hostile.0,
            dir.display()
        )?;
    }
    Ok(story)
}

/// Registers a bundle for the actor's organisation and approves it as the operator.
async fn register(
    app: &App,
    partner: &Actor,
    operator: &Actor,
    files: &[(&str, &[u8])],
) -> Result<(String, agora_domain::MiniAppId, String), Failure> {
    let zip = zip_files(files)?;
    let org_id = partner.org_id().expect("an owner acts for an organisation");
    let registered = app
        .register_miniapp(&Call::new(partner, RequestId::new()), org_id, &zip, true)
        .await?;
    if registered.version.state == "pending" {
        app.review_miniapp_version(
            &Call::new(operator, RequestId::new()),
            registered.app.id,
            registered.version.version,
            ReviewDecision {
                decision: "approve".to_owned(),
                reason: "Reviewed for the demo: asks only what it uses, and says why.".to_owned(),
            },
        )
        .await?;
    }
    Ok((
        registered.app.name,
        registered.app.id,
        registered.client_secret,
    ))
}

/// A second doctor, so the clinic's mini-app has doctors to choose from.
async fn add_paediatrician(app: &App, clinic: &Actor) -> Result<(), Failure> {
    let call = Call::new(clinic, RequestId::new());
    let listing = app
        .create_listing(
            &call,
            NewListing {
                seller: None,
                kind: ListingKind::Service {
                    duration_minutes: 30,
                },
                title: "Dr. Inês Rocha, paediatrician".to_owned(),
                description: "Thirty minutes with a paediatrician at Vila Clinic.".to_owned(),
                category: "health/consultations".to_owned(),
                price: 6_000,
                currency: "EUR".to_owned(),
            },
        )
        .await?;
    let day = 86_400_000_000;
    let now = Timestamp::now().as_micros();
    let tomorrow_two = now - now % day + day + 14 * 3_600_000_000;
    for half_hour in 0..4 {
        app.add_slot(
            &call,
            listing.id,
            NewSlot {
                starts_at: Timestamp::from_micros(tomorrow_two + half_hour * 1_800_000_000),
                ends_at: None,
            },
        )
        .await?;
    }
    Ok(())
}
