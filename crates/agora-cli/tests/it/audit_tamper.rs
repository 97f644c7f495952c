//! Editing, removing or reordering audit rows in the database makes `agora audit verify` fail
//! and name the first entry that is not as it was written.

use crate::harness::{Backend, TestServer, agora, backends, http, run_sql};

/// Makes a few audited changes through the API.
fn make_entries(server: &TestServer) {
    let client = http();
    for name in ["FreshMart", "Brightbrew Brands", "Carrier Co-op"] {
        let response = client
            .post(format!("{}/api/v1/orgs", server.url))
            .bearer_auth(&server.owner_token)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}

fn verify(server: &TestServer) -> std::process::Output {
    agora()
        .args(["audit", "verify"])
        .args(server.storage_args())
        .output()
        .unwrap()
}

fn sql_url(server: &TestServer, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", server.data_dir.join("agora.db").display()),
        Backend::Postgres => server.database_url.clone().unwrap(),
    }
}

#[test]
fn an_intact_log_verifies() {
    for backend in backends() {
        let mut server = TestServer::start(backend);
        make_entries(&server);
        assert!(server.stop());
        let output = verify(&server);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{backend:?}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("The audit log is intact"),
            "{backend:?}: {stdout}"
        );
        // The final checkpoint on shutdown was checked too.
        assert!(
            stdout.contains("1 signed checkpoints consistent")
                || stdout.contains("2 signed checkpoints consistent"),
            "{backend:?}: {stdout}"
        );
    }
}

#[test]
fn editing_one_audit_row_makes_verify_fail_naming_that_entry() {
    for backend in backends() {
        let mut server = TestServer::start(backend);
        make_entries(&server);
        assert!(server.stop());
        run_sql(
            &sql_url(&server, backend),
            "UPDATE audit_entries SET action = 'org.nothing_to_see' WHERE seq = 3",
        );
        let output = verify(&server);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(8), "{backend:?}: {stderr}");
        assert!(
            stderr.contains("entry 3 was edited"),
            "{backend:?}: {stderr}"
        );
    }
}

#[test]
fn removing_a_row_or_cutting_the_tail_is_named() {
    let mut server = TestServer::start(Backend::Sqlite);
    make_entries(&server);
    assert!(server.stop());
    let url = sql_url(&server, Backend::Sqlite);
    run_sql(&url, "DELETE FROM audit_entries WHERE seq = 2");
    let output = verify(&server);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("entry 2 is missing"), "{stderr}");

    let mut server = TestServer::start(Backend::Sqlite);
    make_entries(&server);
    assert!(server.stop());
    let url = sql_url(&server, Backend::Sqlite);
    // Cutting the newest entries, including the checkpoint's own, and the head row with them.
    run_sql(&url, "DELETE FROM audit_entries WHERE seq > 2");
    run_sql(
        &url,
        "UPDATE audit_head SET seq = 2, entry_hash = (SELECT entry_hash FROM audit_entries WHERE seq = 2)",
    );
    let output = verify(&server);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("entry 3 is missing"), "{stderr}");
}

#[test]
fn swapping_two_rows_contents_is_caught_at_the_first() {
    let mut server = TestServer::start(Backend::Sqlite);
    make_entries(&server);
    assert!(server.stop());
    let url = sql_url(&server, Backend::Sqlite);
    run_sql(&url, "UPDATE audit_entries SET seq = -1 WHERE seq = 4");
    run_sql(&url, "UPDATE audit_entries SET seq = 4 WHERE seq = 3");
    run_sql(&url, "UPDATE audit_entries SET seq = 3 WHERE seq = -1");
    let output = verify(&server);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("entry 3 was edited"), "{stderr}");
}

#[test]
fn verify_on_a_wrong_folder_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-instance");
    let output = agora()
        .args(["audit", "verify", "--data-dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("instance key"));
    assert!(
        !missing.exists(),
        "verify must not create the folder it was pointed at"
    );
}

#[test]
fn a_lost_instance_key_stops_the_start_instead_of_signing_a_new_history() {
    let mut server = TestServer::start(Backend::Sqlite);
    make_entries(&server);
    assert!(server.stop());
    std::fs::remove_file(server.data_dir.join("instance.key")).unwrap();
    let output = agora()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(server.storage_args())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("restore it from a backup"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!server.data_dir.join("instance.key").exists());
}

#[test]
fn a_checkpoint_with_a_forged_signature_is_tampering() {
    let mut server = TestServer::start(Backend::Sqlite);
    make_entries(&server);
    assert!(server.stop());
    run_sql(
        &sql_url(&server, Backend::Sqlite),
        "UPDATE audit_checkpoints SET signature = zeroblob(64)",
    );
    let output = verify(&server);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("not signed by this instance's key"),
        "{stderr}"
    );
}
