//! Configuration: a TOML file (`--config` or `SESSIOND_CONFIG`) plus
//! `SESSIOND_*` environment overrides for every field, nested fields with
//! `__` (`SESSIOND_POLICY__IDLE_TIMEOUT_SECS=900`). Unknown fields are
//! refused, and every error names the field.
//!
//! ```toml
//! listen = "127.0.0.1:7700"
//! data_dir = "./sessiond-data"
//! store = "embedded"            # or "memory" (nothing survives a restart), "redis", "postgres"
//! # store_url = "redis://127.0.0.1:6379/0"   # store = "redis"; a Cluster:
//! #   "redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379"
//! # store_url = "postgres://sessiond@db.internal:5432/app"   # store = "postgres"
//! store_prefix = "sessiond"     # remote stores: the prefix of every Redis key, or the
//!                               # PostgreSQL schema (lowercased, other characters as _)
//! near_cache = true             # remote stores: validated sessions cached per node,
//!                               # invalidated on every node before a change returns
//! near_cache_ttl_ms = 5000      # an entry is never served older than this
//! near_cache_entries = 100000
//! max_body_bytes = 65536
//! max_header_bytes = 16384
//! purge_interval_secs = 60
//! shutdown_grace_secs = 30
//! header_read_timeout_secs = 10 # 0: off
//! max_connections = 0           # 0: 90% of the open-files limit (raised to its hard limit)
//! # tls_cert = "/etc/sessiond/cert.pem"   # TLS: a PEM chain, leaf first, and its key;
//! # tls_key = "/etc/sessiond/key.pem"     # both re-read on SIGHUP
//! log_format = "text"           # or "json"
//! log_level = "info"
//! metrics_require_key = false   # true: /metrics needs an API key with the admin scope
//!
//! [policy]
//! idle_timeout_secs = 1800
//! absolute_timeout_secs = 2592000
//! anonymous_idle_timeout_secs = 86400
//! anonymous_absolute_timeout_secs = 604800
//! touch_interval_secs = 60        # unset: 60, or half the shorter idle timeout
//! max_sessions_per_subject = 100   # 0: no cap
//! on_session_limit = "evict_oldest" # or "refuse"
//! max_anonymous_sessions = 10000000 # 0: no cap
//! attributes_max_bytes = 16384
//! attributes_max_depth = 16
//! fingerprint = "off"              # "report", "enforce"
//! fingerprint_includes_ip = false
//!
//! [tokens]                         # access JWTs + refresh tokens
//! issuer = "sessiond"
//! audience = "sessiond"
//! algorithm = "EdDSA"              # "ES256", "HS256" (+ hs256_secret)
//! access_ttl_secs = 600
//! refresh_grace_secs = 30
//! leeway_secs = 0                  # the issuer verifies its own tokens: no skew
//! key_grace_secs = 0               # 0: access_ttl_secs + 60
//! claims = []                      # attributes copied into access tokens
//! # [tokens.audiences]             # per-tenant `aud`
//! # acme = "api.acme.example"
//!
//! [rate_limits]                    # per node; 0 turns a limit off
//! failed_auth_per_minute = 30      # wrong or missing API keys, per client IP
//! failed_auth_burst = 20
//! creates_per_second = 0           # POST /v1/sessions, per API key (0: off)
//! creates_burst = 1000
//!
//! # [upstream.providers.idp]       # the upstream token vault (config/upstream.rs)
//! # issuer = "https://idp.example"
//! # client_id = "sessiond"
//! # client_secret = "…"            # SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_SECRET
//! ```

mod upstream;

pub use upstream::{ProviderConfig, UpstreamConfig};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sessionkit_core::{AttributeLimits, FingerprintMode, OnSessionLimit, Policy};

/// Environment variables under the prefix that are not config fields.
const NOT_FIELDS: &[&str] = &[
    "SESSIOND_ADMIN_KEY",
    "SESSIOND_CONFIG",
    "SESSIOND_API_KEY",
    "SESSIOND_SERVER",
];

/// Which store sessiond runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The embedded durable store in the data dir (the default).
    Embedded,
    /// In memory: nothing survives a restart (development, tests).
    Memory,
    /// Redis (or Valkey) at `store_url`, shared by every node.
    Redis,
    /// PostgreSQL at `store_url`, shared by every node.
    Postgres,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What to do at the per-subject cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// Evict the least recently seen session.
    EvictOldest,
    /// Refuse with 409 `session_limit_reached`.
    Refuse,
}

