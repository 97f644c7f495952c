//! The client commands against a real server: signing in to a private profile, organisations,
//! members and tokens, refusals with their rule and exit code, JSON output, and the audit log
//! read, exported and verified online (including a checkpoint saved earlier, and tampering).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{Backend, TestServer, agora, run_sql};

/// What one run of the client printed, and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "{self:#?}");
        self
    }

    #[track_caller]
    fn failure(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }

    #[track_caller]
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:#?}"))
    }
}

/// A client whose profiles live in their own folder, so that nothing leaks between tests.
struct Client {
    home: tempfile::TempDir,
}

impl Client {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self) -> Command {
        let mut command = agora();
        command
            .env("AGORA_HOME", self.home.path())
            .env_remove("AGORA_PROFILE")
            .env_remove("AGORA_SERVER")
            .env_remove("AGORA_TOKEN");
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command();
        command.args(args).envs(env.iter().copied());
        output(command.output().unwrap())
    }

    /// `agora login`, with the token written on standard input as a script would.
    fn login(&self, server: &TestServer, token: &str, profile: &str) -> Run {
        let mut child = self
            .command()
            .args(["login", "--server", &server.url, "--profile", profile])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
        output(child.wait_with_output().unwrap())
    }

    fn profiles_file(&self) -> std::path::PathBuf {
        self.home.path().join("profiles.json")
    }
}

