//! The signal that starts a graceful shutdown: SIGINT or SIGTERM.
//!
//! Parlor handles both itself (actix-web's own handling is disabled) so that
//! every session gets a Close frame (1001) before the server stops; see
//! [`crate::Parlor::run_until`].

/// Completes at the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(err) => {
                log::warn!("cannot listen for SIGTERM ({err}); only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    log::info!("shutdown signal received");
}
