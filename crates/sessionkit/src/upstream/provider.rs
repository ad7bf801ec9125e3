//! One upstream OAuth 2.0 / OpenID provider: where its token endpoint is
//! (configured, or found once by OpenID discovery from its issuer), how we
//! authenticate to it, and the refresh call (RFC 6749 §6) with its answers
//! sorted into what the vault does next.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

/// How the client authenticates at the token endpoint.
#[derive(Default)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (`client_secret_basic`).
    #[default]
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
    /// A JWT signed with our private key (`private_key_jwt`, RFC 7523).
    PrivateKeyJwt(Box<AssertionKey>),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
            ClientAuth::PrivateKeyJwt(_) => "private_key_jwt",
        })
    }
}

/// The key that signs our client assertions (`private_key_jwt`).
pub struct AssertionKey {
    key: jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
    kid: Option<String>,
}

/// Why an assertion key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionKeyError {
    /// Only `ES256` and `RS256` are supported.
    #[error("private_key_alg must be ES256 or RS256")]
    Algorithm,
    /// The PEM is not a private key of that algorithm.
    #[error("the private key is not a PEM key for {0}")]
    Key(&'static str),
}

impl AssertionKey {
    /// A key from its PEM (PKCS#8 for ES256; PKCS#1 or PKCS#8 for RS256),
    /// for `alg` (`ES256` or `RS256`), with an optional key id.
    ///
    /// # Errors
    /// [`AssertionKeyError`].
    pub fn from_pem(pem: &[u8], alg: &str, kid: Option<String>) -> Result<Self, AssertionKeyError> {
        let (key, alg) = match alg {
            "ES256" => (
                jsonwebtoken::EncodingKey::from_ec_pem(pem)
                    .map_err(|_| AssertionKeyError::Key("ES256"))?,
                jsonwebtoken::Algorithm::ES256,
            ),
            "RS256" => (
                jsonwebtoken::EncodingKey::from_rsa_pem(pem)
                    .map_err(|_| AssertionKeyError::Key("RS256"))?,
                jsonwebtoken::Algorithm::RS256,
            ),
            _ => return Err(AssertionKeyError::Algorithm),
        };
        Ok(AssertionKey { key, alg, kid })
    }

    /// A client assertion for `client_id` at `audience` (the token
    /// endpoint), valid for 60 s, with a fresh `jti`.
    fn assertion(&self, client_id: &str, audience: &str) -> Option<String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            jti: String,
            iat: u64,
            exp: u64,
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        let mut jti = [0u8; 16];
        sessionkit_core::random::fill_random(&mut jti).ok()?;
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: audience,
            jti: URL_SAFE_NO_PAD.encode(jti),
            iat: now,
            exp: now + 60,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).ok()
    }
}

/// Where the token endpoint is.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Given outright.
    TokenUrl(String),
    /// Found from `<issuer>/.well-known/openid-configuration` on first use.
    Issuer(String),
}

/// A configured provider.
pub struct Provider {
    /// Its name in the API (`/v1/upstream/{provider}`).
    pub name: String,
    endpoint: Endpoint,
    client_id: String,
    client_secret: Option<Zeroizing<String>>,
    auth: ClientAuth,
    /// Refresh when the access token expires within this.
    pub refresh_buffer: Duration,
    token_url: OnceCell<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("refresh_buffer", &self.refresh_buffer)
            .finish_non_exhaustive()
    }
}

/// What a refresh call came to.
#[derive(Debug)]
pub enum Refreshed {
    /// New tokens.
    Tokens(TokenResponse),
    /// The provider refused the refresh token for good (`invalid_grant`,
    /// or a 400/401 naming the client or grant): the user must sign in.
    Refused,
    /// Not now (5xx, timeout, unreachable, a body we cannot read): keep
    /// the old tokens while they last and try again later.
    Unavailable,
}

/// A token endpoint's success answer (RFC 6749 §5.1). Its `Debug` shows
/// no token.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The new access token.
    pub access_token: String,
    /// Seconds it lives, if said.
    pub expires_in: Option<u64>,
    /// A rotated refresh token, if any.
    pub refresh_token: Option<String>,
    /// Granted scopes, if said.
    pub scope: Option<String>,
    /// A new ID token, if any.
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("rotated", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
}

