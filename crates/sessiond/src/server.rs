//! `sessiond serve`: binds the listener first (so that a start that cannot
//! listen leaves the data dir as it was), prepares the data dir (server
//! keys, API keys), opens the store the config names as a [`Backend`], and
//! serves the one router (`AppState<Backend>`) on hyper's HTTP/1.1
//! connection builder (which caps header blocks: 431) until SIGTERM/SIGINT,
//! then drains open connections (logging how many it waits for; a second
//! signal stops waiting) and flushes and closes the store
//! ([`Backend::close`]). A background task purges expired sessions every
//! `purge_interval_secs`.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use sessionkit::{EngineKeys, SessionManager};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::api_keys::{ADMIN_KEY_FILE, API_KEYS_FILE, ApiKeys};
use crate::app::{AppOptions, AppState, router};
use crate::backend::Backend;
use crate::config::{Config, LogFormat};
use crate::http::HttpLimits;
use crate::server_keys::{self, SERVER_KEYS_FILE};
use crate::{fsutil, shutdown, telemetry};

/// Sub-directory of the data dir holding the embedded store.
pub const STORE_DIR: &str = "store";

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data dir could not be prepared.
    #[error("data dir {path}: {why}")]
    DataDir {
        /// The path.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The server keys.
    #[error(transparent)]
    Keys(#[from] server_keys::KeyFileError),
    /// The signing keys of access tokens (file, or HS256 secret).
    #[error(transparent)]
    SigningKeys(#[from] crate::signing_keys::StartError),
    /// The API keys.
    #[error(transparent)]
    ApiKeys(#[from] crate::api_keys::ApiKeyError),
    /// The store or the engine could not start.
    #[error("cannot start the engine: {0}")]
    Engine(#[from] sessionkit::EngineError),
    /// The TLS certificate or key.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The listener.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Installs the log subscriber (stderr; `RUST_LOG` wins over the config).
pub fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match cfg.log_format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

/// Written last on a first start, once the keys, the store and the API
/// keys all exist: from then on nothing is ever created again, and a
/// missing key file is an error.
const INITIALIZED_FILE: &str = "initialized";

/// Whether this data dir still needs its first-start setup: it has never
/// finished one. A first start that was interrupted (killed, or the store
/// failed to open) resumes on the next start, loading what it had written.
fn is_first_start(dir: &Path) -> bool {
    if dir.join(INITIALIZED_FILE).exists() {
        return false;
    }
    // A data dir set up before the marker existed.
    ![SERVER_KEYS_FILE, API_KEYS_FILE, STORE_DIR]
        .iter()
        .all(|f| dir.join(f).exists())
}

/// Runs the server until a shutdown signal; a second signal during the
/// drain stops waiting for open connections.
pub async fn serve(cfg: Config) -> Result<(), ServeError> {
    let (stop, force) = shutdown::signals();
    serve_with(cfg, stop, force).await
}

/// Runs the server until `stop` resolves, then drains open connections
/// for up to `shutdown_grace_secs`.
pub async fn serve_until(
    cfg: Config,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with(cfg, stop, std::future::pending()).await
}

/// Runs the server until `stop` resolves, then drains open connections
/// for up to `shutdown_grace_secs`, or until `force` resolves.
///
/// The listener is bound before anything is written: a start that cannot
/// listen (the port is in use) leaves the data dir as it was.
pub async fn serve_with(
    cfg: Config,
    stop: impl Future<Output = ()> + Send,
    force: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    cfg.validate()?;
    // The certificate before anything else: a bad one writes nothing.
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::Tls::load(cert, key)?),
        _ => None,
    };
    let addr = cfg.listen_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let dir = cfg.data_dir.clone();
    fsutil::ensure_private_dir(&dir).map_err(|e| ServeError::DataDir {
        path: dir.display().to_string(),
        why: e.to_string(),
    })?;
    let first_start = is_first_start(&dir);
    let engine_keys = server_keys::load_or_create(&dir, first_start)?;
    let schema = cfg.postgres_schema();
    let store = crate::backend::StoreConfig {
        kind: cfg.store,
        url: cfg.store_url.as_deref(),
        prefix: &cfg.store_prefix,
        schema: &schema,
        near_cache: cfg.near_cache.then(|| sessionkit_core::NearCacheConfig {
            capacity: cfg.near_cache_entries,
            ttl: std::time::Duration::from_millis(cfg.near_cache_ttl_ms),
        }),
    };
    let backend = Backend::open(&store, &dir)
        .await
        .map_err(|e| ServeError::DataDir {
            path: match cfg.store {
                crate::config::StoreKind::Redis | crate::config::StoreKind::Postgres => {
                    "store_url".into()
                }
                _ => dir.join(STORE_DIR).display().to_string(),
            },
            why: e.to_string(),
        })?;
    let parts = ServeParts {
        cfg,
        listener,
        tls,
        backend: backend.clone(),
        engine_keys,
        first_start,
    };
    let served = run(parts, stop, force).await;
    // Whatever happened, the store is closed last: every request that
    // could write has ended (or `run` failed before serving any).
    backend.close();
    served
}

/// What [`run`] serves: the validated config, the bound listener, the
/// opened store, the server keys, and whether this is the data dir's first
/// start.
struct ServeParts {
    cfg: Config,
    listener: TcpListener,
    tls: Option<crate::tls::Tls>,
    backend: Backend,
    engine_keys: EngineKeys,
    first_start: bool,
}

/// Builds the engine and the app over `parts.backend` and serves until
/// `stop` resolves, then drains open connections (until they are closed,
/// the grace period ends, or `force` resolves). The caller closes the
/// store.
async fn run(
    parts: ServeParts,
    stop: impl Future<Output = ()> + Send,
    force: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let ServeParts {
        cfg,
        listener,
        tls,
        backend,
        engine_keys,
        first_start,
    } = parts;
    let store_kind = backend.kind();
    let access = cfg.tokens.access_config()?;
    let wall_secs = sessionkit_core::Clock::now(&sessionkit_core::SystemClock)
        .as_millis()
        .div_euclid(1000);
    let (ring, signing_keys) =
        crate::signing_keys::load_or_create(&cfg.data_dir, first_start, &cfg.tokens, wall_secs)?;
    let engine = SessionManager::builder(backend.clone(), engine_keys)
        .with_metrics_prefix("sessiond")
        .with_policy(cfg.policy()?)
        .with_access_tokens(ring, access)
        .build()
        .await?;
    let now = engine.now();
    let (api_keys, admin) = ApiKeys::load_or_create(&cfg.data_dir, first_start, now)?;
    if let Some(admin) = admin {
        let path = cfg.data_dir.join(ADMIN_KEY_FILE);
        tracing::info!(
            "first start: created an admin API key in {} (mode 0600)",
            path.display()
        );
        if std::io::stdout().is_terminal() {
            println!(
                "admin API key (also in {}): {}",
                path.display(),
                admin.secret
            );
        }
    }
    if first_start {
        let marker = cfg.data_dir.join(INITIALIZED_FILE);
        fsutil::write_atomic(&marker, b"1\n").map_err(|e| ServeError::DataDir {
            path: marker.display().to_string(),
            why: e.to_string(),
        })?;
    }
    if let Ok(k) = std::env::var("SESSIOND_ADMIN_KEY") {
        api_keys.add_env_admin_key(&k, now)?;
        tracing::info!("SESSIOND_ADMIN_KEY is set: accepting it as an extra admin key");
    }
    let upstream = if cfg.upstream.providers.is_empty() {
        None
    } else {
        let keys = crate::vault_keys::load_or_create(&cfg.data_dir)?;
        let vault = sessionkit::upstream::UpstreamVault::new(keys, cfg.upstream.providers())?
            .with_metrics_prefix("sessiond");
        tracing::info!(
            providers = cfg.upstream.providers.len(),
            "upstream token vault on"
        );
        Some(Arc::new(vault))
    };
    let metrics = telemetry::install_recorder();
    engine.describe_metrics();
    let state = AppState::new(
        engine,
        api_keys,
        AppOptions {
            limits: HttpLimits {
                max_body_bytes: cfg.max_body_bytes,
                max_header_bytes: cfg.max_header_bytes,
                body_read_timeout: (cfg.header_read_timeout_secs > 0)
                    .then(|| Duration::from_secs(cfg.header_read_timeout_secs)),
            },
            metrics: metrics.clone(),
            signing_keys: Some(signing_keys),
            rate_limits: Arc::new(crate::http::RateLimits::new(&cfg.rate_limits)),
            metrics_require_key: cfg.metrics_require_key,
            upstream,
            ..AppOptions::for_backend(&backend)
        },
    );
    let purge = spawn_purge(state.clone(), Duration::from_secs(cfg.purge_interval_secs));
    let refresher = spawn_upstream_refresher(state.clone(), &cfg.upstream);
    let usage = spawn_usage_flush(state.clone());
    let upkeep = metrics.map(|h| {
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(5));
            loop {
                t.tick().await;
                h.run_upkeep();
            }
        })
    });
    let reload = crate::tls::spawn_sighup_handler(tls.clone());
    let addr = cfg.listen_addr()?;
    let local = listener.local_addr().unwrap_or(addr);
    warn_if_public(local, cfg.metrics_require_key);
    tracing::info!(store = store_kind, data_dir = %cfg.data_dir.display(), tls = tls.is_some(), "sessiond listening on {local}");

    let app = router(state.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    if cfg.header_read_timeout_secs > 0 {
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_secs));
    } else {
        http.header_read_timeout(None);
    }
    http.keep_alive(true)
        // Header blocks past our JSON 431 (http/limits.rs) but beyond this
        // buffer get hyper's own bare 431.
        .max_buf_size((cfg.max_header_bytes * 4).max(8192));
    let graceful = GracefulShutdown::new();
    let cap = connection_cap(cfg.max_connections);
    let handshake_timeout = Duration::from_secs(cfg.header_read_timeout_secs.max(1));
    let open = Arc::new(Semaphore::new(cap));
    let mut accept_log = LogLimiter::default();
    let mut refused_log = LogLimiter::default();
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors, most often: wait a little
                        // (no busy loop), and log once in a while.
                        if let Some(suppressed) = accept_log.due() {
                            tracing::warn!(error = %e, suppressed, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
                    // At the cap: closed at once, so that the process keeps
                    // file descriptors for the connections it serves.
                    drop(stream);
                    metrics::counter!("sessiond_connections_refused_total").increment(1);
                    if let Some(suppressed) = refused_log.due() {
                        tracing::warn!(max_connections = cap, suppressed, "connection refused: too many open connections");
                    }
                    continue;
                };
                metrics::gauge!("sessiond_connections_open").increment(1.0);
                let _ = stream.set_nodelay(true);
                let svc = TowerToHyperService::new(app.clone().map_request(
                    move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        req
                    },
                ));
                let http = http.clone();
                let watcher = graceful.watcher();
                let handshake = tls.as_ref().map(crate::tls::Tls::acceptor);
                tokio::spawn(async move {
                    let served = match handshake {
                        None => watcher.watch(http.serve_connection(TokioIo::new(stream), svc)).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(tls_stream)) => {
                                    watcher.watch(http.serve_connection(TokioIo::new(tls_stream), svc)).await
                                }
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "TLS handshake failed");
                                    Ok(())
                                }
                                Err(_) => {
                                    tracing::debug!("TLS handshake timed out");
                                    Ok(())
                                }
                            }
                        }
                    };
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(permit);
                    metrics::gauge!("sessiond_connections_open").decrement(1.0);
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    let still_open = || cap.saturating_sub(open.available_permits());
    tracing::info!(
        open_connections = still_open(),
        grace_secs = cfg.shutdown_grace_secs,
        "draining: {} connection(s) open; waiting for at most {} s (a second SIGINT or SIGTERM stops waiting)",
        still_open(),
        cfg.shutdown_grace_secs
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!(
            open_connections = still_open(),
            "grace period of {} s over: closing {} connection(s) still open",
            cfg.shutdown_grace_secs,
            still_open()
        ),
        () = force => tracing::warn!(
            open_connections = still_open(),
            "drain cut short: closing {} connection(s) still open",
            still_open()
        ),
    }
    purge.abort();
    if let Some(r) = refresher {
        r.abort();
    }
    usage.abort();
    reload.abort();
    flush_usage(&state);
    if let Some(u) = upkeep {
        u.abort();
    }
    // The engine's time, recorded before the store's final flush, so that a
    // restart with a clock set back revives nothing this run saw expire.
    if let Err(e) = state.engine().persist_clock_floor().await {
        tracing::warn!(error = %e, "could not record the clock floor at shutdown");
    }
    drop(app);
    drop(state);
    tracing::info!("sessiond stopped serving");
    Ok(())
}

