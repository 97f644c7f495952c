//! `agora serve` on each backend: first start, health, readiness, metrics, a bearer request,
//! and a graceful stop on SIGTERM.

use crate::harness::{TestServer, backends, http};

#[test]
fn serve_starts_on_every_backend_answers_and_stops_gracefully() {
    for backend in backends() {
        let mut server = TestServer::start(backend);
        let client = http();
        assert!(
            server.owner_token.starts_with("agora_"),
            "{backend:?}: {}",
            server.owner_token
        );
        assert!(server.signin_link.contains("/signin/link/"), "{backend:?}");

        let health = client
            .get(format!("{}/healthz", server.url))
            .send()
            .unwrap();
        assert_eq!(health.status(), 200, "{backend:?}");
        let ready = client.get(format!("{}/readyz", server.url)).send().unwrap();
        assert_eq!(ready.text().unwrap(), "ready", "{backend:?}");

        let me: serde_json::Value = client
            .get(format!("{}/api/v1/me", server.url))
            .bearer_auth(&server.owner_token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(me["acting"]["role"], "owner", "{backend:?}: {me}");
        assert_eq!(me["acting"]["is_operator"], true, "{backend:?}: {me}");

        let metrics = client
            .get(format!("{}/metrics", server.url))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains(
                "agora_http_requests_total{method=\"GET\",route=\"/api/v1/me\",status=\"200\"} 1"
            ),
            "{backend:?}: {metrics}"
        );
        assert!(
            metrics.contains("agora_db_pool_connections_max 16"),
            "{backend:?}"
        );
        assert!(
            metrics.contains("agora_http_request_duration_seconds_bucket"),
            "{backend:?}"
        );

        assert!(
            server.stop(),
            "{backend:?}: agora serve did not exit cleanly on SIGTERM"
        );
    }
}

#[test]
fn a_second_start_does_not_bootstrap_again() {
    let mut first = TestServer::start(crate::harness::Backend::Sqlite);
    assert!(first.stop());
    let output = crate::harness::agora()
        .args([
            "admin",
            "create-token",
            "--org",
            "Agora Operator",
            "--role",
            "analyst",
            "--data-dir",
        ])
        .arg(first.data_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("agora_"), "{token}");
}

#[test]
fn unknown_configuration_keys_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agora.toml");
    std::fs::write(&config, "[server]\nlisten_addr = \"127.0.0.1:0\"\n").unwrap();
    let output = crate::harness::agora()
        .args(["--config"])
        .arg(&config)
        .args(["serve"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen_addr"), "{stderr}");
}

#[test]
fn operator_policies_that_do_not_validate_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("extra.cedar");
    std::fs::write(
        &policies,
        "forbid(principal, action, resource) when { principal.shoe_size > 3 };\n",
    )
    .unwrap();
    let output = crate::harness::agora()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--policies")
        .arg(&policies)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("extra.cedar") && stderr.contains("shoe_size"),
        "{stderr}"
    );
}
