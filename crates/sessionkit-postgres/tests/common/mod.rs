//! What the PostgreSQL tests share: the server's URL, whether it answers,
//! random schema names and a guard that drops a schema.
#![allow(dead_code, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

/// The server the tests use.
pub(crate) const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `DATABASE_URL`, or [`DEFAULT_URL`].
pub(crate) fn url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A fresh random schema name.
pub(crate) fn schema() -> String {
    format!("sk_test_{:032x}", rand::random::<u128>())
}

/// Runs `f` with a plain connection on a runtime of its own (usable from
/// `Drop` and outside any runtime).
pub(crate) fn with_client<T: Send + 'static>(
    f: impl AsyncFnOnce(&tokio_postgres::Client) -> T + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async move {
            let mut cfg: tokio_postgres::Config = url().parse().ok()?;
            cfg.connect_timeout(Duration::from_secs(2));
            let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.ok()?;
            tokio::spawn(conn);
            Some(f(&client).await)
        })
    })
    .join()
    .ok()
    .flatten()
}

/// Whether a PostgreSQL answers at the URL (checked once per test binary).
pub(crate) fn reachable() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    *UP.get_or_init(|| {
        let up = with_client(async |c| c.simple_query("SELECT 1").await.is_ok()) == Some(true);
        if !up {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true but no PostgreSQL answers at {}", url());
            }
            // Written to the process's stderr, not the test's captured one.
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: no PostgreSQL at {} (set DATABASE_URL); sessionkit-postgres tests skipped",
                url()
            );
        }
        up
    })
}

/// Drops its schema (and everything in it) when dropped.
pub(crate) struct DropSchema(pub(crate) String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0);
        let _ = with_client(async move |c| c.batch_execute(&sql).await.is_ok());
    }
}
