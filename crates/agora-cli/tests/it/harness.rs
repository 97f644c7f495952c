//! Starts the real `agora` binary on a fresh data folder (and a fresh PostgreSQL database when
//! `AGORA_TEST_POSTGRES_URL` is set), and reads what it prints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run a test on: SQLite always, PostgreSQL when CI provides one.
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

pub fn agora() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    command.env_remove("AGORA_CONFIG").env("RUST_LOG", "warn");
    command
}

/// A fresh PostgreSQL database for one test, dropped when the value is.
pub struct PostgresDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    pub fn create() -> Self {
        let admin_url =
            std::env::var("AGORA_TEST_POSTGRES_URL").expect("AGORA_TEST_POSTGRES_URL is set");
        let name = format!("agora_test_{}", uuid_like());
        run_sql(&admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .expect("the URL names a database");
        Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        run_sql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}

/// Runs one statement with sqlx on a throwaway runtime (tests are synchronous here).
pub fn run_sql(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        sqlx::query(sql)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// A running `agora serve`, killed when dropped.
pub struct TestServer {
    pub url: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// The bootstrap owner token of the operator organisation.
    pub owner_token: String,
    pub signin_link: String,
    extra_args: Vec<String>,
    child: Child,
    _dir: tempfile::TempDir,
    _database: Option<PostgresDatabase>,
}

impl TestServer {
    pub fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[])
    }

    pub fn start_with(backend: Backend, extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let database = (backend == Backend::Postgres).then(PostgresDatabase::create);
        let database_url = database.as_ref().map(|database| database.url.clone());
        let extra_args: Vec<String> = extra_args.iter().map(|arg| arg.to_string()).collect();
        let (child, url, lines) = spawn_serve(&data_dir, database_url.as_deref(), &extra_args);
        let find = |label: &str| {
            lines
                .iter()
                .find_map(|line| {
                    line.trim()
                        .strip_prefix(label)
                        .map(|rest| rest.trim().to_owned())
                })
                .unwrap_or_else(|| panic!("no `{label}` line in {lines:?}"))
        };
        let owner_token = find("Owner API token (shown only now):");
        let signin_link = find("Sign in (one-time link, choose a password):");
        Self {
            url,
            data_dir,
            database_url,
            owner_token,
            signin_link,
            extra_args,
            child,
            _dir: dir,
            _database: database,
        }
    }

    /// Kills the server with SIGKILL, as a power cut or the OOM killer would, and starts it again
    /// on the same storage.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url, _) = spawn_serve(
            &self.data_dir,
            self.database_url.as_deref(),
            &self.extra_args,
        );
        self.child = child;
        self.url = url;
    }

    /// Arguments that point an offline command at this server's storage.
    pub fn storage_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.data_dir.display().to_string()];
        if let Some(url) = &self.database_url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args
    }

    /// Stops the server with SIGTERM and waits for it, returning whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                if !status.success() {
                    eprintln!("agora serve exited with {status}");
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("agora serve did not stop within 30 s of SIGTERM");
        let _ = self.child.kill();
        false
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `agora serve` and waits until it prints its address; returns the process, the URL
/// and the lines printed until then.
fn spawn_serve(
    data_dir: &Path,
    database_url: Option<&str>,
    extra_args: &[String],
) -> (Child, String, Vec<String>) {
    let mut command = agora();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agora starts");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let url = loop {
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("agora serve printed no address; got {lines:?}"));
        lines.push(line.clone());
        if let Some(rest) = line.strip_prefix("Agora is listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || while receiver.recv().is_ok() {});
    (child, url, lines)
}

/// A blocking HTTP client for tests.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
