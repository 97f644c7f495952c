//! The portal in a real Chromium, driven by Playwright: sign in (after a wrong password),
//! check the session cookie's flags, open the audit log, sign out; the demo's customer
//! searching the market and buying with her wallet; the demo's brand querying the commons; the
//! demo's coalition steward reading the dashboard and voting; the demo's customer using two
//! mini-apps, a hostile mini-app kept inside its frame, the clinic's owner in the console, and
//! the superapp's pages checked with axe-core and the keyboard.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Backend, TestServer, http};

const PASSWORD: &str = "browser test password";

/// Where the browser test's script and its node_modules are; `None` outside CI when absent.
fn browser_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AGORA_TEST_BROWSER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser"));
    let ready =
        dir.join("node_modules/playwright-core").exists() && PathBuf::from(chromium()).exists();
    if !ready && std::env::var_os("CI").is_some() {
        panic!("CI must install Chromium and tests/browser's node_modules (see .ci/run)");
    }
    ready.then_some(dir)
}

fn chromium() -> String {
    std::env::var("AGORA_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Uses the bootstrap's one-time link to give the owner a password, as a person would.
fn choose_password(server: &TestServer) {
    let client = http();
    let page = client.get(&server.signin_link).send().unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("agora_csrf="))
        .expect("the link page sets a CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().unwrap();
    let csrf = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let response = client
        .post(&server.signin_link)
        .header("cookie", cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ])
        .send()
        .unwrap();
    assert_eq!(
        response.status(),
        303,
        "{}",
        response.text().unwrap_or_default()
    );
    // The link works once.
    assert_eq!(
        client.get(&server.signin_link).send().unwrap().status(),
        410
    );
}

#[test]
fn a_person_signs_in_opens_the_audit_log_and_signs_out_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let server = TestServer::start(Backend::Sqlite);
    choose_password(&server);
    let screenshots = std::env::var("AGORA_SCREENSHOT_DIR").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("agora-portal-screenshots")
            .display()
            .to_string()
    });
    let output = Command::new("node")
        .arg(dir.join("portal-signin.mjs"))
        .env("AGORA_URL", &server.url)
        .env("AGORA_EMAIL", "owner@agora.localhost")
        .env("AGORA_PASSWORD", PASSWORD)
        .env("AGORA_TEST_CHROMIUM", chromium())
        .env("AGORA_SCREENSHOT_DIR", &screenshots)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all 6 steps passed"), "{stdout}");
}

/// Runs `script` in Chromium against a fresh `agora demo`, signed in as `email`; returns its
/// stdout once it succeeded.
fn run_against_the_demo(dir: &std::path::Path, script: &str, email: &str) -> String {
    run_against_the_demo_with(dir, script, email, &[])
}

/// `run_against_the_demo`, with `demo_env` set for `agora demo` (such as a fixture to register).
fn run_against_the_demo_with(
    dir: &std::path::Path,
    script: &str,
    email: &str,
    demo_env: &[(&str, &std::ffi::OsStr)],
) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut demo = crate::harness::agora()
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("demo"))
        .envs(demo_env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("agora demo starts");
    // Killed whatever happens below.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = demo.stdout.take().unwrap();
    let demo = Stop(demo);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = receiver
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("agora demo printed no address");
        if let Some(rest) = line.strip_prefix("Agora is listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || while receiver.recv().is_ok() {});
    let screenshots = std::env::var("AGORA_SCREENSHOT_DIR").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("agora-portal-screenshots")
            .display()
            .to_string()
    });
    let output = Command::new("node")
        .arg(dir.join(script))
        .env("AGORA_URL", &url)
        .env("AGORA_EMAIL", email)
        .env("AGORA_PASSWORD", "agora-demo-password")
        .env("AGORA_TEST_CHROMIUM", chromium())
        .env("AGORA_SCREENSHOT_DIR", &screenshots)
        .output()
        .expect("node runs");
    drop(demo);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed in the browser:\n{stdout}\n{stderr}"
    );
    stdout.into_owned()
}

/// The demo's customer shops in Chromium: searches the market, buys a loaf with her wallet,
/// sees the paid order in her history and the wallet's new balance.
#[test]
fn the_demo_customer_buys_with_her_wallet_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let stdout = run_against_the_demo(&dir, "portal-checkout.mjs", "cleo@customer.example");
    assert!(
        stdout.contains("portal-checkout: all 6 steps passed"),
        "{stdout}"
    );
}

