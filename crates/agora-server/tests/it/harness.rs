//! An in-process server on a fresh database, bound to 127.0.0.1:0, with helpers to call it.

use agora_app::agora_policy::Authorizer;
use agora_app::agora_store::{Store, StoreOptions};
use agora_app::{App, AppConfig, InstanceKey};
use agora_server::{ServerConfig, ServerState};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("AGORA_TEST_POSTGRES_URL").is_ok() {
        backends.push(Backend::Postgres);
    } else if std::env::var("CI").is_ok() {
        panic!(
            "CI must set AGORA_TEST_POSTGRES_URL so that every storage test runs on PostgreSQL too"
        );
    }
    backends
}

pub struct TestApi {
    pub url: String,
    pub app: App,
    /// An operator owner token.
    pub operator_token: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    database: Option<(String, String)>,
    server: tokio::task::JoinHandle<()>,
}

impl TestApi {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, AppConfig::default(), ServerConfig::default()).await
    }

    pub async fn start_with(
        backend: Backend,
        app_config: AppConfig,
        server_config: ServerConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Datasets go to the test's own folder, never to the working directory.
        let mut app_config = app_config;
        app_config.data.data_dir = dir.path().join("data");
        let (database_url, database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("agora.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin = std::env::var("AGORA_TEST_POSTGRES_URL").unwrap();
                let name = format!(
                    "agora_api_{}",
                    agora_domain::OrgId::new().as_uuid().simple()
                );
                execute(&admin, &format!("CREATE DATABASE {name}")).await;
                let base = admin.rsplit_once('/').unwrap().0;
                (format!("{base}/{name}"), Some((admin, name)))
            }
        };
        // The instance's public URL is where it listens, as `agora serve` makes it: OpenID
        // Connect clients follow the discovery document's endpoints.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        app_config.public_url = url.clone();
        let store = Store::open(&StoreOptions {
            database_url,
            pool_connections_max: 8,
            acquire_timeout_ms: 10_000,
        })
        .await
        .unwrap();
        let app = App::new(
            store,
            Authorizer::builtin().unwrap(),
            app_config,
            InstanceKey::generate(),
        );
        let bootstrap = app
            .bootstrap("Agora Operator", "owner@agora.localhost")
            .await
            .unwrap()
            .unwrap();
        let state = ServerState::new(app.clone(), server_config);
        let server = tokio::spawn(async move {
            agora_server::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            url,
            app,
            operator_token: bootstrap.token,
            client,
            _dir: dir,
            database,
            server,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Creates a partner organisation as the operator; returns its id.
    pub async fn partner(&self, name: &str) -> String {
        let (status, org) = self
            .post(
                "/api/v1/orgs",
                &self.operator_token,
                json!({ "name": name }),
            )
            .await;
        assert_eq!(status, 201, "{org}");
        org["id"].as_str().unwrap().to_owned()
    }

    /// Adds a member with `role` to `org_id` and returns a token acting for them with that role.
    pub async fn member_token(&self, org_id: &str, email: &str, role: &str) -> String {
        let (status, added) = self
            .post(
                &format!("/api/v1/orgs/{org_id}/members"),
                &self.operator_token,
                json!({ "email": email, "role": role }),
            )
            .await;
        assert_eq!(status, 201, "{added}");
        let user_id: agora_domain::UserId = added["member"]["user_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let org_id: agora_domain::OrgId = org_id.parse().unwrap();
        let role: agora_domain::Role = role.parse().unwrap();
        let actor = agora_domain::Actor {
            user_id: Some(user_id),
            acting: Some(agora_domain::actor::Acting {
                org_id,
                role,
                is_operator: false,
            }),
            credential: agora_domain::Credential::System,
        };
        let call = agora_app::Call::new(&actor, agora_domain::RequestId::new());
        let created = self
            .app
            .create_token(
                &call,
                org_id,
                agora_app::CreateToken {
                    name: format!("{email} test"),
                    role,
                    expires_in_days: None,
                },
            )
            .await
            .unwrap();
        created.secret
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.server.abort();
        if let Some((admin, name)) = self.database.take() {
            // Dropping needs a runtime of its own: this may run while the test's runtime winds down.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(execute(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ));
            })
            .join()
            .unwrap();
        }
    }
}

pub async fn execute(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut connection).await.unwrap();
}