/// Fingerprint binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fingerprint {
    /// Not checked.
    Off,
    /// Logged and counted.
    Report,
    /// A mismatch is `invalid_token`.
    Enforce,
}

/// The `[tokens]` table: access JWTs and refresh tokens.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens (unless the tenant has its own).
    pub audience: String,
    /// Per-tenant audiences: `[tokens.audiences] acme = "api.acme.test"`.
    pub audiences: HashMap<String, String>,
    /// `EdDSA` (default), `ES256` or `HS256`.
    pub algorithm: String,
    /// Lifetime of an access token.
    pub access_ttl_secs: u64,
    /// How long the parent of a rotated refresh token still gets the same
    /// pair (two tabs, a lost response).
    pub refresh_grace_secs: u64,
    /// Clock skew forgiven when verifying (at most 60).
    pub leeway_secs: u64,
    /// How long a rotated-out signing key keeps verifying; at least
    /// `access_ttl_secs + 60` (0: exactly that).
    pub key_grace_secs: u64,
    /// Top-level session attributes copied into access tokens as claims.
    pub claims: Vec<String>,
    /// HS256 only: the shared secret (at least 32 bytes). Set it with
    /// `SESSIOND_TOKENS__HS256_SECRET` rather than in a file.
    pub hs256_secret: String,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            issuer: "sessiond".into(),
            audience: "sessiond".into(),
            audiences: HashMap::new(),
            algorithm: "EdDSA".into(),
            access_ttl_secs: 600,
            refresh_grace_secs: 30,
            leeway_secs: 0,
            key_grace_secs: 0,
            claims: Vec::new(),
            hs256_secret: String::new(),
        }
    }
}

impl std::fmt::Debug for TokensConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokensConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithm", &self.algorithm)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("refresh_grace_secs", &self.refresh_grace_secs)
            .field("hs256_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl TokensConfig {
    /// The signing algorithm.
    pub fn algorithm(&self) -> Result<sessionkit::jwt::SigningAlgorithm, ConfigError> {
        self.algorithm
            .parse()
            .map_err(|_| invalid("tokens.algorithm", "must be EdDSA, ES256 or HS256"))
    }

    /// How long a rotated-out key keeps verifying.
    #[must_use]
    pub fn key_grace_secs(&self) -> u64 {
        // Past the last token the old key signed, plus the most leeway any
        // verifier may forgive (60 s).
        let min = self.access_ttl_secs.saturating_add(60);
        self.key_grace_secs.max(min)
    }

    /// The engine's access-token configuration.
    pub fn access_config(&self) -> Result<sessionkit::AccessConfig, ConfigError> {
        const MAX_SECS: u64 = 366 * 24 * 3600;
        if self.access_ttl_secs == 0 || self.access_ttl_secs > MAX_SECS {
            return Err(invalid(
                "tokens.access_ttl_secs",
                "must be from 1 to 31622400",
            ));
        }
        if self.refresh_grace_secs > 3600 {
            return Err(invalid("tokens.refresh_grace_secs", "must be at most 3600"));
        }
        if self.leeway_secs > 60 {
            return Err(invalid("tokens.leeway_secs", "must be at most 60"));
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(invalid(
                "tokens.issuer",
                "issuer and audience must not be empty",
            ));
        }
        self.algorithm()?;
        let mut tenant_audiences = HashMap::new();
        for (t, aud) in &self.audiences {
            let tenant = sessionkit_core::TenantId::new(t)
                .map_err(|e| invalid(&format!("tokens.audiences.{t}"), e.to_string()))?;
            if aud.is_empty() {
                return Err(invalid(
                    &format!("tokens.audiences.{t}"),
                    "must not be empty",
                ));
            }
            tenant_audiences.insert(tenant, aud.clone());
        }
        Ok(sessionkit::AccessConfig {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            tenant_audiences,
            access_ttl: sessionkit_core::DurationMs::from_secs(self.access_ttl_secs),
            refresh_grace: sessionkit_core::DurationMs::from_secs(self.refresh_grace_secs),
            leeway_secs: self.leeway_secs,
            claims: self.claims.clone(),
            ..sessionkit::AccessConfig::default()
        })
    }
}

