//! Mini-apps: the manifest a partner registers, the scopes a customer grants, and the rules
//! that make a bundle safe to serve.
//!
//! A manifest is checked field by field; a refusal names the field (`scopes[1].reason`), so a
//! partner knows what to fix. Nothing here touches a zip file or a database.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The bundle file that holds the manifest; it is read, never served.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The path on every mini-app origin where Agora serves its SDK.
pub const SDK_PATH: &str = "agora-sdk.js";
const SLUG_CHARS_MAX: usize = 40;
const NAME_CHARS_MAX: usize = 60;
const DESCRIPTION_CHARS_MAX: usize = 500;
const REASON_CHARS_MAX: usize = 200;
const REDIRECT_URIS_MAX: usize = 10;
const URI_CHARS_MAX: usize = 2000;
const PATH_CHARS_MAX: usize = 200;
/// Slugs that would shadow the instance's own hosts.
const RESERVED_SLUGS: &[&str] = &["www", "api", "admin", "portal", "static", "assets", "agora"];

/// What a mini-app may learn about a customer, granted by the customer one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Scope {
    /// Sign-in: a pairwise subject id, nothing else.
    Openid,
    /// The customer's display name.
    Profile,
    /// The customer's e-mail address.
    Email,
    /// Sending notifications to the customer's inbox, within a rate limit.
    Notifications,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Openid,
        Scope::Profile,
        Scope::Email,
        Scope::Notifications,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Openid => "openid",
            Scope::Profile => "profile",
            Scope::Email => "email",
            Scope::Notifications => "notifications",
        }
    }

    /// What the consent dialog says the scope gives.
    pub fn title(self) -> &'static str {
        match self {
            Scope::Openid => "Recognise you when you come back (an id for this app only)",
            Scope::Profile => "Your name",
            Scope::Email => "Your e-mail address",
            Scope::Notifications => "Send you notifications",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "scope",
                    format!(
                        "`{}` is not a scope; the scopes are {}",
                        text.chars().take(40).collect::<String>(),
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ),
                )
            })
    }
}

impl TryFrom<String> for Scope {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl TryFrom<String> for AppCategory {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

/// Parses a space- or comma-separated scope list, as OAuth and the bridge send it.
pub fn parse_scopes(text: &str) -> Result<BTreeSet<Scope>> {
    text.split([' ', ','])
        .filter(|part| !part.is_empty())
        .map(str::parse)
        .collect()
}

/// Formats scopes as OAuth does: space-separated.
pub fn format_scopes<'a>(scopes: impl IntoIterator<Item = &'a Scope>) -> String {
    scopes
        .into_iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a mini-app is listed in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum AppCategory {
    Health,
    Food,
    Shopping,
    Travel,
    Finance,
    Services,
    Other,
}

impl AppCategory {
    pub const ALL: [AppCategory; 7] = [
        AppCategory::Health,
        AppCategory::Food,
        AppCategory::Shopping,
        AppCategory::Travel,
        AppCategory::Finance,
        AppCategory::Services,
        AppCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppCategory::Health => "health",
            AppCategory::Food => "food",
            AppCategory::Shopping => "shopping",
            AppCategory::Travel => "travel",
            AppCategory::Finance => "finance",
            AppCategory::Services => "services",
            AppCategory::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AppCategory::Health => "Health",
            AppCategory::Food => "Food and groceries",
            AppCategory::Shopping => "Shopping",
            AppCategory::Travel => "Travel",
            AppCategory::Finance => "Finance",
            AppCategory::Services => "Services",
            AppCategory::Other => "Other",
        }
    }
}

impl FromStr for AppCategory {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        AppCategory::ALL
            .into_iter()
            .find(|category| category.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "category",
                    format!(
                        "`{}` is not a category; the categories are {}",
                        text.chars().take(40).collect::<String>(),
                        AppCategory::ALL.map(AppCategory::as_str).join(", ")
                    ),
                )
            })
    }
}

/// A scope a mini-app asks for, and why: the consent dialog shows the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    pub scope: Scope,
    pub reason: String,
}

/// Where a mini-app's pages come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Entry {
    /// A file of the uploaded bundle, served by Agora on the mini-app's own origin.
    Bundle(String),
    /// A page the partner serves itself (https, or http on loopback for development).
    External { url: String },
}

