//! One upstream session (`Conn`) and what its upstream sends by itself (`ConnEvents`):
//! routed to the call in flight, the subscribed sessions, or the catalog.

use super::*;

/// One upstream session and the calls in flight on it.
pub(super) struct Conn {
    pub(super) client: McpClient,
    pub(super) events: Arc<ConnEvents>,
    /// A request failed below JSON-RPC (the connection broke, the session is gone):
    /// the session is replaced on next use.
    pub(super) broken: AtomicBool,
}

impl Conn {
    pub(super) fn is_closed(&self) -> bool {
        self.broken.load(Ordering::Relaxed) || self.client.is_closed()
    }

    /// Notes that `error` broke the session, if it did.
    pub(super) fn check(&self, error: &ClientError) {
        if matches!(error, ClientError::Protocol(_) | ClientError::Connect { .. }) {
            self.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// Subscribed sessions of one URI on one upstream session.
pub(super) type Subscribers = Vec<(String, Arc<dyn ClientPeer>)>;

/// Routes what an upstream session sends by itself.
pub(super) struct ConnEvents {
    pub(super) upstream: Weak<Inner>,
    /// Shared by every principal (stateless upstream): logs and requests go to a caller
    /// only when exactly one call is in flight, so nothing reaches the wrong session.
    pub(super) shared: bool,
    pub(super) calls: Mutex<Vec<(u64, CallContext)>>,
    /// The latest call's context: on a principal's own session, a log the upstream sends
    /// between calls goes to the session that called last (requests never do).
    pub(super) last: Mutex<Option<CallContext>>,
    pub(super) last_used: Mutex<Instant>,
    pub(super) next_call: std::sync::atomic::AtomicU64,
    pub(super) subscriptions: Mutex<HashMap<String, Subscribers>>,
}

impl ConnEvents {
    /// The call in flight a message of the upstream belongs to: the latest one on a
    /// principal's own session, the only one on a shared session.
    pub(super) fn call_in_flight(&self) -> Option<CallContext> {
        let calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match (self.shared, calls.len()) {
            (_, 0) => None,
            (true, 1) | (false, _) => calls.last().map(|(_, context)| context.clone()),
            (true, _) => None,
        }
    }

    /// Where a log of the upstream goes: the call in flight, else (a principal's own
    /// session) the session that called last.
    pub(super) fn log_target(&self) -> Option<CallContext> {
        self.call_in_flight().or_else(|| {
            if self.shared {
                return None;
            }
            self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        })
    }

    /// Time since the last call entered.
    pub(super) fn idle_for(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner).elapsed()
    }

    pub(super) fn enter(self: &Arc<Self>, context: &CallContext) -> InFlight {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        if !self.shared {
            *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(context.clone());
        }
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, context.clone()));
        InFlight { events: self.clone(), id }
    }
}

/// A call registered on its upstream session until it ends.
pub(super) struct InFlight {
    pub(super) events: Arc<ConnEvents>,
    pub(super) id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut calls = self.events.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        calls.retain(|(id, _)| *id != self.id);
    }
}

#[async_trait]
impl ClientEvents for ConnEvents {
    fn notice(&self, notice: ServerNotice) {
        let Some(upstream) = self.upstream.upgrade() else { return };
        match notice {
            ServerNotice::ToolListChanged | ServerNotice::ResourceListChanged | ServerNotice::PromptListChanged => {
                tokio::spawn(async move { upstream.refresh_and_tell().await });
            }
            ServerNotice::Log(params) => {
                let level: LogLevel = serde_json::from_value(params["level"].clone()).unwrap_or(LogLevel::Info);
                let logger = params["logger"].as_str().map(str::to_owned);
                let data = params.get("data").cloned().unwrap_or(Value::Null);
                match self.log_target() {
                    Some(context) => {
                        tokio::spawn(async move { context.log(level, logger.as_deref(), data).await });
                    }
                    None => tracing::info!(upstream = %upstream.name, ?level, logger, %data, "upstream log"),
                }
            }
            ServerNotice::ResourceUpdated(uri) => {
                let peers: Vec<Arc<dyn ClientPeer>> = {
                    let subscriptions = self.subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    subscriptions
                        .get(&uri)
                        .map(|s| s.iter().map(|(_, peer)| peer.clone()).collect())
                        .unwrap_or_default()
                };
                tokio::spawn(async move {
                    for peer in peers {
                        peer.notify_resource_updated(&uri).await;
                    }
                });
            }
            ServerNotice::Progress(params) => {
                tracing::debug!(upstream = %upstream.name, %params, "progress for no call in flight");
            }
        }
    }

    /// Sampling and elicitation reach a person's client only on behalf of a call they
    /// made and are waiting for: outside one, the upstream is refused.
    async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        match self.call_in_flight() {
            Some(context) => context.request(method, params).await,
            None => Err(PeerError::Unsupported),
        }
    }
}
