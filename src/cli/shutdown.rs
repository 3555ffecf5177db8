//! Ctrl-C and SIGTERM, for the commands that stop cleanly on either.

use indicatif::ProgressBar;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
pub async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// A stop that turns true on the first signal, once `note` is printed above
/// the bar; abort the task when the work is done.
pub fn stop_on_signal(
    bar: &ProgressBar,
    note: &'static str,
) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (stop_tx, stop) = watch::channel(false);
    let listener = tokio::spawn({
        let bar = bar.clone();
        async move {
            signal().await;
            bar.println(note);
            let _ = stop_tx.send(true);
        }
    });
    (stop, listener)
}
