//! Speaking to the server's JSON API: bearer authentication, problem documents turned into
//! errors with the exit code scripts rely on, and cursor pagination.

use std::ops::ControlFlow;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::profile::Token;
use crate::{Failure, exit};

/// How long to wait for a connection before calling the server unreachable.
const CONNECT_TIMEOUT_SECONDS: u64 = 10;
/// How long to wait for the next bytes of an answer; exports stream, so there is no total limit.
const READ_TIMEOUT_SECONDS: u64 = 120;
/// How many pages a listing follows before giving up, in case a server keeps handing out cursors.
const PAGE_COUNT_MAX: usize = 100_000;

/// A page of a listing, as the API sends it.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// An RFC 9457 problem document, as the server sends it for every error.
#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    pub title: Option<String>,
    pub detail: Option<String>,
    pub rule: Option<String>,
    pub expression: Option<String>,
    pub field: Option<String>,
    pub limit: Option<String>,
    pub request_id: Option<String>,
}

impl Problem {
    /// The detail, then whichever of the rule, field, limit and request id are present.
    pub fn message(&self, status: reqwest::StatusCode) -> String {
        let mut message = match (&self.detail, &self.title) {
            (Some(detail), _) if !detail.is_empty() => detail.clone(),
            (_, Some(title)) => title.clone(),
            _ => format!("the server answered {status}"),
        };
        for (label, value) in [
            ("rule", &self.rule),
            ("at", &self.expression),
            ("field", &self.field),
            ("limit", &self.limit),
            ("request id", &self.request_id),
        ] {
            if let Some(value) = value {
                message.push_str(&format!(" ({label}: {value})"));
            }
        }
        message
    }
}

/// The exit code for an HTTP status.
pub fn code_for_status(status: reqwest::StatusCode) -> u8 {
    match status.as_u16() {
        400 | 413 | 415 => exit::USAGE,
        401 => exit::UNAUTHENTICATED,
        403 => exit::FORBIDDEN,
        404 => exit::NOT_FOUND,
        409 | 422 => exit::CONFLICT,
        429 | 500..=599 => exit::UNAVAILABLE,
        _ => 1,
    }
}

/// A connection to one server with one token.
#[derive(Debug)]
pub struct Api {
    server: String,
    token: Token,
    http: reqwest::Client,
    /// Whether a refused token is answered with advice to sign in again (not while signing in).
    login_hint: bool,
}