fn output(output: std::process::Output) -> Run {
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A token made offline on the server's storage, as an operator would script it.
fn offline_token(server: &TestServer, org: &str, role: &str) -> String {
    let output = agora()
        .args(["admin", "create-token", "--org", org, "--role", role])
        .args(server.storage_args())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_stores_a_private_profile_that_org_and_member_commands_use() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();

    // Before signing in, the client says how to.
    let run = client.run(&["org", "list"]).failure(3);
    assert!(run.stderr.contains("agora login --server"), "{run:#?}");

    // A token the server refuses is not stored.
    let wrong = format!("agora_000000000000_{}", "0".repeat(64));
    let run = client.login(&server, &wrong, "default").failure(3);
    assert!(
        run.stderr.contains("unknown, revoked or expired"),
        "{run:#?}"
    );
    assert!(!client.profiles_file().exists());

    let run = client
        .login(&server, &server.owner_token, "default")
        .success();
    assert!(
        run.stdout.contains("owner of Agora Operator (org_"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("usr_"), "{run:#?}");
    let prefix = &server.owner_token[..18];
    assert!(
        run.stdout.contains(prefix),
        "the prefix identifies the token: {run:#?}"
    );
    assert!(
        !run.stdout.contains(&server.owner_token) && !run.stderr.contains(&server.owner_token),
        "the token is never printed: {run:#?}"
    );
    assert_eq!(mode(&client.profiles_file()), 0o600);
    let profiles: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(client.profiles_file()).unwrap()).unwrap();
    assert_eq!(
        profiles["profiles"]["default"]["server"],
        server.url.as_str()
    );

    let run = client.run(&["org", "list"]).success();
    let header = run.stdout.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("NAME") && header.contains("STATUS"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("Agora Operator"), "{run:#?}");

    // Creating with the same idempotency key twice creates once.
    let create = [
        "org",
        "create",
        "FreshMart",
        "--idempotency-key",
        "freshmart-1",
        "--format",
        "json",
    ];
    let first = client.run(&create).success().json();
    let second = client.run(&create).success().json();
    assert_eq!(first["name"], "FreshMart");
    assert_eq!(first["id"], second["id"]);
    let freshmart = first["id"].as_str().unwrap().to_owned();

    let orgs = client
        .run(&["org", "list", "--format", "json"])
        .success()
        .json();
    let names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|org| org["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Agora Operator", "FreshMart"]);
    assert_eq!(
        client
            .run(&["org", "list", "--limit", "1", "--format", "json"])
            .success()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Organisations are named by id or by name, whatever the case.
    let run = client.run(&["org", "show", "freshmart"]).success();
    assert!(run.stdout.contains(&freshmart), "{run:#?}");
    client.run(&["org", "show", "Nobody Inc"]).failure(5);
    client
        .run(&["org", "rename", &freshmart, "FreshMart Group"])
        .success();

    // A new user gets a one-time sign-in link, printed once.
    let run = client
        .run(&[
            "member",
            "add",
            &freshmart,
            "ana@freshmart.example",
            "--role",
            "analyst",
            "--name",
            "Ana Lima",
        ])
        .success();
    assert!(run.stdout.contains("/signin/link/"), "{run:#?}");
    assert!(run.stderr.contains("shown only now"), "{run:#?}");

    let run = client.run(&["member", "list", "FreshMart Group"]).success();
    let ana = run
        .stdout
        .lines()
        .find(|line| line.contains("ana@freshmart.example"))
        .unwrap_or_else(|| panic!("{run:#?}"));
    assert!(
        ana.contains("Ana Lima") && ana.contains("analyst"),
        "{run:#?}"
    );

    let members = client
        .run(&["member", "list", &freshmart, "--format", "json"])
        .success()
        .json();
    assert_eq!(
        members.as_array().unwrap().len(),
        2,
        "the creator and Ana: {members}"
    );
    client
        .run(&["member", "remove", &freshmart, "ana@freshmart.example"])
        .success();
    let run = client.run(&["member", "list", &freshmart]).success();
    assert!(!run.stdout.contains("ana@freshmart.example"), "{run:#?}");

    // A server that does not answer is named, with exit code 7.
    let run = client
        .run_with(
            &["org", "list", "--server", "http://127.0.0.1:9"],
            &[("AGORA_TOKEN", &server.owner_token)],
        )
        .failure(7);
    assert!(
        run.stderr.contains("isn't reachable at http://127.0.0.1:9"),
        "{run:#?}"
    );
    // A server that is not the profile's never receives the profile's token.
    client
        .run(&["org", "list", "--server", "http://127.0.0.1:9"])
        .failure(2);
}

#[test]
fn created_tokens_work_until_revoked_and_refusals_name_the_rule() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();
    client
        .login(&server, &server.owner_token, "default")
        .success();

    // The secret is alone on standard output, so that a script can capture it.
    let run = client
        .run(&[
            "token",
            "create",
            "Agora Operator",
            "--name",
            "ci",
            "--role",
            "admin",
            "--expires-in-days",
            "30",
        ])
        .success();
    let secret = run.stdout.trim().to_owned();
    assert!(
        secret.starts_with("agora_") && !secret.contains(char::is_whitespace),
        "{run:#?}"
    );
    assert!(run.stderr.contains("shown only now"), "{run:#?}");
    let with_secret = [("AGORA_TOKEN", secret.as_str())];
    let me = client
        .run_with(&["org", "list", "--server", &server.url], &with_secret)
        .success();
    assert!(me.stdout.contains("Agora Operator"), "{me:#?}");

    // With --format json, the answer carries the secret and the token's record.
    let created = client
        .run(&[
            "token",
            "create",
            "Agora Operator",
            "--name",
            "dashboards",
            "--role",
            "analyst",
            "--format",
            "json",
        ])
        .success()
        .json();
    assert!(
        created["secret"].as_str().unwrap().starts_with("agora_"),
        "{created}"
    );
    assert_eq!(created["token"]["role"], "analyst");

    let tokens = client
        .run(&["token", "list", "Agora Operator", "--format", "json"])
        .success()
        .json();
    let ci = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["name"] == "ci")
        .unwrap_or_else(|| panic!("{tokens}"));
    let ci_id = ci["id"].as_str().unwrap().to_owned();
    assert_eq!(ci["prefix"].as_str().unwrap(), &secret[..18]);
    let run = client.run(&["token", "list", "Agora Operator"]).success();
    assert!(
        run.stdout.contains("PREFIX")
            && run.stdout.contains(&ci_id)
            && !run.stdout.contains(&secret),
        "{run:#?}"
    );

    let run = client.run(&["token", "revoke", &ci_id]).success();
    assert!(run.stdout.contains("revoked"), "{run:#?}");
    let run = client
        .run_with(&["org", "list", "--server", &server.url], &with_secret)
        .failure(3);
    assert!(run.stderr.contains("revoked"), "{run:#?}");

    // An analyst of the operator may read, but not admit organisations or grant above its role.
    let analyst = offline_token(&server, "Agora Operator", "analyst");
    client.login(&server, &analyst, "analyst").success();
    let pending = client
        .run(&["org", "create", "Carrier Co-op", "--format", "json"])
        .success()
        .json();
    let pending_id = pending["id"].as_str().unwrap();
    client
        .run(&["org", "list", "--profile", "analyst"])
        .success();
    let run = client
        .run(&["org", "approve", pending_id, "--profile", "analyst"])
        .failure(4);
    assert!(
        run.stderr.contains("(rule: no-permit)") && run.stderr.contains("(request id: req_"),
        "{run:#?}"
    );
    let run = client
        .run(&[
            "token",
            "create",
            "Agora Operator",
            "--name",
            "escalate",
            "--role",
            "owner",
            "--profile",
            "analyst",
        ])
        .failure(4);
    assert!(
        run.stderr.contains("(rule: no-role-escalation)"),
        "{run:#?}"
    );
    let run = client
        .run_with(
            &[
                "token",
                "create",
                "Agora Operator",
                "--name",
                "x",
                "--role",
                "owner",
            ],
            &[("AGORA_PROFILE", "analyst")],
        )
        .failure(4);
    assert!(
        run.stderr.contains("no-role-escalation"),
        "the profile can come from AGORA_PROFILE: {run:#?}"
    );
}

