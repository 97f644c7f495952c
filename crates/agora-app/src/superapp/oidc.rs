//! The instance as an OpenID Connect provider: the authorization code flow with PKCE (S256
//! only), ID tokens signed with EdDSA, a userinfo endpoint, pairwise subject ids.
//!
//! Errors follow RFC 6749: a request whose client or redirect URI cannot be trusted is answered
//! on the page and never redirected (`OidcError::NoRedirect`); others go back to the client with
//! `error=` (`OidcError::Redirect`); the token endpoint answers `OidcError::Token` as JSON.

use std::collections::BTreeSet;

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::miniapp::{Manifest, Scope, format_scopes, parse_scopes};
use agora_domain::{Error, GrantId, MiniAppId, Result, Timestamp, UserId};
use agora_store::{MiniAppRecord, OauthCodeRecord, OauthTokenRecord};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::customer::consent_for;
use super::{ConsentScope, jws, pairwise_subject, stored_scopes};
use crate::secrets::{hashes_equal, new_secret, sha256};
use crate::{App, Call};

/// The query of `GET /oauth/authorize` (and the hidden fields of its consent form).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// What the authorization endpoint does next.
#[derive(Debug, Clone)]
pub enum AuthorizeStep {
    /// Send the customer back to the client with a code.
    Redirect(String),
    /// Ask the customer: the mini-app, its seller, and each scope with its reason.
    Consent {
        app_name: String,
        seller_name: String,
        scopes: Vec<ConsentScope>,
    },
}

/// A refusal by the OpenID Connect endpoints, shaped as RFC 6749 wants it answered.
#[derive(Debug, Clone)]
pub enum OidcError {
    /// The client or its redirect URI is not trusted: say so on the page, never redirect.
    NoRedirect(String),
    /// Go back to the client with `error` and `error_description`.
    Redirect(String),
    /// The token endpoint's JSON error (`invalid_grant`, `invalid_client`, …) with its status.
    Token {
        status: u16,
        error: &'static str,
        description: String,
    },
    /// Anything else (the store is down, …).
    Other(Error),
}

impl From<Error> for OidcError {
    fn from(error: Error) -> Self {
        OidcError::Other(error)
    }
}

/// The form of `POST /oauth/token`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    /// For `grant_type=refresh_token`.
    pub refresh_token: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    /// Exchanged once at this endpoint (`grant_type=refresh_token`) for new tokens and a new
    /// refresh token; valid for `superapp.refresh_token_ttl_seconds` while the grant stands.
    pub refresh_token: String,
    pub id_token: String,
    pub scope: String,
}

/// The discovery document's fields (`/.well-known/openid-configuration`).
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
}

fn invalid_grant(description: impl Into<String>) -> OidcError {
    OidcError::Token {
        status: 400,
        error: "invalid_grant",
        description: description.into(),
    }
}

fn invalid_request(description: impl Into<String>) -> OidcError {
    OidcError::Token {
        status: 400,
        error: "invalid_request",
        description: description.into(),
    }
}

