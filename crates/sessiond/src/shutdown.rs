//! Shutdown signals: SIGTERM or SIGINT (Ctrl-C) start a graceful shutdown:
//! stop accepting, drain in-flight requests, flush the store.

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
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