/// The demo's brand owner works with the data commons in Chromium: opens the protocol FreshMart
/// shares its sales under, runs a governed query and sees a result row, has a query that would
/// output customer ids refused naming its rule, and finds it in the query log.
#[test]
fn the_demo_brand_queries_the_commons_and_reads_a_refusal_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let stdout = run_against_the_demo(&dir, "portal-commons.mjs", "carla@brightbrew.example");
    assert!(
        stdout.contains("portal-commons: all 5 steps passed"),
        "{stdout}"
    );
}

/// The demo's Maskworks owner follows the Mask Makers Alliance in Chromium: opens its dashboard
/// (progress chart, nine members), reads the executed admission of ClearShield Visors, votes yes
/// with a reason on the open proposal and sees the tally go up.
#[test]
fn the_demo_steward_follows_the_coalition_and_votes_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let stdout = run_against_the_demo(&dir, "portal-coalition.mjs", "mia@maskworks.example");
    assert!(
        stdout.contains("portal-coalition: all 6 steps passed"),
        "{stdout}"
    );
}

/// The demo's customer uses two mini-apps in Chromium: lets Vila Clinic's consultation app use her
/// name in the portal's consent dialog, is still known to it after the frame reloads, books and
/// pays a doctor's time in the portal's cashier, finds the order and the lower wallet balance,
/// revokes the clinic's grant and is no longer greeted by name; then buys a product in
/// FreshMart's shop app; opened at another address than `public_url`, the host page says so.
#[test]
fn the_demo_customer_uses_two_mini_apps_and_revokes_a_grant_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let stdout = run_against_the_demo(&dir, "portal-miniapp.mjs", "cleo@customer.example");
    assert!(
        stdout.contains("portal-miniapp: all 21 steps passed"),
        "{stdout}"
    );
}

/// The demo's clinic owner works in the partner console in Chromium: sees the live clinic app,
/// has a broken zip refused with a reason, registers a second mini-app from a manifest file and
/// reads its client secret once, and uploads a second version that waits for review.
#[test]
fn the_demo_partner_registers_and_uploads_in_the_console_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let stdout = run_against_the_demo(&dir, "portal-console.mjs", "vera@vilaclinic.example");
    assert!(
        stdout.contains("portal-console: all 6 steps passed"),
        "{stdout}"
    );
}

/// The superapp's pages pass axe-core's WCAG 2.1 A and AA rules (labels, names, landmarks,
/// contrast, ARIA) at a desktop's and a phone's width, for the demo's customer (home, directory,
/// wallet, orders, grants, notifications, a mini-app with the consent dialog and the cashier
/// open) and the clinic's owner (console); the keyboard alone reaches the search and a mini-app,
/// with the focus visible.
#[test]
fn the_superapp_pages_pass_axe_and_work_with_the_keyboard_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let stdout = run_against_the_demo(&dir, "portal-a11y.mjs", "cleo@customer.example");
    assert!(
        stdout.contains("portal-a11y: all 10 pages passed"),
        "{stdout}"
    );
}

/// A hostile mini-app (tests/browser/fixtures/hostile, registered by `agora demo` only when
/// `AGORA_TEST_HOSTILE_APP_DIR` names it) cannot read the portal's cookies, page or storage, use the
/// customer's session, move the top window or get another app's payment request paid; replies
/// forged as the portal's, from its own origin and from another app's, are ignored by the SDK.
#[test]
fn a_hostile_mini_app_stays_inside_its_frame_in_chromium() {
    let Some(dir) = browser_dir() else {
        eprintln!(
            "skipping the browser test: no Chromium or tests/browser/node_modules here (CI installs both)"
        );
        return;
    };
    let fixture = dir.join("fixtures/hostile");
    let stdout = run_against_the_demo_with(
        &dir,
        "miniapp-isolation.mjs",
        "cleo@customer.example",
        &[("AGORA_TEST_HOSTILE_APP_DIR", fixture.as_os_str())],
    );
    assert!(
        stdout.contains("miniapp-isolation: all 7 steps passed"),
        "{stdout}"
    );
}
