//! Where a request's token came from, and the cross-site check for the one
//! source a browser adds on its own: the `token` cookie. Any page a logged-in
//! user visits can open a WebSocket (or POST) to this server, and the browser
//! sends the cookie along; only the `Origin` header tells such a request from
//! the application's own. Tokens in the query or the Authorization header
//! need no check: a cross-site page cannot make the browser add them.

use axum::http::{header, HeaderMap};

use crate::config::AuthConfig;

/// How a token reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `?token=`.
    Query,
    /// `Authorization: Bearer`.
    Header,
    /// The `token` cookie.
    Cookie,
}

/// The token from `?token=`, `?apiKey=`, `Authorization: Bearer`,
/// `x-api-key` (the s3db.js API-key transports), or a `token` cookie, in
/// that order, with where it was found.
pub(crate) fn token_from(
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Option<(String, TokenSource)> {
    for name in ["token", "apiKey"] {
        if let Some((_, token)) = query.iter().find(|(k, _)| k == name) {
            return Some((token.clone(), TokenSource::Query));
        }
    }
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return Some((
            crate::auth::strip_bearer(value).to_owned(),
            TokenSource::Header,
        ));
    }
    if let Some(value) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some((value.to_owned(), TokenSource::Header));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == "token")
        .map(|c| (c.value().to_owned(), TokenSource::Cookie))
}

/// Refuses a cookie-authenticated request from an origin that is neither
/// the server's own host nor in `auth.allowed_origins`. A request without
/// an `Origin` header is not a browser's cross-site request (browsers send
/// one on every WebSocket upgrade and cross-site POST) and passes.
///
/// # Errors
/// The reason, for a 403.
pub(crate) fn check(
    auth: &AuthConfig,
    headers: &HeaderMap,
    source: Option<TokenSource>,
) -> Result<(), String> {
    if source != Some(TokenSource::Cookie) {
        return Ok(());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("<not text>");
    let allowed = auth
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if allowed || host.is_some_and(|host| same_host(origin, host)) {
        return Ok(());
    }
    Err(format!(
        "cookie authentication from origin `{origin}` is not allowed (auth.allowed_origins)"
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (the Host header),
/// default ports ignored on both sides.
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return false,
    };
    let trim = |s: &str| {
        let s = s.trim_end_matches('/');
        s.strip_suffix(default_port)
            .unwrap_or(s)
            .to_ascii_lowercase()
    };
    trim(authority) == trim(host)
}

#[cfg(test)]
mod tests {
    use super::same_host;

    #[test]
    fn same_host_ignores_default_ports_and_case() {
        assert!(same_host("http://127.0.0.1:3001", "127.0.0.1:3001"));
        assert!(same_host("https://App.example.com", "app.example.com:443"));
        assert!(same_host("http://example.com:80", "example.com"));
        assert!(!same_host("http://evil.example", "app.example.com"));
        assert!(!same_host("http://127.0.0.1:3002", "127.0.0.1:3001"));
        assert!(!same_host("null", "127.0.0.1:3001"));
    }
}
