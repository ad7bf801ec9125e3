//! Shutdown signals: SIGTERM or SIGINT (Ctrl-C) start a graceful shutdown:
//! stop accepting, drain in-flight requests, flush the store.

use std::future::Future;

/// Installs the SIGTERM and SIGINT handlers now (so a signal that arrives
/// right after start is not fatal) and returns a future that resolves when
/// one of them arrives. Must be called inside the Tokio runtime.
pub fn signal() -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = i.recv() => tracing::info!("SIGINT: shutting down"),
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; falling back to Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
