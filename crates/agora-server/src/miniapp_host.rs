//! Mini-app origins: a request whose `Host` is `{slug}.{miniapp_domain}` is answered here, with
//! the files of that mini-app's live version and Agora's SDK, and never with the portal or the
//! API. The portal's cookies are host-only, so they are never sent here.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ServerState;

const SDK: &str = include_str!("../assets/agora-sdk.js");

/// Serves mini-app origins; passes every other request on to the portal and the API.
pub async fn dispatch(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Some(slug) = state.app.miniapp_slug_of_host(&host) else {
        return next.run(request).await;
    };
    let slug = slug.to_owned();
    serve(&state, &slug, request).await
}

async fn serve(state: &ServerState, slug: &str, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "a mini-app origin serves files only (GET)",
        );
    }
    let live = match state.app.live_miniapp(slug).await {
        Ok(Some(live)) => live,
        Ok(None) => {
            return plain(
                StatusCode::NOT_FOUND,
                "there is no approved mini-app with this name",
            );
        }
        Err(error) => return crate::ApiError::new(error).into_response(),
    };
    let path = request.uri().path().trim_start_matches('/');
    let portal_origin = origin_of(&state.app.config().public_url);
    if path == agora_domain::miniapp::SDK_PATH {
        let body = SDK.replace("__AGORA_PORTAL_ORIGIN__", &portal_origin);
        return with_headers(
            (StatusCode::OK, body).into_response(),
            "text/javascript; charset=utf-8",
            &portal_origin,
        );
    }
    let path = if path.is_empty() {
        match (&live.entry, &live.external_url) {
            (Some(entry), _) => entry.clone(),
            (None, Some(url)) => {
                return (
                    StatusCode::FOUND,
                    [(header::LOCATION, url.as_str())],
                    "this mini-app is served by its partner",
                )
                    .into_response();
            }
            (None, None) => return plain(StatusCode::NOT_FOUND, "no entry"),
        }
    } else {
        path.to_owned()
    };
    match state.app.miniapp_file(live.id, live.version, &path).await {
        Ok(Some(file)) => with_headers(
            (StatusCode::OK, Body::from(file.body.clone())).into_response(),
            &file.content_type,
            &portal_origin,
        ),
        Ok(None) => plain(StatusCode::NOT_FOUND, "no such file in this mini-app"),
        Err(error) => crate::ApiError::new(error).into_response(),
    }
}

/// `scheme://host[:port]` of a URL.
pub(crate) fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    response
}

/// A mini-app page may load only its own origin's files, be framed only by the portal, and
/// never send forms or fetches elsewhere.
fn with_headers(mut response: Response, content_type: &str, portal_origin: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {portal_origin}"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