/// The `[policy]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Sliding idle timeout of authenticated sessions.
    pub idle_timeout_secs: u64,
    /// Hard cap on the life of authenticated sessions.
    pub absolute_timeout_secs: u64,
    /// Idle timeout of anonymous sessions.
    pub anonymous_idle_timeout_secs: u64,
    /// Absolute timeout of anonymous sessions.
    pub anonymous_absolute_timeout_secs: u64,
    /// Least time between two touches; unset: 60 s, or half the shorter
    /// idle timeout when that is less.
    pub touch_interval_secs: Option<u64>,
    /// Most live sessions per subject; 0 for no cap.
    pub max_sessions_per_subject: u32,
    /// What to do at that cap.
    pub on_session_limit: OnLimit,
    /// Most live anonymous sessions per tenant; 0 for no cap.
    pub max_anonymous_sessions: u64,
    /// Largest attributes, bytes of compact JSON.
    pub attributes_max_bytes: usize,
    /// Deepest attribute nesting.
    pub attributes_max_depth: usize,
    /// Fingerprint binding.
    pub fingerprint: Fingerprint,
    /// Whether the fingerprint covers the client IP.
    pub fingerprint_includes_ip: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let p = Policy::default();
        PolicyConfig {
            idle_timeout_secs: p.idle_timeout.as_secs(),
            absolute_timeout_secs: p.absolute_timeout.as_secs(),
            anonymous_idle_timeout_secs: p.anonymous_idle_timeout.as_secs(),
            anonymous_absolute_timeout_secs: p.anonymous_absolute_timeout.as_secs(),
            touch_interval_secs: None,
            max_sessions_per_subject: p.max_sessions_per_subject.unwrap_or(0),
            on_session_limit: OnLimit::EvictOldest,
            max_anonymous_sessions: p.max_anonymous_sessions.unwrap_or(0),
            attributes_max_bytes: p.attributes.max_bytes,
            attributes_max_depth: p.attributes.max_depth,
            fingerprint: Fingerprint::Off,
            fingerprint_includes_ip: false,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// The data directory (store, keys, API keys).
    pub data_dir: PathBuf,
    /// The store.
    pub store: StoreKind,
    /// The store's URL (`store = "redis"`: `redis://host:6379/0`, or
    /// `redis+cluster://host:port,host:port` for a Redis Cluster;
    /// `store = "postgres"`: `postgres://user@host:5432/database`).
    pub store_url: Option<String>,
    /// The prefix of every key a remote store writes.
    pub store_prefix: String,
    /// A remote store keeps a per-node cache of validated sessions,
    /// invalidated on every node before a change returns.
    pub near_cache: bool,
    /// Longest an entry of the near-cache is served, milliseconds.
    pub near_cache_ttl_ms: u64,
    /// Most sessions the near-cache holds.
    pub near_cache_entries: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest request header block, bytes.
    pub max_header_bytes: usize,
    /// Seconds between two background purges.
    pub purge_interval_secs: u64,
    /// Seconds to drain in-flight requests on shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds a client may take to send a request's headers, and again
    /// its body (slow-client protection: 408 after); 0 turns it off.
    pub header_read_timeout_secs: u64,
    /// Most open client connections (0: 90% of the open-files limit, which
    /// sessiond raises to its hard limit at start). A connection past the
    /// cap is closed at once and counted.
    pub max_connections: usize,
    /// TLS certificate chain (PEM, leaf first); with `tls_key`, the
    /// listener speaks HTTPS. Re-read on `SIGHUP`.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`info`, `sessiond=debug`, …); `RUST_LOG` wins.
    pub log_level: String,
    /// `/metrics` needs an API key with the `admin` scope (default: no key;
    /// sessiond warns at start when it listens on a non-loopback address).
    pub metrics_require_key: bool,
    /// Session policy.
    pub policy: PolicyConfig,
    /// Access JWTs and refresh tokens.
    pub tokens: TokensConfig,
    /// Rate limits (per node).
    pub rate_limits: crate::http::RateLimitConfig,
    /// Upstream OAuth/OpenID providers whose grants sessiond keeps.
    pub upstream: UpstreamConfig,
}