/// A mini-app's manifest (`manifest.json` at the root of its bundle, or posted alone for an
/// external entry). Every version carries its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The mini-app's name in its origin (`{slug}.apps.localhost`): a-z, 0-9 and `-`, at most 40.
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: AppCategory,
    /// A bundle file (SVG or PNG) shown in the directory.
    #[serde(default)]
    pub icon: Option<String>,
    pub entry: Entry,
    #[serde(default)]
    pub scopes: Vec<ScopeRequest>,
    /// Where `/oauth/authorize` may send the customer back with a code: exact matches only.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl Manifest {
    /// Parses and checks a manifest; the error names the first field that is wrong.
    pub fn parse(json: &[u8]) -> Result<Self> {
        let manifest: Manifest = serde_json::from_slice(json).map_err(|error| {
            Error::invalid(
                "manifest",
                format!(
                    "is not a valid manifest: {error} (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            )
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn validate(&self) -> Result<()> {
        check_slug(&self.slug)?;
        check_text("name", &self.name, 1, NAME_CHARS_MAX)?;
        check_text("description", &self.description, 0, DESCRIPTION_CHARS_MAX)?;
        if let Some(icon) = &self.icon {
            check_bundle_path("icon", icon)?;
        }
        match &self.entry {
            Entry::Bundle(path) => check_bundle_path("entry", path)?,
            Entry::External { url } => check_uri("entry.url", url)?,
        }
        let mut seen = BTreeSet::new();
        for (index, request) in self.scopes.iter().enumerate() {
            if !seen.insert(request.scope) {
                return Err(Error::invalid(
                    format!("scopes[{index}].scope"),
                    format!("`{}` is asked for twice", request.scope),
                ));
            }
            check_text(
                &format!("scopes[{index}].reason"),
                &request.reason,
                1,
                REASON_CHARS_MAX,
            )?;
        }
        if self.redirect_uris.len() > REDIRECT_URIS_MAX {
            return Err(Error::invalid(
                "redirect_uris",
                format!("at most {REDIRECT_URIS_MAX}"),
            ));
        }
        for (index, uri) in self.redirect_uris.iter().enumerate() {
            check_uri(&format!("redirect_uris[{index}]"), uri)?;
            if uri.contains('#') {
                return Err(Error::invalid(
                    format!("redirect_uris[{index}]"),
                    "may not carry a fragment",
                ));
            }
        }
        Ok(())
    }

    /// The scopes this manifest asks for (`openid` always: a sign-in needs no more).
    pub fn declared_scopes(&self) -> BTreeSet<Scope> {
        let mut scopes: BTreeSet<Scope> = self.scopes.iter().map(|r| r.scope).collect();
        scopes.insert(Scope::Openid);
        scopes
    }

    /// The reason the manifest gives for `scope`.
    pub fn reason(&self, scope: Scope) -> Option<&str> {
        self.scopes
            .iter()
            .find(|request| request.scope == scope)
            .map(|request| request.reason.as_str())
            .or_else(|| (scope == Scope::Openid).then_some("To recognise you when you sign in."))
    }

    /// Whether the version is served from an uploaded bundle.
    pub fn is_bundle(&self) -> bool {
        matches!(self.entry, Entry::Bundle(_))
    }
}

fn check_text(field: &str, text: &str, min: usize, max: usize) -> Result<()> {
    let chars = text.chars().count();
    if chars < min || chars > max {
        return Err(Error::invalid(
            field,
            format!("must be {min} to {max} characters (got {chars})"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "may not contain control characters"));
    }
    Ok(())
}

/// A slug is the left-most label of the mini-app's origin: a DNS label in lower case.
pub fn check_slug(slug: &str) -> Result<()> {
    let well_formed = !slug.is_empty()
        && slug.len() <= SLUG_CHARS_MAX
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && slug.as_bytes()[0].is_ascii_lowercase();
    if !well_formed {
        return Err(Error::invalid(
            "slug",
            format!(
                "must be 1 to {SLUG_CHARS_MAX} of a-z, 0-9 and `-`, start with a letter and not end with `-`"
            ),
        ));
    }
    if RESERVED_SLUGS.contains(&slug) {
        return Err(Error::invalid("slug", format!("`{slug}` is reserved")));
    }
    Ok(())
}

/// A path inside a bundle: relative, `/`-separated, no `..`, no hidden or empty parts.
pub fn check_bundle_path(field: &str, path: &str) -> Result<()> {
    let well_formed = !path.is_empty()
        && path.len() <= PATH_CHARS_MAX
        && path.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if !well_formed {
        return Err(Error::invalid(
            field,
            format!(
                "`{}` is not a bundle path: relative, `/`-separated parts of a-z, A-Z, 0-9, `-`, `_` and `.`, none starting with `.`",
                path.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(())
}

/// An absolute `https` URL, or `http` on loopback (for development and tests).
fn check_uri(field: &str, uri: &str) -> Result<()> {
    let fail = |why: &str| {
        Err(Error::invalid(
            field,
            format!("`{}` {why}", uri.chars().take(80).collect::<String>()),
        ))
    };
    if uri.len() > URI_CHARS_MAX || uri.chars().any(|c| c.is_control() || c == ' ') {
        return fail("is not a URL");
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return fail("is not an absolute URL");
    };
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host_port.is_empty() || host_port.contains('@') {
        return fail("has no host, or carries credentials");
    }
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => host_port,
    };
    let loopback = host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host.starts_with("127.");
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => fail("must use https (http only on loopback)"),
    }
}

/// The content type a bundle file is served with, by its extension; `None` refuses the file.
pub fn content_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> serde_json::Value {
        serde_json::json!({
            "slug": "clinic",
            "name": "Vila Clinic",
            "description": "Book a consultation.",
            "category": "health",
            "icon": "icon.svg",
            "entry": "index.html",
            "scopes": [{ "scope": "profile", "reason": "To greet you." }],
            "redirect_uris": ["https://clinic.example/callback", "http://127.0.0.1:9/cb"]
        })
    }

    fn refused(change: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut value = manifest();
        change(&mut value);
        Manifest::parse(value.to_string().as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_manifest_parses_and_declares_openid_besides_its_scopes() {
        let parsed = Manifest::parse(manifest().to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed.declared_scopes().into_iter().collect::<Vec<_>>(),
            vec![Scope::Openid, Scope::Profile]
        );
        assert_eq!(parsed.reason(Scope::Profile), Some("To greet you."));
        assert_eq!(parsed.reason(Scope::Email), None);
        assert!(parsed.is_bundle());
    }

    #[test]
    fn each_wrong_field_is_named() {
        assert!(refused(|m| m["slug"] = "Clinic".into()).contains("slug"));
        assert!(refused(|m| m["slug"] = "api".into()).contains("reserved"));
        assert!(refused(|m| m["category"] = "games".into()).contains("category"));
        assert!(refused(|m| m["entry"] = "../etc/passwd".into()).contains("entry"));
        assert!(refused(|m| m["entry"] = ".env".into()).contains("entry"));
        assert!(
            refused(|m| m["entry"] = serde_json::json!({ "url": "http://evil.example/" }))
                .contains("https")
        );
        assert!(refused(|m| m["scopes"][0]["reason"] = "".into()).contains("scopes[0].reason"));
        assert!(refused(|m| m["scopes"][0]["scope"] = "wallet".into()).contains("scope"));
        assert!(
            refused(|m| m["scopes"] = serde_json::json!([
                { "scope": "email", "reason": "a" }, { "scope": "email", "reason": "b" }
            ]))
            .contains("twice")
        );
        assert!(
            refused(|m| m["redirect_uris"][0] = "https://a.example/cb#x".into())
                .contains("fragment")
        );
        assert!(
            refused(|m| m["redirect_uris"][0] = "https://user@a.example/".into())
                .contains("credentials")
        );
        assert!(refused(|m| m["extra"] = 1.into()).contains("unknown field"));
        assert!(
            Manifest::parse(b"{ not json")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }

    #[test]
    fn scopes_parse_from_oauth_and_bridge_lists() {
        let scopes = parse_scopes("openid profile,email").unwrap();
        assert_eq!(format_scopes(&scopes), "openid profile email");
        assert!(parse_scopes("openid admin").is_err());
        assert!(parse_scopes("").unwrap().is_empty());
    }

    #[test]
    fn only_known_file_types_are_served() {
        assert_eq!(
            content_type("a/b.JS"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type("index.html"), Some("text/html; charset=utf-8"));
        assert_eq!(content_type("payload.exe"), None);
        assert_eq!(content_type("README"), None);
    }
}
