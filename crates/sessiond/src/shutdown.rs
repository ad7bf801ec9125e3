//! Shutdown signals: the first SIGTERM or SIGINT (Ctrl-C) starts a graceful
//! shutdown (stop accepting, drain in-flight requests for up to
//! `shutdown_grace_secs`, flush the store); a second one, during the drain,
//! stops waiting for open connections: the store is flushed and the
//! process exits at once.

use std::future::Future;

/// The SIGTERM and SIGINT handlers, installed once.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        if term.is_none() || int.is_none() {
            tracing::warn!("cannot install signal handlers; falling back to Ctrl-C only");
        }
        Signals { term, int }
    }

    /// The name of the next signal.
    async fn recv(&mut self) -> &'static str {
        match (&mut self.term, &mut self.int) {
            (Some(t), Some(i)) => tokio::select! {
                _ = t.recv() => "SIGTERM",
                _ = i.recv() => "SIGINT",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers now (so a signal that arrives
/// right after start is not fatal) and returns two futures: the first
/// resolves on the first signal (start the graceful shutdown), the second
/// on the next one (stop draining). Each signal is logged. Must be called
/// inside the Tokio runtime.
pub fn signals() -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    let mut signals = Signals::install();
    tokio::spawn(async move {
        let name = signals.recv().await;
        tracing::info!("{name}: shutting down (a second SIGINT or SIGTERM exits at once)");
        let _ = first_tx.send(());
        let name = signals.recv().await;
        tracing::warn!("{name} again: exiting now, without waiting for open connections");
        let _ = second_tx.send(());
    });
    (
        async move {
            let _ = first_rx.await;
        },
        async move {
            let _ = second_rx.await;
        },
    )
}