#[test]
fn audit_log_export_and_online_verify_including_a_saved_checkpoint_and_tampering() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();
    client
        .login(&server, &server.owner_token, "default")
        .success();
    for name in ["FreshMart", "Brightbrew Brands"] {
        client.run(&["org", "create", name]).success();
    }

    let entries = client
        .run(&["audit", "log", "--format", "json"])
        .success()
        .json();
    let entries = entries.as_array().unwrap();
    assert!(entries.len() >= 3, "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|entry| entry["action"] == "org.create" && entry["outcome"] == "succeeded")
    );
    let run = client.run(&["audit", "log", "--limit", "2"]).success();
    assert_eq!(
        run.stdout.lines().count(),
        3,
        "a header and two entries: {run:#?}"
    );
    for column in ["SEQ", "TIME", "ACTION", "RESOURCE", "OUTCOME", "CREDENTIAL"] {
        assert!(
            run.stdout.starts_with("SEQ") && run.stdout.lines().next().unwrap().contains(column),
            "{run:#?}"
        );
    }
    client
        .run(&["audit", "log", "--all", "--limit", "1"])
        .success();

    // Save a signed checkpoint, then let the log grow past it.
    let checkpoint = client
        .run(&["audit", "checkpoint", "--create", "--format", "json"])
        .success()
        .json();
    let latest = client
        .run(&["audit", "checkpoint", "--format", "json"])
        .success()
        .json();
    assert_eq!(latest, checkpoint);
    let folder = tempfile::tempdir().unwrap();
    let saved = folder.path().join("checkpoint.json");
    std::fs::write(&saved, serde_json::to_string_pretty(&checkpoint).unwrap()).unwrap();
    client.run(&["org", "create", "Carrier Co-op"]).success();

    let run = client.run(&["audit", "verify"]).success();
    // The server may have signed more on its own timer; at least the one above was checked.
    assert!(
        run.stdout.starts_with("The audit log is intact:") && run.stdout.contains(" checked, "),
        "{run:#?}"
    );
    assert!(!run.stdout.contains(" 0 signed checkpoints"), "{run:#?}");
    let saved_arg = saved.to_str().unwrap();
    let report = client
        .run(&[
            "audit",
            "verify",
            "--checkpoint",
            saved_arg,
            "--format",
            "json",
        ])
        .success()
        .json();
    assert_eq!(report["intact"], true);
    assert_eq!(report["saved_checkpoint_seq"], checkpoint["seq"]);
    assert!(
        report["entries"].as_i64().unwrap() > checkpoint["seq"].as_i64().unwrap(),
        "{report}"
    );
    assert!(
        report["own_entries_checked"].as_i64().unwrap() >= 4,
        "{report}"
    );

    // An analyst, who may not sign checkpoints, verifies the same log.
    let analyst = offline_token(&server, "Agora Operator", "analyst");
    client
        .run_with(
            &[
                "audit",
                "verify",
                "--server",
                &server.url,
                "--checkpoint",
                saved_arg,
            ],
            &[("AGORA_TOKEN", &analyst)],
        )
        .success();
    let run = client
        .run_with(
            &["audit", "checkpoint", "--create", "--server", &server.url],
            &[("AGORA_TOKEN", &analyst)],
        )
        .failure(4);
    assert!(run.stderr.contains("(rule: "), "{run:#?}");

    // The export is JSON lines, one per entry, written to the file only once whole.
    let export = folder.path().join("audit.jsonl");
    client
        .run(&["audit", "export", "--output", export.to_str().unwrap()])
        .success();
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let listed = client
        .run(&["audit", "log", "--format", "json"])
        .success()
        .json();
    assert_eq!(lines.len(), listed.as_array().unwrap().len());
    assert_eq!(lines[0]["seq"], 1);
    assert!(!folder.path().join("audit.jsonl.partial").exists());
    let run = client.run(&["audit", "export"]).success();
    assert!(
        run.stdout
            .lines()
            .all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok()),
        "{run:#?}"
    );

    // A checkpoint whose head was altered is no longer the instance's signature.
    let mut forged = checkpoint.clone();
    forged["head_hash"] = serde_json::json!("ab".repeat(32));
    std::fs::write(&saved, forged.to_string()).unwrap();
    let run = client
        .run(&["audit", "verify", "--checkpoint", saved_arg])
        .failure(8);
    assert!(
        run.stderr.contains("is not signed by this instance's key"),
        "{run:#?}"
    );

    // An entry edited in the database is named by its number.
    let database = format!("sqlite://{}", server.data_dir.join("agora.db").display());
    run_sql(
        &database,
        "UPDATE audit_entries SET action = 'org.nothing_to_see' WHERE seq = 2",
    );
    let run = client.run(&["audit", "verify"]).failure(8);
    assert!(
        run.stderr.contains("entry 2 was edited") && run.stderr.contains("(first bad entry: 2)"),
        "{run:#?}"
    );
}