/// Warns when `local` is reachable from other hosts: `/healthz`, `/readyz`
/// and `/openapi.json` (and `/metrics`, unless `metrics_require_key`)
/// answer without an API key.
fn warn_if_public(local: SocketAddr, metrics_require_key: bool) {
    if local.ip().is_loopback() {
        return;
    }
    if metrics_require_key {
        tracing::warn!(
            listen = %local,
            "bound to a non-loopback address: /healthz, /readyz and /openapi.json answer without an API key (/metrics needs an admin key); keep sessiond on a private network"
        );
    } else {
        tracing::warn!(
            listen = %local,
            "bound to a non-loopback address: /metrics, /openapi.json, /healthz and /readyz answer without an API key; set metrics_require_key = true and keep sessiond on a private network"
        );
    }
}

/// Logs a repeated condition at most once every 5 s, with how many times it
/// was not logged in between.
#[derive(Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// `Some(suppressed since the last line)` when a line is due.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(5))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Raises the soft open-files limit to the hard one, and returns the
/// connection cap: `configured`, or (0) 90% of that limit less what the
/// store, the log and the listener need.
fn connection_cap(configured: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let auto = usize::try_from(limit / 10 * 9)
        .unwrap_or(usize::MAX)
        .saturating_sub(64)
        .max(16);
    let cap = if configured > 0 { configured } else { auto };
    if configured > 0 && u64::try_from(configured).unwrap_or(u64::MAX) > limit {
        tracing::warn!(
            max_connections = configured,
            open_files_limit = limit,
            "max_connections is above the open-files limit"
        );
    }
    tracing::info!(
        max_connections = cap,
        open_files_limit = limit,
        "connection cap"
    );
    cap.min(Semaphore::MAX_PERMITS)
}

