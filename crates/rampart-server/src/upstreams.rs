//! The server's side of the gateway: upstream tool pins kept in the store, and a changed
//! pinned tool written to the audit log.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use rampart_audit::{AuditEvent, Decision, Outcome};
use rampart_gateway::{Pin, PinStore};
use rampart_store::{PinRow, Store};

use crate::security::SecurityGuard;

/// [`PinStore`] over the `upstream_pins` table.
pub(crate) struct StorePins {
    store: Store,
    guard: Weak<SecurityGuard>,
}

impl StorePins {
    /// Pins in `store`; changes recorded in `guard`'s audit log.
    pub(crate) fn shared(store: Store, guard: &Arc<SecurityGuard>) -> Arc<dyn PinStore> {
        Arc::new(Self { store, guard: Arc::downgrade(guard) })
    }
}

#[async_trait]
impl PinStore for StorePins {
    async fn pins(&self, upstream: &str) -> Result<Vec<Pin>, String> {
        let rows = self.store.pins(upstream).await.map_err(|e| e.to_string())?;
        rows.into_iter()
            .map(|row| {
                let definition = serde_json::from_str(&row.definition)
                    .map_err(|e| format!("upstream_pins: {upstream}/{}: {e}", row.tool))?;
                Ok(Pin { tool: row.tool, fingerprint: row.fingerprint, definition, pinned_at_ms: row.pinned_at })
            })
            .collect()
    }

    async fn save(&self, upstream: &str, pin: &Pin) -> Result<(), String> {
        let row = PinRow {
            upstream: upstream.to_owned(),
            tool: pin.tool.clone(),
            fingerprint: pin.fingerprint.clone(),
            definition: pin.definition.to_string(),
            pinned_at: pin.pinned_at_ms,
        };
        self.store.save_pin(&row).await.map_err(|e| e.to_string())
    }

    async fn changed(&self, upstream: &str, tool: &str, diff: &str) {
        let Some(guard) = self.guard.upgrade() else { return };
        let Some(audit) = guard.audit() else { return };
        let event = AuditEvent {
            time: jiff::Timestamp::now(),
            request_id: None,
            session: None,
            principal: "system".into(),
            transport: "gateway".into(),
            remote_addr: None,
            method: "upstream/tool_changed".into(),
            tool: Some(tool.to_owned()),
            toolbox: Some(format!("upstream:{upstream}")),
            task: None,
            trace_id: None,
            arguments: serde_json::Value::Null,
            decision: Decision::Deny,
            outcome: Outcome::Denied,
            detail: Some(format!(
                "pinned definition changed; hidden until `rampart upstream approve {upstream} {tool}`:\n{diff}"
            )),
            duration_us: 0,
        };
        if let Err(error) = audit.record(event).await {
            tracing::error!(%error, upstream, tool, "the changed tool was not recorded in the audit log");
        }
    }
}
