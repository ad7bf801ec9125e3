//! The `[upstream]` table: the OAuth 2.0 / OpenID providers whose grants
//! sessiond keeps (the upstream token vault).
//!
//! ```toml
//! [upstream]
//! refresh_interval_secs = 60          # background refresher: every minute (0: off),
//! refresh_horizon_secs = 300          # grants expiring within 5 minutes,
//! refresh_concurrency = 8             # at most 8 at a time
//!
//! [upstream.providers.idp]
//! issuer = "https://idp.example"     # OpenID discovery finds the token endpoint
//! # token_url = "https://idp.example/oauth/token"   # or name it outright
//! client_id = "sessiond"
//! client_secret = "…"                # better: SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_SECRET
//! client_auth = "client_secret_basic" # or "client_secret_post", or "private_key_jwt" with
//! # private_key_file = "/etc/sessiond/idp-client.pem"   # PKCS#8 PEM
//! # private_key_alg = "ES256"         # or "RS256"
//! # private_key_kid = "sessiond-1"
//! refresh_buffer_secs = 60            # refresh when the access token expires within this
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sessionkit::upstream::{AssertionKey, ClientAuth, Endpoint, Provider};
use zeroize::Zeroizing;

use super::{ConfigError, invalid};

/// The `[upstream]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// The providers, by name (`a-z 0-9 _ -`).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Seconds between two passes of the background refresher (0: off).
    pub refresh_interval_secs: u64,
    /// The background refresher refreshes grants whose access token
    /// expires within this many seconds.
    pub refresh_horizon_secs: u64,
    /// Most refreshes one pass makes at a time.
    pub refresh_concurrency: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            providers: BTreeMap::new(),
            refresh_interval_secs: 60,
            refresh_horizon_secs: 300,
            refresh_concurrency: 8,
        }
    }
}

/// One provider.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// The OpenID issuer: its discovery document names the token endpoint.
    pub issuer: Option<String>,
    /// The token endpoint, outright (instead of `issuer`).
    pub token_url: Option<String>,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret (none: a public client).
    pub client_secret: Option<String>,
    /// `client_secret_basic` (default), `client_secret_post` or
    /// `private_key_jwt`.
    pub client_auth: String,
    /// `private_key_jwt`: the PEM file of our signing key.
    pub private_key_file: Option<std::path::PathBuf>,
    /// `private_key_jwt`: `ES256` (default) or `RS256`.
    pub private_key_alg: String,
    /// `private_key_jwt`: the `kid` the provider knows our key by, if any.
    pub private_key_kid: Option<String>,
    /// Refresh when the access token expires within this many seconds.
    pub refresh_buffer_secs: u64,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            issuer: None,
            token_url: None,
            client_id: String::new(),
            client_secret: None,
            client_auth: "client_secret_basic".into(),
            private_key_file: None,
            private_key_alg: "ES256".into(),
            private_key_kid: None,
            refresh_buffer_secs: 60,
        }
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("issuer", &self.issuer)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("client_auth", &self.client_auth)
            .field("private_key_file", &self.private_key_file)
            .field("private_key_alg", &self.private_key_alg)
            .field("refresh_buffer_secs", &self.refresh_buffer_secs)
            .finish()
    }
}

fn http_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

impl UpstreamConfig {
    /// Checks every provider; each error names its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.refresh_horizon_secs == 0 || self.refresh_horizon_secs > 86_400 {
            return Err(invalid(
                "upstream.refresh_horizon_secs",
                "must be from 1 to 86400",
            ));
        }
        if !(1..=256).contains(&self.refresh_concurrency) {
            return Err(invalid(
                "upstream.refresh_concurrency",
                "must be from 1 to 256",
            ));
        }
        for (name, p) in &self.providers {
            let field = |f: &str| format!("upstream.providers.{name}.{f}");
            if !sessionkit_core::upstream::valid_provider(name) {
                return Err(invalid(
                    &format!("upstream.providers.{name}"),
                    "a provider name is 1 to 64 characters of a-z, 0-9, '_', '-'",
                ));
            }
            match (&p.issuer, &p.token_url) {
                (Some(u), None) | (None, Some(u)) if http_url(u) => {}
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &field("token_url"),
                        "set issuer or token_url, not both",
                    ));
                }
                (None, None) => {
                    return Err(invalid(&field("issuer"), "set issuer or token_url"));
                }
                _ => return Err(invalid(&field("token_url"), "must be an http(s) URL")),
            }
            if p.client_id.is_empty() {
                return Err(invalid(&field("client_id"), "must not be empty"));
            }
            Self::auth(p).map_err(|why| invalid(&field(why.0), why.1))?;
            if !(1..=3600).contains(&p.refresh_buffer_secs) {
                return Err(invalid(
                    &field("refresh_buffer_secs"),
                    "must be from 1 to 3600",
                ));
            }
        }
        Ok(())
    }

    /// How the provider's client authenticates; the field at fault and
    /// why, otherwise.
    fn auth(p: &ProviderConfig) -> Result<ClientAuth, (&'static str, String)> {
        match p.client_auth.as_str() {
            "client_secret_basic" => Ok(ClientAuth::Basic),
            "client_secret_post" => Ok(ClientAuth::Post),
            "private_key_jwt" => {
                let path = p.private_key_file.as_ref().ok_or((
                    "private_key_file",
                    "private_key_jwt needs the PEM file of the signing key".to_owned(),
                ))?;
                let pem = std::fs::read(path).map_err(|e| {
                    (
                        "private_key_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                AssertionKey::from_pem(&pem, &p.private_key_alg, p.private_key_kid.clone())
                    .map(|k| ClientAuth::PrivateKeyJwt(Box::new(k)))
                    .map_err(|e| ("private_key_alg", e.to_string()))
            }
            _ => Err((
                "client_auth",
                "must be client_secret_basic, client_secret_post or private_key_jwt".to_owned(),
            )),
        }
    }

    /// The providers, for the vault (after [`UpstreamConfig::validate`]).
    #[must_use]
    pub fn providers(&self) -> Vec<Provider> {
        self.providers
            .iter()
            .map(|(name, p)| {
                let endpoint = match (&p.issuer, &p.token_url) {
                    (_, Some(u)) => Endpoint::TokenUrl(u.clone()),
                    (Some(i), None) => Endpoint::Issuer(i.clone()),
                    (None, None) => Endpoint::TokenUrl(String::new()),
                };
                Provider::new(
                    name.clone(),
                    endpoint,
                    p.client_id.clone(),
                    p.client_secret.clone().map(Zeroizing::new),
                    Self::auth(p).unwrap_or_default(),
                    Duration::from_secs(p.refresh_buffer_secs),
                )
            })
            .collect()
    }
}