#[test]
fn listing_commands_create_search_update_and_book_slots_against_a_served_instance() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();
    client
        .login(&server, &server.owner_token, "default")
        .success();
    client
        .run(&["org", "create", "FreshMart", "--format", "json"])
        .success();

    // The operator's owner lists for a partner; prices are in major units.
    let create = |title: &str, price: &str, category: &str| {
        client
            .run(&[
                "listing",
                "create",
                "--title",
                title,
                "--category",
                category,
                "--price",
                price,
                "--currency",
                "EUR",
                "--stock",
                "40",
                "--seller",
                "FreshMart",
                "--description",
                "Fresh from the farm, with milk.",
                "--format",
                "json",
            ])
            .success()
            .json()
    };
    let milk = create("Organic whole milk", "1.29", "groceries/dairy");
    assert_eq!(milk["price"], 129);
    assert_eq!(milk["kind"]["stock"], 40);
    create("Butter", "2.99", "groceries/dairy");
    create("Sourdough bread", "4.50", "groceries/bakery");

    let found = client
        .run(&["listing", "search", "milk", "--format", "json"])
        .success()
        .json();
    let titles: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|listing| listing["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles[0], "Organic whole milk",
        "title matches first: {found}"
    );
    assert_eq!(titles.len(), 3, "descriptions match too: {found}");
    let run = client
        .run(&["listing", "search", "\"whole milk\" -goat"])
        .success();
    let header = run.stdout.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("PRICE"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("1.29 EUR"), "{run:#?}");
    assert_eq!(run.stdout.lines().count(), 2, "{run:#?}");

    // Filters in major units need their currency.
    let cheap = client
        .run(&[
            "listing",
            "list",
            "--category",
            "groceries",
            "--max-price",
            "3",
            "--currency",
            "EUR",
            "--format",
            "json",
        ])
        .success()
        .json();
    assert_eq!(cheap.as_array().unwrap().len(), 2, "{cheap}");
    client
        .run(&["listing", "list", "--max-price", "3"])
        .failure(2);

    // Invalid input names the field and exits with the usage code.
    let run = client
        .run(&[
            "listing",
            "create",
            "--title",
            "Cheese",
            "--category",
            "Dairy",
            "--price",
            "1",
            "--currency",
            "EUR",
        ])
        .failure(2);
    assert!(run.stderr.contains("category"), "{run:#?}");
    let run = client
        .run(&[
            "listing",
            "create",
            "--title",
            "Cheese",
            "--category",
            "dairy",
            "--price",
            "1.999",
            "--currency",
            "EUR",
        ])
        .failure(2);
    assert!(run.stderr.contains("price"), "{run:#?}");

    let id = milk["id"].as_str().unwrap();
    let updated = client
        .run(&[
            "listing",
            "update",
            id,
            "--price",
            "1.39",
            "--unlimited-stock",
            "--format",
            "json",
        ])
        .success()
        .json();
    assert_eq!(
        (updated["price"].clone(), updated["kind"]["stock"].clone()),
        (serde_json::json!(139), serde_json::Value::Null)
    );
    let shown = client
        .run(&["listing", "show", id, "--format", "json"])
        .success()
        .json();
    assert_eq!(shown, updated);
    let archived = client
        .run(&["listing", "archive", id, "--format", "json"])
        .success()
        .json();
    assert_eq!(archived["status"], "archived");

    // A service, its slots, and the refusal of a slot for a product.
    let service = client
        .run(&[
            "listing",
            "create",
            "--title",
            "Cheese tasting",
            "--category",
            "events",
            "--price",
            "15",
            "--currency",
            "EUR",
            "--service",
            "--duration-minutes",
            "45",
            "--format",
            "json",
        ])
        .success()
        .json();
    let service_id = service["id"].as_str().unwrap();
    let starts = agora_domain::Timestamp::now()
        .plus_seconds(7 * 86_400)
        .to_rfc3339();
    let slot = client
        .run(&[
            "listing",
            "add-slot",
            service_id,
            "--starts-at",
            &starts,
            "--format",
            "json",
        ])
        .success()
        .json();
    assert!(slot["id"].as_str().unwrap().starts_with("slt_"), "{slot}");
    let run = client.run(&["listing", "slots", service_id]).success();
    assert!(
        run.stdout.contains(slot["id"].as_str().unwrap()),
        "{run:#?}"
    );
    let run = client
        .run(&["listing", "add-slot", id, "--starts-at", &starts])
        .failure(2);
    assert!(run.stderr.contains("only services have slots"), "{run:#?}");

    let help = client.run(&["listing", "search", "--help"]).success();
    assert!(help.stdout.contains("`a OR b` matches either"), "{help:#?}");
    assert!(help.stdout.contains("Filters:"), "{help:#?}");
}