/// Adds query parameters to a redirect URI (which may carry a query already).
fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    for (index, (name, value)) in params.iter().enumerate() {
        let separator = if index == 0 && !uri.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(separator);
        out.push_str(name);
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A validated authorization request.
struct Checked {
    app: MiniAppRecord,
    manifest: Manifest,
    redirect_uri: String,
    scopes: BTreeSet<Scope>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
}

impl App {
    pub fn oidc_discovery(&self) -> Discovery {
        let issuer = self.config().public_url.clone();
        Discovery {
            authorization_endpoint: format!("{issuer}/oauth/authorize"),
            token_endpoint: format!("{issuer}/oauth/token"),
            userinfo_endpoint: format!("{issuer}/oauth/userinfo"),
            jwks_uri: format!("{issuer}/oauth/jwks.json"),
            issuer,
            response_types_supported: vec!["code"],
            grant_types_supported: vec!["authorization_code", "refresh_token"],
            subject_types_supported: vec!["pairwise"],
            id_token_signing_alg_values_supported: vec!["EdDSA"],
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
            ],
            code_challenge_methods_supported: vec!["S256"],
            scopes_supported: Scope::ALL.map(Scope::as_str).to_vec(),
            claims_supported: vec!["sub", "iss", "aud", "exp", "iat", "nonce", "name", "email"],
        }
    }

    /// The JWKS: the instance's Ed25519 public key as an OKP JWK.
    pub fn oidc_jwks(&self) -> serde_json::Value {
        let public = self.key().public_bytes();
        serde_json::json!({ "keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(public),
            "kid": jws::jwk_thumbprint_kid(&public),
            "use": "sig",
            "alg": "EdDSA",
        }]})
    }

    /// Checks an authorization request in RFC 6749's order: the client and redirect URI first
    /// (never redirect to an untrusted URI), then the rest (answered at the redirect URI).
    async fn check_authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> std::result::Result<Checked, OidcError> {
        let client_id = request
            .client_id
            .as_deref()
            .ok_or_else(|| OidcError::NoRedirect("the request names no client_id".into()))?;
        let app_id: MiniAppId = client_id.parse().map_err(|_| {
            OidcError::NoRedirect(format!("`{client_id}` is not a client of this instance"))
        })?;
        let app = self.store().miniapp(app_id).await?.ok_or_else(|| {
            OidcError::NoRedirect(format!("`{client_id}` is not a client of this instance"))
        })?;
        let manifest = self.live_manifest(&app).await?.ok_or_else(|| {
            OidcError::NoRedirect(format!("{} has no approved version yet", app.name))
        })?;
        let redirect_uri = request
            .redirect_uri
            .clone()
            .ok_or_else(|| OidcError::NoRedirect("the request names no redirect_uri".into()))?;
        if !manifest.redirect_uris.contains(&redirect_uri) {
            return Err(OidcError::NoRedirect(format!(
                "`{}` is not a redirect URI {} registered",
                redirect_uri.chars().take(200).collect::<String>(),
                manifest.name
            )));
        }
        let back = |error: &str, description: &str| {
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(state) = request.state.as_deref() {
                params.push(("state", state));
            }
            OidcError::Redirect(with_params(&redirect_uri, &params))
        };
        if request.response_type.as_deref() != Some("code") {
            return Err(back(
                "unsupported_response_type",
                "only the authorization code flow (response_type=code) is supported",
            ));
        }
        let scopes = parse_scopes(request.scope.as_deref().unwrap_or_default())
            .map_err(|_| back("invalid_scope", "a scope is unknown"))?;
        if !scopes.contains(&Scope::Openid) {
            return Err(back("invalid_scope", "the scope must include openid"));
        }
        let declared = manifest.declared_scopes();
        if !scopes.is_subset(&declared) {
            return Err(back(
                "invalid_scope",
                "a scope is not declared in the mini-app's manifest",
            ));
        }
        let code_challenge = match (
            request.code_challenge.as_deref(),
            request.code_challenge_method.as_deref(),
        ) {
            (Some(challenge), Some("S256"))
                if challenge.len() == 43
                    && challenge
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                challenge.to_owned()
            }
            _ => {
                return Err(back(
                    "invalid_request",
                    "PKCE is required: code_challenge (43 characters) with code_challenge_method=S256",
                ));
            }
        };
        if request
            .nonce
            .as_deref()
            .is_some_and(|nonce| nonce.len() > 255)
            || request
                .state
                .as_deref()
                .is_some_and(|state| state.len() > 1000)
        {
            return Err(back("invalid_request", "nonce or state is too long"));
        }
        Ok(Checked {
            app,
            manifest,
            redirect_uri,
            scopes,
            state: request.state.clone(),
            nonce: request.nonce.clone(),
            code_challenge,
        })
    }

    /// `GET /oauth/authorize` for a signed-in customer: a code at once when every scope was
    /// granted already, otherwise the consent to ask for.
    pub async fn authorize_oidc(
        &self,
        call: &Call<'_>,
        request: &AuthorizeRequest,
    ) -> std::result::Result<AuthorizeStep, OidcError> {
        let checked = self.check_authorize(request).await?;
        let customer = self.customer_of_call(call)?;
        self.authorize(
            call,
            Action::MiniAppUse,
            &Resource::Customer(customer),
            &Context::default(),
        )
        .await?;
        // Any grant lets the app recognise the customer: `openid` comes with it.
        let granted = self
            .store()
            .active_grant(customer, checked.app.id)
            .await?
            .map(|grant| {
                let mut scopes = stored_scopes(&grant.scopes);
                scopes.insert(Scope::Openid);
                scopes
            })
            .unwrap_or_default();
        if checked.scopes.is_subset(&granted) {
            return self.issue_code(customer, &checked).await;
        }
        let seller_name = self
            .store()
            .org(checked.app.org_id)
            .await?
            .map(|org| org.name.to_string())
            .unwrap_or_default();
        Ok(AuthorizeStep::Consent {
            app_name: checked.manifest.name.clone(),
            seller_name,
            scopes: consent_for(&checked.manifest, &checked.scopes, &granted),
        })
    }

    /// The customer answered the consent form: allowing grants the scopes and issues a code;
    /// denying goes back to the client with `access_denied`.
    pub async fn decide_oidc_consent(
        &self,
        call: &Call<'_>,
        request: &AuthorizeRequest,
        allow: bool,
    ) -> std::result::Result<AuthorizeStep, OidcError> {
        let checked = self.check_authorize(request).await?;
        let customer = self.customer_of_call(call)?;
        let resource = Resource::Customer(customer);
        self.authorize(call, Action::MiniAppUse, &resource, &Context::default())
            .await?;
        if !allow {
            let mut params = vec![
                ("error", "access_denied"),
                ("error_description", "the customer declined"),
            ];
            if let Some(state) = checked.state.as_deref() {
                params.push(("state", state));
            }
            return Ok(AuthorizeStep::Redirect(with_params(
                &checked.redirect_uri,
                &params,
            )));
        }
        self.grant_now(call, &resource, customer, &checked.app, &checked.scopes)
            .await?;
        self.issue_code(customer, &checked).await
    }

    fn customer_of_call(&self, call: &Call<'_>) -> Result<UserId> {
        call.actor.user_id.ok_or_else(|| {
            Error::Unauthenticated("sign in as a person to authorize a mini-app".to_owned())
        })
    }

    async fn issue_code(
        &self,
        customer: UserId,
        checked: &Checked,
    ) -> std::result::Result<AuthorizeStep, OidcError> {
        let grant = self
            .store()
            .active_grant(customer, checked.app.id)
            .await?
            .ok_or_else(|| OidcError::Other(Error::Internal("the grant vanished".into())))?;
        let code = new_secret();
        let now = Timestamp::now();
        let record = OauthCodeRecord {
            code_hash: sha256(&code),
            app_id: checked.app.id,
            user_id: customer,
            grant_id: grant.id,
            redirect_uri: checked.redirect_uri.clone(),
            scopes: format_scopes(&checked.scopes),
            nonce: checked.nonce.clone(),
            code_challenge: checked.code_challenge.clone(),
            expires_at: Timestamp::from_micros(
                now.as_micros() + self.superapp().code_ttl_seconds * 1_000_000,
            ),
            used_at: None,
        };
        let subject = pairwise_subject(self.key(), checked.app.id, customer);
        let mut tx = self.store().write().await?;
        tx.insert_oauth_code(&record).await?;
        tx.remember_subject(checked.app.id, &subject, customer)
            .await?;
        tx.commit().await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = checked.state.as_deref() {
            params.push(("state", state));
        }
        Ok(AuthorizeStep::Redirect(with_params(
            &checked.redirect_uri,
            &params,
        )))
    }

    /// `POST /oauth/token`: exchanges a code for an access token and an ID token, once.
    /// `basic` is the client's HTTP Basic credentials, if it sent any.
    pub async fn oidc_token(
        &self,
        request: &TokenRequest,
        basic: Option<(String, String)>,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let (client_id, secret) = match (basic, &request.client_id, &request.client_secret) {
            (Some((id, secret)), _, None) => (id, secret),
            (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => {
                return Err(OidcError::Token {
                    status: 401,
                    error: "invalid_client",
                    description: "authenticate the client once: HTTP Basic or client_id and client_secret in the form".into(),
                });
            }
        };
        let app = match client_id.parse::<MiniAppId>() {
            Ok(app_id) => self.store().miniapp(app_id).await?,
            Err(_) => None,
        };
        let Some(app) = app.filter(|app| hashes_equal(&app.client_secret_hash, &sha256(&secret)))
        else {
            return Err(OidcError::Token {
                status: 401,
                error: "invalid_client",
                description: "unknown client or wrong client secret".into(),
            });
        };
        match request.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(&app, request).await,
            Some("refresh_token") => self.refresh_tokens(&app, request).await,
            _ => Err(OidcError::Token {
                status: 400,
                error: "unsupported_grant_type",
                description: "grant_type is authorization_code or refresh_token".into(),
            }),
        }
    }

    /// `grant_type=authorization_code`: spends the code once, checks PKCE and the redirect URI.
    async fn exchange_code(
        &self,
        app: &MiniAppRecord,
        request: &TokenRequest,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let code = request
            .code
            .as_deref()
            .ok_or_else(|| invalid_request("code is missing"))?;
        let verifier = request
            .code_verifier
            .as_deref()
            .ok_or_else(|| invalid_request("code_verifier is missing (PKCE is required)"))?;
        let code_hash = sha256(code);
        let now = Timestamp::now();
        let mut tx = self.store().write().await?;
        let record = tx
            .oauth_code(&code_hash)
            .await?
            .filter(|record| record.app_id == app.id)
            .ok_or_else(|| invalid_grant("the code is unknown or was issued to another client"))?;
        if record.used_at.is_some() || !tx.spend_oauth_code(&code_hash, now).await? {
            // A replayed code may be stolen: what it bought stops working (RFC 6749 §4.1.2).
            tx.revoke_tokens_of_code(&code_hash, now).await?;
            tx.commit().await?;
            return Err(invalid_grant(
                "the code was used already; the tokens issued for it are revoked",
            ));
        }
        // The code is spent whatever happens next: a failed exchange cannot be retried with it.
        let refusal = if now >= record.expires_at {
            Some("the code expired")
        } else if request.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
            Some("redirect_uri differs from the authorization request's")
        } else if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
            != record.code_challenge
        {
            Some("code_verifier does not match the code_challenge")
        } else {
            None
        };
        if let Some(refusal) = refusal {
            tx.commit().await?;
            return Err(invalid_grant(refusal));
        }
        let Some(scopes) = self
            .scopes_still_granted(record.grant_id, &record.scopes)
            .await?
        else {
            tx.commit().await?;
            return Err(invalid_grant("the customer revoked the grant"));
        };
        self.issue_tokens(
            tx,
            app,
            record.user_id,
            record.grant_id,
            &code_hash,
            &scopes,
            record.nonce,
            now,
        )
        .await
    }

    /// `grant_type=refresh_token`: spends the refresh token (it rotates) and issues new tokens
    /// for the grant's scopes now. A refresh token presented twice was copied: every token of
    /// that sign-in is revoked (OAuth 2.0 Security BCP, refresh token rotation).
    async fn refresh_tokens(
        &self,
        app: &MiniAppRecord,
        request: &TokenRequest,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let presented = request
            .refresh_token
            .as_deref()
            .ok_or_else(|| invalid_request("refresh_token is missing"))?;
        let token_hash = sha256(presented);
        let now = Timestamp::now();
        let record = self
            .store()
            .oauth_token(&token_hash)
            .await?
            .filter(|record| record.app_id == app.id && record.kind == "refresh")
            .ok_or_else(|| {
                invalid_grant("the refresh token is unknown or was issued to another client")
            })?;
        let mut tx = self.store().write().await?;
        if !tx.spend_refresh_token(&token_hash, now).await? {
            tx.revoke_tokens_of_code(&record.code_hash, now).await?;
            tx.commit().await?;
            return Err(invalid_grant(
                "the refresh token was used already or revoked; every token of this sign-in is revoked, sign the customer in again",
            ));
        }
        if now >= record.expires_at {
            tx.commit().await?;
            return Err(invalid_grant(
                "the refresh token expired; sign the customer in again",
            ));
        }
        // Never more than the grant holds now: a narrowed grant narrows the refreshed tokens.
        let Some(scopes) = self
            .scopes_still_granted(record.grant_id, &record.scopes)
            .await?
        else {
            tx.commit().await?;
            return Err(invalid_grant("the customer revoked the grant"));
        };
        self.issue_tokens(
            tx,
            app,
            record.user_id,
            record.grant_id,
            &record.code_hash,
            &scopes,
            None,
            now,
        )
        .await
    }

    /// The scopes of `asked` that the grant `grant_id` still holds; `None` once it was revoked.
    async fn scopes_still_granted(
        &self,
        grant_id: GrantId,
        asked: &str,
    ) -> Result<Option<BTreeSet<Scope>>> {
        let grant = self
            .store()
            .grant(grant_id)
            .await?
            .filter(|grant| grant.revoked_at.is_none());
        Ok(grant.map(|grant| {
            stored_scopes(asked)
                .intersection(&stored_scopes(&grant.scopes))
                .copied()
                .collect()
        }))
    }

    /// Stores a new access token and refresh token of the sign-in `code_hash`, commits, and
    /// signs the ID token.
    #[allow(clippy::too_many_arguments)]
    async fn issue_tokens(
        &self,
        mut tx: agora_store::WriteTx,
        app: &MiniAppRecord,
        user_id: UserId,
        grant_id: GrantId,
        code_hash: &[u8],
        scopes: &BTreeSet<Scope>,
        nonce: Option<String>,
        now: Timestamp,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let options = self.superapp();
        let (ttl, refresh_ttl) = (
            options.access_token_ttl_seconds,
            options.refresh_token_ttl_seconds,
        );
        let access_token = new_secret();
        let refresh_token = new_secret();
        for (token, kind, lifetime) in [
            (&access_token, "access", ttl),
            (&refresh_token, "refresh", refresh_ttl),
        ] {
            tx.insert_oauth_token(&OauthTokenRecord {
                token_hash: sha256(token),
                app_id: app.id,
                user_id,
                grant_id,
                code_hash: code_hash.to_vec(),
                scopes: format_scopes(scopes),
                expires_at: Timestamp::from_micros(now.as_micros() + lifetime * 1_000_000),
                revoked_at: None,
                kind: kind.to_owned(),
            })
            .await?;
        }
        tx.commit().await?;
        let iat = now.as_micros() / 1_000_000;
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), self.config().public_url.clone().into());
        claims.insert(
            "sub".into(),
            pairwise_subject(self.key(), app.id, user_id).into(),
        );
        claims.insert("aud".into(), app.id.to_string().into());
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), (iat + ttl).into());
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        self.granted_claims(user_id, scopes, &mut claims).await?;
        let id_token = jws::sign_jws(self.key(), "JWT", &serde_json::Value::Object(claims));
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token,
            id_token,
            scope: format_scopes(scopes),
        })
    }

    /// `GET /oauth/userinfo`: the claims an access token may read, while its grant stands.
    pub async fn oidc_userinfo(&self, access_token: &str) -> Result<serde_json::Value> {
        let refused = || {
            Error::Unauthenticated(
                "the access token is unknown, expired or revoked (a revoked grant revokes its tokens)"
                    .to_owned(),
            )
        };
        let token = self
            .store()
            .oauth_token(&sha256(access_token))
            .await?
            .filter(|token| {
                token.kind == "access"
                    && token.revoked_at.is_none()
                    && Timestamp::now() < token.expires_at
            })
            .ok_or_else(refused)?;
        let scopes = self
            .scopes_still_granted(token.grant_id, &token.scopes)
            .await?
            .ok_or_else(refused)?;
        let mut claims = serde_json::Map::new();
        claims.insert(
            "sub".into(),
            pairwise_subject(self.key(), token.app_id, token.user_id).into(),
        );
        self.granted_claims(token.user_id, &scopes, &mut claims)
            .await?;
        Ok(serde_json::Value::Object(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_parameters_are_encoded_and_appended() {
        assert_eq!(
            with_params("https://a.example/cb", &[("code", "x y"), ("state", "s&t")]),
            "https://a.example/cb?code=x%20y&state=s%26t"
        );
        assert_eq!(
            with_params("https://a.example/cb?app=1", &[("code", "c")]),
            "https://a.example/cb?app=1&code=c"
        );
    }
}