/// A log filter whose every directive is a level or names one
/// (`target=level`): a bare word such as `loud` is a valid `EnvFilter`
/// (all events of a target called "loud") but never what was meant.
fn log_filter_ok(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let directives_ok = filter.split(',').all(|d| {
        let d = d.trim();
        let level = d.rsplit_once('=').map_or(d, |(_, l)| l);
        LEVELS.contains(&level.to_ascii_lowercase().as_str())
    });
    directives_ok && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:7700".into(),
            data_dir: PathBuf::from("./sessiond-data"),
            store: StoreKind::Embedded,
            store_url: None,
            store_prefix: "sessiond".into(),
            near_cache: true,
            near_cache_ttl_ms: 5_000,
            near_cache_entries: 100_000,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            purge_interval_secs: 60,
            shutdown_grace_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 0,
            tls_cert: None,
            tls_key: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            metrics_require_key: false,
            policy: PolicyConfig::default(),
            tokens: TokensConfig::default(),
            rate_limits: crate::http::RateLimitConfig::default(),
            upstream: UpstreamConfig::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a bad value.
    #[error("invalid config field `{field}`: {why}")]
    Invalid {
        /// The field, as written in TOML (`policy.idle_timeout_secs`).
        field: String,
        /// What is wrong.
        why: String,
    },
    /// The file or the environment could not be read or parsed.
    #[error("{0}")]
    Load(String),
}