#[test]
fn marketplace_commands_set_rules_and_settings_top_up_wallets_and_read_money_in_notation() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();
    client
        .login(&server, &server.owner_token, "default")
        .success();
    let freshmart = client
        .run(&["org", "create", "FreshMart", "--format", "json"])
        .success()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The operator's 5% default rule, shown as a percentage.
    client.run(&["commission", "set", "--rate", "5%"]).success();
    let run = client.run(&["commission", "list"]).success();
    assert!(
        run.stdout.contains("default") && run.stdout.contains("5.00%"),
        "{run:#?}"
    );
    client
        .run(&["commission", "set", "--rate", "five"])
        .failure(2);

    // Settings change only what is given.
    client
        .run(&[
            "seller",
            "set-settings",
            "--org",
            "FreshMart",
            "--hold-days",
            "0",
            "--schedule",
            "manual",
        ])
        .success();
    let settings = client
        .run(&[
            "seller", "settings", "--org", &freshmart, "--format", "json",
        ])
        .success()
        .json();
    assert_eq!(settings["hold_days"], 0, "{settings}");
    assert_eq!(settings["schedule"]["every"], "manual");
    assert_eq!(settings["minimum"], 1_000, "the default minimum stays");

    // The operator's cash desk tops a wallet up; the retry with the same key adds nothing.
    let me: serde_json::Value = crate::harness::http()
        .get(format!("{}/api/v1/me", server.url))
        .bearer_auth(&server.owner_token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let customer = me["user_id"].as_str().unwrap();
    let top_up = [
        "wallet",
        "top-up",
        customer,
        "--amount",
        "50.5",
        "--currency",
        "EUR",
        "--idempotency-key",
        "desk-1",
    ];
    client.run(&top_up).success();
    let run = client.run(&top_up).success();
    assert!(run.stdout.contains("50.50 EUR"), "{run:#?}");
    let run = client
        .run(&[
            "wallet",
            "top-up",
            customer,
            "--amount",
            "1.505",
            "--currency",
            "EUR",
        ])
        .failure(2);
    assert!(run.stderr.contains("at most 2 decimals"), "{run:#?}");

    // A seller with no sales: zero balances, no payouts, and no payout below the minimum.
    let run = client
        .run(&[
            "seller",
            "balance",
            "--org",
            "FreshMart",
            "--currency",
            "EUR",
        ])
        .success();
    assert!(run.stdout.contains("0.00 EUR"), "{run:#?}");
    let run = client
        .run(&["payout", "list", "--org", "FreshMart"])
        .success();
    assert!(run.stdout.contains("No payouts."), "{run:#?}");
    let run = client
        .run(&[
            "payout",
            "request",
            "--org",
            "FreshMart",
            "--currency",
            "EUR",
            "--reference",
            "week 47",
        ])
        .failure(2);
    assert!(run.stderr.contains("amount"), "{run:#?}");
    let run = client
        .run(&["seller", "orders", "--org", "FreshMart"])
        .success();
    assert!(run.stdout.contains("No orders."), "{run:#?}");

    let run = client.run(&["market", "release-due"]).success();
    assert!(run.stdout.contains("Released 0"), "{run:#?}");
    let revenue = client
        .run(&["market", "revenue", "--currency", "EUR", "--format", "json"])
        .success()
        .json();
    assert_eq!(revenue["formatted"], "0.00 EUR");

    // A partner's analyst may not read the operator's revenue: the rule is named, exit code 4.
    let analyst = offline_token(&server, &freshmart, "analyst");
    let run = client
        .run_with(
            &[
                "market",
                "revenue",
                "--currency",
                "EUR",
                "--server",
                &server.url,
            ],
            &[("AGORA_TOKEN", &analyst)],
        )
        .failure(4);
    assert!(run.stderr.contains("no-permit"), "{run:#?}");
    let run = client
        .run(&["order", "show", "ord_0196f1d0a3c27d3e8f5a9b1c2d3e4f57"])
        .failure(5);
    assert!(run.stderr.contains("not found"), "{run:#?}");
}