impl Api {
    /// `server` is a normalized base URL (see `profile::normalize_server`).
    pub fn new(server: String, token: Token) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("agora-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECONDS))
            .read_timeout(Duration::from_secs(READ_TIMEOUT_SECONDS))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| anyhow::Error::new(error).context("cannot set up the HTTP client"))?;
        Ok(Self {
            server,
            token,
            http,
            login_hint: true,
        })
    }

    /// For a token not from a profile (and `agora login` itself), where "sign in again" is no advice.
    pub fn without_login_hint(self) -> Self {
        Self {
            login_hint: false,
            ..self
        }
    }

    /// A request to `path` with the token and `Accept: application/json`, to send with [`Api::send`]
    /// when the answer has no body (`204 No Content`).
    pub fn request_to(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Sends a request and returns the response if its status is a success; otherwise the
    /// problem the server described, or why the server could not be reached.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let response = request
            .send()
            .await
            .map_err(|error| self.transport_failure(&error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        // A governed query refused by a protocol rule is a policy refusal, like a 403.
        let mut code = code_for_status(status);
        let message = match serde_json::from_slice::<Problem>(&body) {
            Ok(problem) => {
                if problem.expression.is_some() {
                    code = exit::FORBIDDEN;
                }
                problem.message(status)
            }
            Err(_) => {
                let text = String::from_utf8_lossy(&body);
                let text = text.trim();
                if text.is_empty() {
                    format!("the server answered {status}")
                } else {
                    format!(
                        "the server answered {status}: {}",
                        text.chars().take(300).collect::<String>()
                    )
                }
            }
        };
        let message = if status == reqwest::StatusCode::UNAUTHORIZED && self.login_hint {
            format!(
                "{message}; sign in again with `agora login --server {}`",
                self.server
            )
        } else {
            message
        };
        Err(Failure {
            code,
            error: anyhow::anyhow!(message),
        })
    }

    /// Why a request got no answer at all.
    fn transport_failure(&self, error: &reqwest::Error) -> Failure {
        // reqwest's own message names only the URL; the root cause says what actually happened.
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let message = if error.is_timeout() {
            format!(
                "the server at {} did not answer in time ({cause})",
                self.server
            )
        } else if error.is_connect() {
            format!(
                "the server isn't reachable at {} ({cause}); check that it runs and that the address is right (`agora login --server URL`)",
                self.server
            )
        } else {
            format!("the request to {} failed ({cause})", self.server)
        };
        Failure {
            code: exit::UNAVAILABLE,
            error: anyhow::anyhow!(message),
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Failure> {
        let response = self.send(request).await?;
        let url = response.url().path().to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.transport_failure(&error))?;
        serde_json::from_slice(&body).map_err(|error| unexpected(&url, error))
    }

    /// `GET path?query` as a typed document.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, Failure> {
        self.json(self.request(reqwest::Method::GET, path).query(query))
            .await
    }

    /// `POST path` with an optional JSON body and an `Idempotency-Key` when one is given.
    pub async fn post(
        &self,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, Failure> {
        let mut request = self.request(reqwest::Method::POST, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.json(request).await
    }

    /// `POST path` with a JSON body, asking for `accept`; the answer's bytes as they came.
    pub async fn post_bytes(
        &self,
        path: &str,
        body: &Value,
        accept: &str,
    ) -> Result<Vec<u8>, Failure> {
        let request = self
            .http
            .request(reqwest::Method::POST, format!("{}{path}", self.server))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, accept)
            .json(body);
        let response = self.send(request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.transport_failure(&error))?;
        Ok(bytes.to_vec())
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.json(self.request(reqwest::Method::PATCH, path).json(body))
            .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.json(self.request(reqwest::Method::PUT, path).json(body))
            .await
    }

    /// `DELETE path`: the answer's JSON, or `None` for `204 No Content`.
    pub async fn delete(&self, path: &str) -> Result<Option<Value>, Failure> {
        let response = self
            .send(self.request(reqwest::Method::DELETE, path))
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let url = response.url().path().to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.transport_failure(&error))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|error| unexpected(&url, error))
    }

    /// `POST path` with a file streamed as the body, advancing `progress` by the bytes sent.
    pub async fn upload(
        &self,
        path: &str,
        content_type: &str,
        file: tokio::fs::File,
        progress: indicatif::ProgressBar,
    ) -> Result<Value, Failure> {
        use tokio::io::AsyncReadExt;
        let chunks = futures_util::stream::unfold(file, move |mut file| {
            let progress = progress.clone();
            async move {
                let mut buffer = vec![0; 1 << 16];
                match file.read(&mut buffer).await {
                    Ok(0) => None,
                    Ok(read) => {
                        buffer.truncate(read);
                        progress.inc(read as u64);
                        Some((Ok::<_, std::io::Error>(buffer), file))
                    }
                    Err(error) => Some((Err(error), file)),
                }
            }
        });
        let request = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(reqwest::Body::wrap_stream(chunks));
        self.json(request).await
    }

    /// `GET path` as a response to read as it arrives.
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response, Failure> {
        self.send(
            self.request(reqwest::Method::GET, path)
                .header(reqwest::header::ACCEPT, "application/x-ndjson"),
        )
        .await
    }

    /// The next chunk of a streamed answer; `None` at its end.
    pub async fn chunk(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Option<Vec<u8>>, Failure> {
        let chunk = response
            .chunk()
            .await
            .map_err(|error| self.transport_failure(&error))?;
        Ok(chunk.map(|bytes| bytes.to_vec()))
    }

    /// Reads a listing page by page, following `next_cursor`, until `on_page` breaks or the
    /// last page. `page_size` is sent as `limit` when given (the server's default otherwise).
    pub async fn each_page<T: DeserializeOwned>(
        &self,
        path: &str,
        page_size: Option<u32>,
        mut on_page: impl FnMut(Vec<T>) -> Result<ControlFlow<()>, Failure>,
    ) -> Result<(), Failure> {
        let mut cursor: Option<String> = None;
        let page_size = page_size.map(|size| size.to_string());
        for _ in 0..PAGE_COUNT_MAX {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor));
            }
            if let Some(size) = &page_size {
                query.push(("limit", size));
            }
            let page: Page<T> = self.get(path, &query).await?;
            if on_page(page.items)?.is_break() {
                return Ok(());
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
        Err(anyhow::anyhow!(
            "{path} handed out more than {PAGE_COUNT_MAX} pages; stopped following its cursor"
        )
        .into())
    }

    /// Every item of a listing, or the first `limit` items.
    pub async fn all<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: Option<usize>,
    ) -> Result<Vec<T>, Failure> {
        let mut items = Vec::new();
        self.each_page(path, None, |page: Vec<T>| {
            items.extend(page);
            match limit {
                Some(limit) if items.len() >= limit => {
                    items.truncate(limit);
                    Ok(ControlFlow::Break(()))
                }
                _ => Ok(ControlFlow::Continue(())),
            }
        })
        .await?;
        Ok(items)
    }
}

fn unexpected(path: &str, error: serde_json::Error) -> Failure {
    anyhow::anyhow!("the server's answer to {path} is not what this agora expects ({error}); is the server the same version?").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_its_rule_field_limit_and_request_id() {
        let problem: Problem = serde_json::from_value(serde_json::json!({
            "type": "urn:agora:problem:forbidden",
            "title": "Forbidden",
            "status": 403,
            "detail": "`no-role-escalation` forbids granting role owner with role analyst",
            "rule": "no-role-escalation",
            "request_id": "req_1",
        }))
        .unwrap();
        assert_eq!(
            problem.message(reqwest::StatusCode::FORBIDDEN),
            "`no-role-escalation` forbids granting role owner with role analyst (rule: no-role-escalation) (request id: req_1)"
        );
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        let code = |status: u16| code_for_status(reqwest::StatusCode::from_u16(status).unwrap());
        assert_eq!(
            [400, 401, 403, 404, 409, 422, 429, 500, 503].map(code),
            [
                exit::USAGE,
                exit::UNAUTHENTICATED,
                exit::FORBIDDEN,
                exit::NOT_FOUND,
                exit::CONFLICT,
                exit::CONFLICT,
                exit::UNAVAILABLE,
                exit::UNAVAILABLE,
                exit::UNAVAILABLE
            ]
        );
    }
}
