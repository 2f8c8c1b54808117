//! Other nodes' changes: a connection of its own (outside the pool) that
//! `LISTEN`s on `sb_changes` and forwards the resource name of each
//! notification another process sent. After every (re)connect it sends `""` — notifications sent while
//! it was away are lost, so everything must be re-read — and when the
//! connection drops (PostgreSQL restarting) it reconnects by itself.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// Listens until the receiver is gone.
pub(super) async fn run(
    config: tokio_postgres::Config,
    instance: String,
    wakeups: mpsc::UnboundedSender<String>,
) {
    let mut backoff = Duration::from_millis(100);
    while !wakeups.is_closed() {
        match listen(&config, &instance, &wakeups).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "store: change notifications interrupted; reconnecting");
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// One connection's worth of notifications.
async fn listen(
    config: &tokio_postgres::Config,
    instance: &str,
    wakeups: &mpsc::UnboundedSender<String>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (done_tx, mut done) = tokio::sync::oneshot::channel();
    let forward = wakeups.clone();
    let mine = format!("{instance}\n");
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let mut result = Ok(());
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    // `<instance>\n<resource>`: this process announces its
                    // own writes as it makes them.
                    let payload = n.payload();
                    if payload.starts_with(&mine) {
                        continue;
                    }
                    let resource = payload.split_once('\n').map_or(payload, |(_, r)| r);
                    if forward.send(resource.to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let _ = done_tx.send(());
        result
    });
    let listening = tokio::select! {
        r = client.batch_execute("LISTEN sb_changes") => r,
        _ = &mut done => Ok(()),
    };
    if listening.is_ok() {
        // Anything may have changed while nobody listened.
        let _ = wakeups.send(String::new());
    }
    let result = driver.await.unwrap_or(Ok(()));
    drop(client);
    listening.and(result)
}
