//! The pipeline with a scripted guard: what callers see, what gets recorded, and what
//! happens when the recorder fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::{Caller, Denied, Principal, PrincipalKind, PromptSpec, ResourceSpec};

/// Allows tools, resources and prompts whose name starts with one of the caller's roles
/// (no typed scope); fails records on demand.
#[derive(Default)]
struct ScriptedGuard {
    records: Mutex<Vec<CallRecord>>,
    fail_records: std::sync::atomic::AtomicBool,
    refuse: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Guard for ScriptedGuard {
    fn authorize(&self, caller: &Caller, request: &Request<'_>) -> Result<(), Denied> {
        let named = matches!(request, Request::Tool { .. } | Request::Resource { .. } | Request::Prompt { .. });
        if named && caller.principal.roles.iter().any(|r| request.name().starts_with(r.as_str())) {
            Ok(())
        } else {
            Err(Denied { missing: request.to_string() })
        }
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
    async fn tools(&self) -> Vec<ToolSpec> {
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
                context.authorize(&Request::command("rm"))?;
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
    CallContext::detached(Caller::local(principal), Arc::new(ScriptedGuard::default()))
}

async fn pipeline() -> (Arc<Pipeline>, Arc<ScriptedGuard>) {
    let guard = Arc::new(ScriptedGuard::default());
    (Pipeline::builder(guard.clone()).toolbox(Arc::new(Box1)).build().await.unwrap(), guard)
}

#[tokio::test]
async fn callers_see_and_call_only_what_they_are_granted() {
    let (pipeline, guard) = pipeline().await;
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
    let summary: Vec<(&str, Option<&str>, bool, Outcome)> = records
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_deref(), r.decision == Decision::Allow, r.outcome))
        .collect();
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
    let (pipeline, guard) = pipeline().await;
    let all = context(&["read", "write", "panic", "touch"]);
    let denied = pipeline.call_tool("touch_d", None, &all).await.unwrap();
    assert!(denied.is_error);
    assert_eq!(denied.content, vec![crate::Content::text("permission denied: command 'rm'")]);
    let panicked = pipeline.call_tool("panic_c", None, &all).await.unwrap();
    assert!(panicked.is_error, "a panic is an isError result, not a crash");
    let outcomes: Vec<Outcome> = guard.records.lock().unwrap().iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Denied, Outcome::Error]);
    assert_eq!(pipeline.in_flight(), 0);
}

#[tokio::test]
async fn a_result_that_cannot_be_recorded_is_withheld() {
    let (pipeline, guard) = pipeline().await;
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
        async fn tools(&self) -> Vec<ToolSpec> {
            vec![ToolSpec::new::<serde_json::Value>("read_slow", "sleeps")]
        }
        async fn call_tool(&self, _: &str, _: Map<String, Value>, _: &CallContext) -> Result<ToolOutput, ToolError> {
            futures::future::pending::<()>().await;
            Ok(ToolOutput::text("never"))
        }
    }
    let guard = Arc::new(ScriptedGuard::default());
    let pipeline = Pipeline::builder(guard.clone()).toolbox(Arc::new(Slow)).build().await.unwrap();
    let reader = context(&["read"]);
    reader.cancellation.cancel();
    let error = pipeline.call_tool("read_slow", None, &reader).await.unwrap_err();
    assert!(matches!(error, CallError::Cancelled));
    assert_eq!(guard.records.lock().unwrap()[0].outcome, Outcome::Cancelled);
}

/// Serves resources and prompts named after roles, and its tools change on demand.
#[derive(Default)]
struct Library {
    extra: Mutex<Vec<String>>,
    changes: Mutex<Option<CatalogChanges>>,
}

#[async_trait]
impl Toolbox for Library {
    fn name(&self) -> &str {
        "library"
    }
    async fn tools(&self) -> Vec<ToolSpec> {
        let names = self.extra.lock().unwrap().clone();
        names.iter().map(|n| ToolSpec::new::<serde_json::Value>(n, "added")).collect()
    }
    async fn call_tool(&self, tool: &str, _: Map<String, Value>, _: &CallContext) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text(tool))
    }
    async fn resources(&self) -> Vec<ResourceSpec> {
        ["read://a", "write://b"]
            .iter()
            .map(|uri| ResourceSpec {
                uri: (*uri).into(),
                name: (*uri).into(),
                title: None,
                description: None,
                mime_type: None,
            })
            .collect()
    }
    async fn read_resource(&self, uri: &str, _: &CallContext) -> Result<Option<Vec<ResourceContents>>, ToolError> {
        Ok(Some(vec![ResourceContents::Text { uri: uri.into(), mime_type: None, text: "x".into() }]))
    }
    async fn prompts(&self) -> Vec<PromptSpec> {
        ["read_p", "write_p"]
            .iter()
            .map(|name| PromptSpec { name: (*name).into(), title: None, description: None, arguments: Vec::new() })
            .collect()
    }
    async fn complete(&self, _: &CompletionRef, _: &str, value: &str, _: &CallContext) -> Vec<String> {
        vec![format!("{value}1")]
    }
    fn watch(&self, changes: CatalogChanges) {
        *self.changes.lock().unwrap() = Some(changes);
    }
}

