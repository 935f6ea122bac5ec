//! The pipeline with a scripted guard: what callers see, what gets recorded, and what
//! happens when the recorder fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::{Caller, Denied, Principal, PrincipalKind, Resource};

/// Allows tools whose name starts with one of the caller's roles; fails records on demand.
#[derive(Default)]
struct ScriptedGuard {
    records: Mutex<Vec<CallRecord>>,
    fail_records: std::sync::atomic::AtomicBool,
    refuse: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Guard for ScriptedGuard {
    fn check_tool(&self, caller: &Caller, name: &str) -> Result<(), Denied> {
        if caller.principal.roles.iter().any(|r| name.starts_with(r.as_str())) {
            Ok(())
        } else {
            Err(Denied { missing: format!("tool '{name}'") })
        }
    }
    fn check_resource(&self, _: &Caller, resource: &Resource) -> Result<(), Denied> {
        Err(Denied { missing: format!("{resource:?}") })
    }
    async fn admit(&self, _: &Caller, _: &str, _: Option<&str>) -> Result<crate::Admission, Refusal> {
        if self.refuse.load(Ordering::SeqCst) { Err(Refusal::AuditUnavailable) } else { Ok(Default::default()) }
    }
    async fn record(&self, record: CallRecord) -> Result<(), Refusal> {
        if self.fail_records.load(Ordering::SeqCst) {
            return Err(Refusal::AuditUnavailable);
        }
        self.records.lock().unwrap().push(record);
        Ok(())
    }
}

struct Box1;

#[async_trait]
impl Toolbox for Box1 {
    fn name(&self) -> &str {
        "box"
    }
    fn tools(&self) -> Vec<ToolSpec> {
        ["read_a", "write_b", "panic_c", "touch_d"]
            .iter()
            .map(|n| ToolSpec::new::<serde_json::Value>(n, "test tool"))
            .collect()
    }
    async fn call_tool(
        &self,
        tool: &str,
        _: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        match tool {
            "panic_c" => panic!("boom"),
            "touch_d" => {
                context.authorize(&Resource::Command { name: "rm".into() })?;
                Ok(ToolOutput::text("touched"))
            }
            _ => Ok(ToolOutput::text(tool)),
        }
    }
}

fn context(roles: &[&str]) -> CallContext {
    let principal = Principal {
        id: "p".into(),
        kind: PrincipalKind::ApiToken,
        roles: roles.iter().map(|r| r.to_string()).collect(),
    };
    CallContext::detached(Caller::local(principal))
}

fn pipeline() -> (Pipeline, Arc<ScriptedGuard>) {
    let guard = Arc::new(ScriptedGuard::default());
    (Pipeline::builder().toolbox(Arc::new(Box1)).guard(guard.clone()).build().unwrap(), guard)
}

#[tokio::test]
async fn callers_see_and_call_only_what_they_are_granted() {
    let (pipeline, guard) = pipeline();
    let reader = context(&["read"]);
    let names: Vec<String> = pipeline.list_tools(&reader).await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["read_a"]);
    assert_eq!(
        pipeline.call_tool("read_a", None, &reader).await.unwrap().content,
        vec![crate::Content::text("read_a")]
    );
    let forbidden = pipeline.call_tool("write_b", None, &reader).await.unwrap_err();
    let unknown = pipeline.call_tool("nope", None, &reader).await.unwrap_err();
    assert_eq!(forbidden.to_string(), "unknown tool: write_b", "a forbidden tool looks unknown");
    assert_eq!(unknown.to_string(), "unknown tool: nope");
    let records = guard.records.lock().unwrap();
    let summary: Vec<(&str, Option<&str>, bool, Outcome)> =
        records.iter().map(|r| (r.method.as_str(), r.target.as_deref(), r.allowed, r.outcome)).collect();
    assert_eq!(
        summary,
        [
            ("tools/list", None, true, Outcome::Ok),
            ("tools/call", Some("read_a"), true, Outcome::Ok),
            ("tools/call", Some("write_b"), false, Outcome::Denied),
            ("tools/call", Some("nope"), true, Outcome::Error),
        ]
    );
    assert_eq!(
        records[2].detail.as_deref(),
        Some("permission denied: tool 'write_b'"),
        "the audit names the permission"
    );
}

#[tokio::test]
async fn resource_denials_and_panics_are_tool_errors_and_recorded() {
    let (pipeline, guard) = pipeline();
    let all = context(&["read", "write", "panic", "touch"]);
    let denied = pipeline.call_tool("touch_d", None, &all).await.unwrap();
    assert!(denied.is_error);
    assert_eq!(denied.content, vec![crate::Content::text("permission denied: Command { name: \"rm\" }")]);
    let panicked = pipeline.call_tool("panic_c", None, &all).await.unwrap();
    assert!(panicked.is_error, "a panic is an isError result, not a crash");
    let outcomes: Vec<Outcome> = guard.records.lock().unwrap().iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Denied, Outcome::Error]);
    assert_eq!(pipeline.in_flight(), 0);
}

#[tokio::test]
async fn a_result_that_cannot_be_recorded_is_withheld() {
    let (pipeline, guard) = pipeline();
    let reader = context(&["read"]);
    guard.fail_records.store(true, Ordering::SeqCst);
    let error = pipeline.call_tool("read_a", Some(json!({}).as_object().cloned().unwrap()), &reader).await.unwrap_err();
    assert!(matches!(error, CallError::Refused(Refusal::AuditUnavailable)), "{error}");
    guard.fail_records.store(false, Ordering::SeqCst);
    guard.refuse.store(true, Ordering::SeqCst);
    let error = pipeline.call_tool("read_a", None, &reader).await.unwrap_err();
    assert!(matches!(error, CallError::Refused(_)), "refused before running: {error}");
    assert_eq!(guard.records.lock().unwrap().last().unwrap().outcome, Outcome::Refused);
}

#[tokio::test]
async fn cancellation_stops_the_tool_and_is_recorded() {
    struct Slow;
    #[async_trait]
    impl Toolbox for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn tools(&self) -> Vec<ToolSpec> {
            vec![ToolSpec::new::<serde_json::Value>("read_slow", "sleeps")]
        }
        async fn call_tool(&self, _: &str, _: Map<String, Value>, _: &CallContext) -> Result<ToolOutput, ToolError> {
            futures::future::pending::<()>().await;
            Ok(ToolOutput::text("never"))
        }
    }
    let guard = Arc::new(ScriptedGuard::default());
    let pipeline = Pipeline::builder().toolbox(Arc::new(Slow)).guard(guard.clone()).build().unwrap();
    let reader = context(&["read"]);
    reader.cancellation.cancel();
    let error = pipeline.call_tool("read_slow", None, &reader).await.unwrap_err();
    assert!(matches!(error, CallError::Cancelled));
    assert_eq!(guard.records.lock().unwrap()[0].outcome, Outcome::Cancelled);
}