#[test]
fn protocol_and_query_commands_share_data_under_an_approved_protocol_and_log_every_query() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();
    client
        .login(&server, &server.owner_token, "default")
        .success();
    let fresh = client
        .run(&["org", "create", "FreshMart", "--format", "json"])
        .success()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let brand = client
        .run(&["org", "create", "Brightbrew", "--format", "json"])
        .success()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fresh_token = offline_token(&server, "FreshMart", "owner");
    let brand_token = offline_token(&server, "Brightbrew", "owner");
    let as_fresh = |args: &[&str]| {
        client.run_with(
            args,
            &[("AGORA_SERVER", &server.url), ("AGORA_TOKEN", &fresh_token)],
        )
    };
    let as_brand = |args: &[&str]| {
        client.run_with(
            args,
            &[("AGORA_SERVER", &server.url), ("AGORA_TOKEN", &brand_token)],
        )
    };

    // 60 customers in the north, 3 in the east.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("region,units,customer_id\n");
    for customer in 0..63 {
        let region = if customer < 60 { "north" } else { "east" };
        csv.push_str(&format!("{region},2,c{customer}\n"));
    }
    let file = dir.path().join("sales.csv");
    std::fs::write(&file, csv).unwrap();
    as_fresh(&[
        "dataset",
        "upload",
        "sales",
        file.to_str().unwrap(),
        "--quiet",
    ])
    .success();
    as_fresh(&[
        "dataset",
        "classify",
        "sales",
        "region=dimension",
        "units=metric",
        "customer_id=entity_id",
    ])
    .success();

    let document = format!(
        r#"name = "sales-for-brightbrew"
version = 1
provider = "{fresh}"
consumers = ["{brand}"]
purposes = ["assortment"]
analysis = "aggregate"

[[datasets]]
name = "sales"
columns = [
  {{ name = "region", class = "dimension" }},
  {{ name = "units", class = "metric" }},
  {{ name = "customer_id", class = "entity_id" }},
]

[validity]
not_before = "2026-01-01T00:00:00Z"
not_after = "2099-01-01T00:00:00Z"
"#
    );
    let protocol_file = dir.path().join("protocol.toml");
    std::fs::write(&protocol_file, document).unwrap();
    let drafted = as_fresh(&[
        "protocol",
        "create",
        protocol_file.to_str().unwrap(),
        "--format",
        "json",
    ])
    .success()
    .json();
    let id = drafted["id"].as_str().unwrap();
    let hash = drafted["latest"]["content_hash"].as_str().unwrap();
    as_fresh(&["protocol", "propose", id]).success();
    let wrong = as_brand(&["protocol", "approve", id, "--hash", &"0".repeat(64)]).failure(6);
    assert!(
        wrong.stderr.contains("review the current version"),
        "{wrong:#?}"
    );
    let half = as_brand(&["protocol", "approve", id, "--hash", hash]).success();
    assert!(half.stdout.contains("proposed"), "{half:#?}");
    let active = as_fresh(&["protocol", "approve", id, "--hash", hash]).success();
    assert!(active.stdout.contains("active"), "{active:#?}");
    let shown = as_brand(&["protocol", "show", id]).success();
    assert!(shown.stdout.contains(hash), "{shown:#?}");

    // A governed query: the east (3 customers) is suppressed.
    let sql = "SELECT region, SUM(units) AS units FROM sales GROUP BY region ORDER BY region";
    let table = as_brand(&["query", "--purpose", "assortment", sql]).success();
    assert!(table.stdout.contains("north"), "{table:#?}");
    assert!(!table.stdout.contains("east"), "{table:#?}");
    let csv = as_brand(&["query", "--purpose", "assortment", "--result", "csv", sql]).success();
    assert_eq!(csv.stdout, "region,units\nnorth,120\n");

    // A leak is refused with the rule and the expression, and exit code 4.
    let refused = as_brand(&[
        "query",
        "--purpose",
        "assortment",
        "SELECT customer_id, SUM(units) FROM sales GROUP BY customer_id",
    ])
    .failure(4);
    assert!(refused.stderr.contains("rule: "), "{refused:#?}");
    assert!(refused.stderr.contains("customer_id"), "{refused:#?}");

    // The provider sees both in its log of queries against its data.
    let log = as_fresh(&["query", "log", "--against-our-data", "--format", "json"])
        .success()
        .json();
    let outcomes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "answered").count(),
        2,
        "{log}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "refused").count(),
        1,
        "{log}"
    );
    let table = as_fresh(&["query", "log", "--against-our-data"]).success();
    assert!(table.stdout.contains("refused"), "{table:#?}");
}