#[tokio::test]
async fn resources_prompts_and_completions_follow_their_own_grants_and_are_recorded() {
    let guard = Arc::new(ScriptedGuard::default());
    let pipeline = Pipeline::builder(guard.clone()).toolbox(Arc::new(Library::default())).build().await.unwrap();
    let reader = context(&["read"]);
    let uris: Vec<String> = pipeline.list_resources(&reader).await.unwrap().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["read://a"]);
    let prompts: Vec<String> = pipeline.list_prompts(&reader).await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(prompts, ["read_p"]);
    assert!(pipeline.read_resource("read://a", &reader).await.is_ok());
    let forbidden = pipeline.read_resource("write://b", &reader).await.unwrap_err();
    let missing = pipeline.read_resource("read://zzz", &reader).await.unwrap_err();
    assert!(matches!((&forbidden, &missing), (CallError::ResourceNotFound(_), CallError::ResourceNotFound(_))));
    let allowed = pipeline.complete(&CompletionRef::Prompt("read_p".into()), "a", "v", &reader).await.unwrap();
    assert_eq!(allowed, ["v1"]);
    let refused = pipeline.complete(&CompletionRef::Prompt("write_p".into()), "a", "v", &reader).await.unwrap_err();
    assert!(matches!(refused, CallError::UnknownPrompt(_)), "{refused}");
    assert!(pipeline.subscribe_resource("read://a", &reader).await.is_ok());
    assert!(matches!(pipeline.subscribe_resource("write://b", &reader).await, Err(CallError::ResourceNotFound(_))));
    let records = guard.records.lock().unwrap();
    let summary: Vec<(&str, Option<&str>, Decision)> =
        records.iter().map(|r| (r.method.as_str(), r.target.as_deref(), r.decision)).collect();
    assert_eq!(
        summary,
        [
            ("resources/list", None, Decision::Allow),
            ("prompts/list", None, Decision::Allow),
            ("resources/read", Some("read://a"), Decision::Allow),
            ("resources/read", Some("write://b"), Decision::Deny),
            ("resources/read", Some("read://zzz"), Decision::Allow),
            ("completion/complete", Some("read_p"), Decision::Allow),
            ("completion/complete", Some("write_p"), Decision::Deny),
            ("resources/subscribe", Some("read://a"), Decision::Allow),
            ("resources/subscribe", Some("write://b"), Decision::Deny),
        ]
    );
}

#[tokio::test]
async fn a_toolbox_that_changes_its_tools_swaps_the_catalog_and_tells_watchers() {
    let guard = Arc::new(ScriptedGuard::default());
    let library = Arc::new(Library::default());
    let pipeline =
        Pipeline::builder(guard.clone()).toolbox(library.clone()).toolbox(Arc::new(Box1)).build().await.unwrap();
    let reader = context(&["read"]);
    let mut watcher = pipeline.watch_catalog();
    watcher.mark_unchanged();
    assert!(pipeline.visible_tools(&reader.caller).iter().all(|t| t.name != "read_new"));
    library.extra.lock().unwrap().push("read_new".into());
    let changes = library.changes.lock().unwrap().clone().expect("the pipeline handed the toolbox its handle");
    changes.changed().await;
    assert!(watcher.has_changed().unwrap(), "watchers are told");
    let names: Vec<String> = pipeline.visible_tools(&reader.caller).into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["read_new", "read_a"]);
    assert_eq!(
        pipeline.call_tool("read_new", None, &reader).await.unwrap().content,
        vec![crate::Content::text("read_new")]
    );

    // A change that would declare a name twice keeps the catalog as it was.
    library.extra.lock().unwrap().push("read_a".into());
    changes.changed().await;
    let names: Vec<String> = pipeline.visible_tools(&reader.caller).into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["read_new", "read_a"]);
}

#[tokio::test]
async fn the_tool_spec_hook_answers_only_what_the_caller_may_see() {
    let (pipeline, _) = pipeline().await;
    let reader = context(&["read"]);
    assert!(pipeline.tool_spec(&reader.caller, "read_a").is_some());
    assert!(pipeline.tool_spec(&reader.caller, "write_b").is_none(), "a hidden tool's schema does not leak");
}

#[tokio::test]
async fn the_transport_s_trace_id_goes_into_the_record() {
    let (pipeline, guard) = pipeline().await;
    let traced = context(&["read"]).with_trace_id(Some("4bf92f3577b34da6a3ce929d0e0e4736".into()));
    pipeline.call_tool("read_a", None, &traced).await.unwrap();
    pipeline.call_tool("write_b", None, &traced).await.unwrap_err();
    pipeline.call_tool("read_a", None, &context(&["read"])).await.unwrap();
    let records = guard.records.lock().unwrap();
    let trace_ids: Vec<Option<&str>> = records.iter().map(|r| r.trace_id.as_deref()).collect();
    let id = Some("4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(trace_ids, [id, id, None], "allowed and denied calls alike; none without one");
}