fn invalid(field: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

impl Config {
    /// Loads from an optional TOML file and the given environment, and
    /// validates.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut b = config::Config::builder();
        if let Some(f) = file {
            // Read here rather than by path: an empty file (or /dev/null,
            // which is not a regular file) means all defaults.
            let text = std::fs::read_to_string(f).map_err(|e| {
                ConfigError::Load(if e.kind() == std::io::ErrorKind::NotFound {
                    format!("config file {} does not exist", f.display())
                } else {
                    format!("cannot read config file {}: {e}", f.display())
                })
            })?;
            b = b.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        let vars: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("SESSIOND_") && !NOT_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        b = b.add_source(
            config::Environment::with_prefix("SESSIOND")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                // `SESSIOND_TOKENS__CLAIMS=role,plan`
                .list_separator(",")
                .with_list_parse_key("tokens.claims")
                .source(Some(vars)),
        );
        let cfg: Config = b
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads using the process environment; `file` defaults to
    /// `SESSIOND_CONFIG`.
    pub fn from_process(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let from_env = env.get("SESSIOND_CONFIG").map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(from_env);
        Self::load(file.as_deref(), &env)
    }

    /// Checks every field; names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid("max_body_bytes", "must be from 1024 to 16777216"));
        }
        if !(1024..=1024 * 1024).contains(&self.max_header_bytes) {
            return Err(invalid("max_header_bytes", "must be from 1024 to 1048576"));
        }
        if self.purge_interval_secs == 0 {
            return Err(invalid("purge_interval_secs", "must be at least 1"));
        }
        if let Ok(k) = std::env::var("SESSIOND_ADMIN_KEY")
            && k.chars().count() < crate::api_keys::MIN_ENV_ADMIN_KEY
        {
            return Err(invalid(
                "SESSIOND_ADMIN_KEY",
                "must be at least 32 characters",
            ));
        }
        if !log_filter_ok(&self.log_level) {
            return Err(invalid(
                "log_level",
                "a level (error, warn, info, debug, trace, off) or target=level directives",
            ));
        }
        self.policy()?;
        if self.store == StoreKind::Redis {
            let url = self.store_url.as_deref().unwrap_or_default();
            if url.is_empty() {
                return Err(invalid(
                    "store_url",
                    "required for store = \"redis\" (e.g. redis://127.0.0.1:6379/0)",
                ));
            }
            const SCHEMES: [&str; 4] = ["redis://", "rediss://", "unix://", "redis+cluster://"];
            if !SCHEMES.iter().any(|p| url.starts_with(p)) {
                return Err(invalid(
                    "store_url",
                    "for store = \"redis\": redis://, rediss://, unix:// or redis+cluster://host:port,host:port",
                ));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid(
                if self.tls_cert.is_some() {
                    "tls_key"
                } else {
                    "tls_cert"
                },
                "tls_cert and tls_key go together (both, or neither)",
            ));
        }
        if self.store == StoreKind::Postgres {
            let url = self.store_url.as_deref().unwrap_or_default();
            if url.is_empty() {
                return Err(invalid(
                    "store_url",
                    "required for store = \"postgres\" (e.g. postgres://postgres@127.0.0.1:5432/app)",
                ));
            }
            if !["postgres://", "postgresql://"]
                .iter()
                .any(|p| url.starts_with(p))
            {
                return Err(invalid(
                    "store_url",
                    "for store = \"postgres\": postgres://user@host:port/database or postgresql://…",
                ));
            }
        }
        if self.store_prefix.is_empty() || self.store_prefix.contains(['{', '}', ' ']) {
            return Err(invalid(
                "store_prefix",
                "must be non-empty, without braces or spaces",
            ));
        }
        if self.near_cache && (self.near_cache_ttl_ms == 0 || self.near_cache_entries == 0) {
            return Err(invalid(
                "near_cache_ttl_ms",
                "near_cache_ttl_ms and near_cache_entries must be above 0 (or near_cache = false)",
            ));
        }
        self.tokens.access_config()?;
        if self.tokens.algorithm()? == sessionkit::jwt::SigningAlgorithm::HS256
            && self.tokens.hs256_secret.len() < sessionkit::jwt::MIN_HS256_SECRET_LEN
        {
            return Err(invalid(
                "tokens.hs256_secret",
                "HS256 needs a secret of at least 32 bytes",
            ));
        }
        self.upstream.validate()?;
        Ok(())
    }

    /// The PostgreSQL schema of `store = "postgres"`: `store_prefix`,
    /// lowercased, every character other than `[a-z0-9_]` as `_`, an `_`
    /// in front if it starts with a digit, at most 63 bytes; a `pg_` start
    /// becomes `sk_pg_`.
    #[must_use]
    pub fn postgres_schema(&self) -> String {
        let mut s: String = self
            .store_prefix
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            s.insert(0, '_');
        }
        if s.starts_with("pg_") {
            s.insert_str(0, "sk_");
        }
        s.truncate(63);
        s
    }

    /// The listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen
            .parse()
            .map_err(|_| invalid("listen", "must be address:port, e.g. 127.0.0.1:7700"))
    }

    /// The engine policy.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let p = &self.policy;
        const MAX_SECS: u64 = 100 * 365 * 24 * 3600;
        for (field, v) in [
            ("idle_timeout_secs", p.idle_timeout_secs),
            ("absolute_timeout_secs", p.absolute_timeout_secs),
            ("anonymous_idle_timeout_secs", p.anonymous_idle_timeout_secs),
            (
                "anonymous_absolute_timeout_secs",
                p.anonymous_absolute_timeout_secs,
            ),
            ("touch_interval_secs", p.touch_interval_secs.unwrap_or(0)),
        ] {
            if v > MAX_SECS {
                return Err(invalid(
                    &format!("policy.{field}"),
                    "must be at most 100 years",
                ));
            }
        }
        let mut b = Policy::builder()
            .idle_timeout_secs(p.idle_timeout_secs)
            .absolute_timeout_secs(p.absolute_timeout_secs)
            .anonymous_idle_timeout_secs(p.anonymous_idle_timeout_secs)
            .anonymous_absolute_timeout_secs(p.anonymous_absolute_timeout_secs);
        if let Some(t) = p.touch_interval_secs {
            b = b.touch_interval_secs(t);
        }
        b.max_sessions_per_subject(
            (p.max_sessions_per_subject > 0).then_some(p.max_sessions_per_subject),
            match p.on_session_limit {
                OnLimit::EvictOldest => OnSessionLimit::EvictOldest,
                OnLimit::Refuse => OnSessionLimit::Refuse,
            },
        )
        .max_anonymous_sessions((p.max_anonymous_sessions > 0).then_some(p.max_anonymous_sessions))
        .attribute_limits(AttributeLimits {
            max_bytes: p.attributes_max_bytes,
            max_depth: p.attributes_max_depth,
        })
        .fingerprint(
            match p.fingerprint {
                Fingerprint::Off => FingerprintMode::Off,
                Fingerprint::Report => FingerprintMode::Report,
                Fingerprint::Enforce => FingerprintMode::Enforce,
            },
            p.fingerprint_includes_ip,
        )
        .build()
        .map_err(|e| invalid(&policy_field(e.field), e.why))
    }
}

/// The config name of a [`Policy`] field named by `Policy::validate`.
fn policy_field(f: &str) -> String {
    match f {
        "attributes.max_bytes" => "policy.attributes_max_bytes".into(),
        "attributes.max_depth" => "policy.attributes_max_depth".into(),
        "max_sessions_per_subject" | "max_anonymous_sessions" => format!("policy.{f}"),
        other => format!("policy.{other}_secs"),
    }
}

#[cfg(test)]
mod log_filter_tests {
    use super::log_filter_ok;

    #[test]
    fn levels_and_directives() {
        for ok in [
            "info",
            "warn",
            "sessiond=debug,info",
            "hyper=off,sessiond=trace",
        ] {
            assert!(log_filter_ok(ok), "{ok}");
        }
        for bad in ["loud", "", "sessiond=loud", "info,,"] {
            assert!(!log_filter_ok(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests;