/// Writes the API keys' recorded last uses, if any changed.
fn flush_usage(state: &AppState<Backend>) {
    if let Err(e) = state.api_keys().flush_usage() {
        tracing::warn!(error = %e, "could not record the API keys' last use");
    }
}

/// Every minute, the API keys' last uses are written to their file.
fn spawn_usage_flush(state: AppState<Backend>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_secs(60));
        t.tick().await;
        loop {
            t.tick().await;
            let s = state.clone();
            let _ = tokio::task::spawn_blocking(move || flush_usage(&s)).await;
        }
    })
}

/// The upstream vault's background refresher (S2's "every minute, the
/// grants that expire in the next five"), when a provider is configured
/// and `upstream.refresh_interval_secs` is not 0.
fn spawn_upstream_refresher(
    state: AppState<Backend>,
    cfg: &crate::config::UpstreamConfig,
) -> Option<tokio::task::JoinHandle<()>> {
    let vault = state.options().upstream.clone()?;
    if cfg.refresh_interval_secs == 0 {
        return None;
    }
    let every = Duration::from_secs(cfg.refresh_interval_secs);
    let horizon = Duration::from_secs(cfg.refresh_horizon_secs);
    let concurrency = cfg.refresh_concurrency;
    Some(tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            let n = vault
                .refresh_due(state.engine(), horizon, concurrency)
                .await;
            if n > 0 {
                tracing::debug!(grants = n, "background upstream refresh pass");
            }
        }
    }))
}

fn spawn_purge(state: AppState<Backend>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t.tick().await;
        loop {
            t.tick().await;
            match state.engine().purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "purged expired sessions"),
                Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
            }
        }
    })
}
