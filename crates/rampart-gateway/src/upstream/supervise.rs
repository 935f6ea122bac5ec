//! The supervisor of an upstream's primary session.

use super::*;

/// Keeps the primary session up: connect, list, wait for it to end, back off, again.
pub(super) async fn supervise(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        inner.set_phase(Phase::Starting, None, None);
        let began = Instant::now();
        match inner.connect(true).await {
            Ok(conn) => {
                let pid = conn.client.pid();
                inner.primary.store(Some(Arc::new(conn)));
                match inner.refresh().await {
                    Ok(()) => {
                        inner.set_phase(Phase::Ready, None, pid);
                        tracing::info!(upstream = %inner.name, tools = inner.view.load().tools.len(), "upstream ready");
                    }
                    Err(error) => {
                        tracing::warn!(upstream = %inner.name, %error, "upstream connected but its lists failed");
                        inner.set_phase(Phase::Ready, Some(error), pid);
                    }
                }
                inner.ready.notify_waiters();
                let changes = inner.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                if let Some(changes) = changes {
                    changes.changed().await;
                }
                // Wait for the session to end (or a restart to be asked for); a URL
                // upstream that went away is noticed by a ping now and then.
                let mut polls = 0u32;
                loop {
                    let Some(conn) = inner.primary.load_full().filter(|conn| !conn.is_closed()) else { break };
                    polls = polls.wrapping_add(1);
                    if polls.is_multiple_of(PING_EVERY_POLLS) {
                        let ping = tokio::time::timeout(PING_TIMEOUT, conn.client.request("ping", json!({})));
                        match ping.await {
                            Ok(Ok(_)) => {}
                            Ok(Err(error)) => conn.check(&error),
                            Err(_) => conn.broken.store(true, Ordering::Relaxed),
                        }
                        inner.close_idle_sessions().await;
                    }
                    drop(conn);
                    tokio::select! {
                        () = tokio::time::sleep(LIVENESS_POLL) => {}
                        () = inner.restart.notified() => break,
                    }
                }
                inner.primary.store(None);
                let message = "the upstream session ended (the process exited or the server went away)".to_owned();
                tracing::warn!(upstream = %inner.name, "{message}; restarting");
                let mut state = inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if began.elapsed() >= STABLE_AFTER {
                    state.attempts = 0;
                }
                drop(state);
                inner.set_phase(Phase::BackingOff, Some(message), None);
            }
            Err(error) => {
                tracing::warn!(upstream = %inner.name, %error, "upstream did not start");
                inner.set_phase(Phase::BackingOff, Some(error), None);
                inner.ready.notify_waiters();
            }
        }
        let delay = {
            let mut state = inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let delay = backoff(state.attempts);
            state.attempts = state.attempts.saturating_add(1);
            delay
        };
        // Holding `inner` here is fine: dropping the toolbox cancels this task.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = inner.restart.notified() => {}
        }
    }
}