impl Provider {
    /// A provider named `name` (`a-z 0-9 _ -`).
    #[must_use]
    pub fn new(
        name: String,
        endpoint: Endpoint,
        client_id: String,
        client_secret: Option<Zeroizing<String>>,
        auth: ClientAuth,
        refresh_buffer: Duration,
    ) -> Self {
        Provider {
            name,
            endpoint,
            client_id,
            client_secret,
            auth,
            refresh_buffer,
            token_url: OnceCell::new(),
        }
    }

    /// The token endpoint, discovered once (a failed discovery is tried
    /// again on the next call).
    async fn token_url(&self, http: &reqwest::Client) -> Option<&str> {
        let url = self
            .token_url
            .get_or_try_init(|| async {
                match &self.endpoint {
                    Endpoint::TokenUrl(u) => Ok(u.clone()),
                    Endpoint::Issuer(issuer) => {
                        let url = format!(
                            "{}/.well-known/openid-configuration",
                            issuer.trim_end_matches('/')
                        );
                        let res = http.get(&url).send().await.map_err(|_| ())?;
                        if !res.status().is_success() {
                            return Err(());
                        }
                        let d: Discovery = res.json().await.map_err(|_| ())?;
                        Ok(d.token_endpoint)
                    }
                }
            })
            .await
            .ok()?;
        Some(url.as_str())
    }

    /// Trades `refresh_token` for new tokens, within `timeout`.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &str,
        timeout: Duration,
    ) -> Refreshed {
        let Some(url) = self.token_url(http).await else {
            return Refreshed::Unavailable;
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let mut req = http.post(url).timeout(timeout);
        let secret = self.client_secret.as_deref().map(String::as_str);
        let assertion;
        match (&self.auth, secret) {
            (ClientAuth::PrivateKeyJwt(key), _) => {
                let Some(a) = key.assertion(&self.client_id, url) else {
                    return Refreshed::Unavailable;
                };
                assertion = a;
                form.push(("client_id", &self.client_id));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", &assertion));
            }
            (ClientAuth::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: both parts form-urlencoded first.
                let enc =
                    |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                req = req.basic_auth(enc(&self.client_id), Some(enc(secret)));
            }
            (ClientAuth::Post, Some(secret)) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret));
            }
            (_, None) => form.push(("client_id", &self.client_id)),
        }
        let res = match req
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
        {
            Ok(r) => r,
            Err(_) => return Refreshed::Unavailable,
        };
        let status = res.status();
        if status.is_success() {
            return match res.json::<TokenResponse>().await {
                Ok(t) if !t.access_token.is_empty() => Refreshed::Tokens(t),
                _ => Refreshed::Unavailable,
            };
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Refreshed::Unavailable;
        }
        // A 4xx: refused for good only when the provider says the grant
        // (or our client) is bad; anything else may pass.
        let error = res.json::<ErrorBody>().await.ok().and_then(|b| b.error);
        match error.as_deref() {
            Some("invalid_grant" | "unauthorized_client" | "invalid_client") => Refreshed::Refused,
            _ if status.as_u16() == 400 || status.as_u16() == 401 => Refreshed::Refused,
            _ => Refreshed::Unavailable,
        }
    }
}

/// The `sub` claim of an ID token received straight from the token
/// endpoint over the connection we opened (OpenID Connect Core §3.1.3.7
/// lets TLS stand in for the signature there); `None` if it has none or
/// is not a JWT.
#[must_use]
pub fn id_token_sub(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    #[derive(Deserialize)]
    struct Claims {
        sub: Option<String>,
    }
    serde_json::from_slice::<Claims>(&bytes).ok()?.sub
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_token_sub_reads_the_claim() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"user-1","iss":"x"}"#);
        assert_eq!(
            id_token_sub(&format!("h.{payload}.s")),
            Some("user-1".into())
        );
        assert_eq!(id_token_sub("garbage"), None);
    }
}