#[test]
fn coalition_pledge_proposal_and_vote_commands_found_decide_and_act() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();
    client
        .login(&server, &server.owner_token, "default")
        .success();
    for name in ["Maskworks", "Filtra", "Outsider"] {
        client.run(&["org", "create", name]).success();
    }
    let maskworks = offline_token(&server, "Maskworks", "owner");
    let filtra = offline_token(&server, "Filtra", "owner");
    let outsider = offline_token(&server, "Outsider", "owner");
    let as_org = |token: &str, args: &[&str]| {
        client.run_with(
            args,
            &[("AGORA_SERVER", &server.url), ("AGORA_TOKEN", token)],
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let charter = dir.path().join("charter.json");
    std::fs::write(
        &charter,
        r#"{"votes_changeable": false, "early_close": true, "quorum_bps": 5000}"#,
    )
    .unwrap();
    // An unsafe charter is refused as a usage error naming the field.
    let unsafe_charter = dir.path().join("unsafe.json");
    std::fs::write(
        &unsafe_charter,
        r#"{"amendment_support_threshold_bps": 4000}"#,
    )
    .unwrap();
    let refused = as_org(
        &maskworks,
        &[
            "coalition",
            "found",
            "Unsafe",
            "--purpose",
            "x",
            "--charter",
            unsafe_charter.to_str().unwrap(),
        ],
    )
    .failure(2);
    assert!(
        refused.stderr.contains("amendment_support_threshold_bps"),
        "{refused:#?}"
    );

    let founded = as_org(
        &maskworks,
        &[
            "coalition",
            "found",
            "Mask Makers",
            "--purpose",
            "A million masks a week",
            "--charter",
            charter.to_str().unwrap(),
            "--query-purpose",
            "capacity-planning",
            "--goal",
            "Masks a week|1000000|masks/week|2099-01-01",
        ],
    )
    .success();
    assert!(founded.stdout.contains("Mask Makers"), "{founded:#?}");
    assert!(founded.stdout.contains("Masks a week"), "{founded:#?}");
    let shown = as_org(
        &maskworks,
        &["coalition", "show", "Mask Makers", "--format", "json"],
    )
    .success()
    .json();
    let goal = shown["goals"][0]["id"].as_str().unwrap().to_owned();

    // Admit Filtra by a proposal the founder alone decides.
    let filtra_id = client
        .run(&["org", "list", "--format", "json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|org| org["name"] == "Filtra")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let action = format!(r#"{{"type": "admit_member", "org_id": "{filtra_id}"}}"#);
    let proposal = as_org(
        &maskworks,
        &[
            "proposal",
            "create",
            "Mask Makers",
            "--title",
            "Admit Filtra",
            "--topic",
            "membership",
            "--action",
            &action,
            "--format",
            "json",
        ],
    )
    .success()
    .json();
    let proposal_id = proposal["id"].as_str().unwrap().to_owned();
    // Filtra is not a member yet: its vote is refused by the authorizer (exit 4).
    let refused = as_org(&filtra, &["vote", &proposal_id, "yes"]).failure(4);
    assert!(
        refused
            .stderr
            .contains("coalition-decisions-stay-with-the-members"),
        "{refused:#?}"
    );
    let voted = as_org(
        &maskworks,
        &["vote", &proposal_id, "yes", "--reason", "filters"],
    )
    .success();
    assert!(voted.stdout.contains("status: passed"), "{voted:#?}");
    let executed = as_org(&maskworks, &["proposal", "execute", &proposal_id]).success();
    assert!(executed.stdout.contains("admitted Filtra"), "{executed:#?}");
    // The vote after the close is refused as a conflict (exit 6).
    let late = as_org(&maskworks, &["vote", &proposal_id, "no"]).failure(6);
    assert!(late.stderr.contains("closed"), "{late:#?}");

    // Pledges: a conditional one waits until another member pledges.
    as_org(
        &filtra,
        &[
            "pledge",
            "create",
            "Mask Makers",
            "--goal",
            &goal,
            "--quantity",
            "5000",
            "--due",
            "2098-01-01",
            "--if-others",
            "1",
        ],
    )
    .success();
    let listed = as_org(&filtra, &["pledge", "list", "Mask Makers"]).success();
    assert!(
        listed.stdout.contains("waiting on its condition"),
        "{listed:#?}"
    );
    let pledged = as_org(
        &maskworks,
        &[
            "pledge",
            "create",
            "Mask Makers",
            "--goal",
            &goal,
            "--quantity",
            "20000",
            "--due",
            "2098-01-01",
            "--format",
            "json",
        ],
    )
    .success()
    .json();
    let pledge_id = pledged["id"].as_str().unwrap().to_owned();
    as_org(
        &maskworks,
        &[
            "pledge",
            "fulfil",
            "Mask Makers",
            &pledge_id,
            "--quantity",
            "7000",
        ],
    )
    .success();
    let shown = as_org(
        &outsider,
        &["coalition", "show", "Mask Makers", "--format", "json"],
    )
    .success()
    .json();
    assert_eq!(shown["goals"][0]["pledged"], 25_000, "{shown}");
    assert_eq!(shown["goals"][0]["fulfilled"], 7_000, "{shown}");
    let table = as_org(&outsider, &["coalition", "show", "Mask Makers"]).success();
    assert!(table.stdout.contains("Admit Filtra"), "{table:#?}");
    assert!(table.stdout.contains("executed"), "{table:#?}");

    // Delegation to oneself is refused; the register is Popolo JSON.
    let own = as_org(
        &filtra,
        &["coalition", "delegate", "Mask Makers", "--to", "Filtra"],
    )
    .failure(2);
    assert!(own.stderr.contains("itself"), "{own:#?}");
    let register = as_org(&outsider, &["coalition", "register", "Mask Makers"])
        .success()
        .json();
    assert_eq!(register["vote_events"][0]["result"], "pass", "{register}");
    assert_eq!(register["motions"][0]["motion"]["text"], "Admit Filtra");
}

#[test]
fn miniapp_commands_register_review_upload_and_roll_back() {
    let server = TestServer::start(Backend::Sqlite);
    let client = Client::new();
    client
        .login(&server, &server.owner_token, "default")
        .success();
    client.run(&["org", "create", "Vila Clinic"]).success();
    let developer = offline_token(&server, "Vila Clinic", "developer");
    let as_partner = |args: &[&str]| {
        client.run_with(
            args,
            &[("AGORA_SERVER", &server.url), ("AGORA_TOKEN", &developer)],
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = |version: &str| {
        let path = dir.path().join(format!("manifest-{version}.json"));
        std::fs::write(
            &path,
            format!(
                r#"{{"slug": "clinic", "name": "Clinic {version}", "category": "health",
                    "entry": {{"url": "https://clinic.example/app"}},
                    "scopes": [{{"scope": "profile", "reason": "To greet you."}}],
                    "redirect_uris": ["https://clinic.example/callback"]}}"#
            ),
        )
        .unwrap();
        path
    };
    let first = manifest("v1");
    let registered = as_partner(&["miniapp", "register", first.to_str().unwrap()]).success();
    assert!(
        registered.stdout.contains("client_secret") && registered.stdout.contains("pending"),
        "{registered:#?}"
    );
    let app = registered
        .stdout
        .split("client_id ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // A file that is neither a bundle nor a manifest is refused before anything is sent.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "x").unwrap();
    let refused = as_partner(&["miniapp", "register", text.to_str().unwrap()]);
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains(".zip"), "{refused:#?}");
    // The partner cannot review; the operator can, and a rejection needs a reason.
    let denied = as_partner(&["miniapp", "review", &app, "1", "approve"]);
    assert_ne!(denied.code, Some(0));
    let no_reason = client.run(&["miniapp", "review", &app, "1", "reject"]);
    assert!(no_reason.stderr.contains("reason"), "{no_reason:#?}");
    client
        .run(&["miniapp", "review", &app, "1", "approve"])
        .success();
    let shown = as_partner(&["miniapp", "show", &app, "--format", "json"]).success();
    assert_eq!(shown.json()["app"]["live_version"], 1);
    let second = manifest("v2");
    let uploaded = as_partner(&["miniapp", "upload", &app, second.to_str().unwrap()]).success();
    assert!(uploaded.stdout.contains("pending"), "{uploaded:#?}");
    client
        .run(&["miniapp", "review", &app, "2", "approve"])
        .success();
    as_partner(&["miniapp", "rollback", &app, "1"]).success();
    let listed = as_partner(&["miniapp", "list", "--format", "json"]).success();
    assert_eq!(listed.json()[0]["app"]["live_version"], 1);
    assert_eq!(listed.json()[0]["versions"].as_array().unwrap().len(), 2);
}
