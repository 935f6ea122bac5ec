#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{NoArguments, Structured, ToolRouter};
use crate::{CallContext, Caller, OpenGuard, ToolError, ToolOutput, ToolSpec};

#[derive(Default)]
struct Counter {
    calls: AtomicU32,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddArguments {
    /// How much to add.
    amount: u32,
}

#[derive(Serialize, JsonSchema)]
struct Total {
    total: u32,
}

async fn add(counter: &Counter, arguments: AddArguments, _: &CallContext) -> Result<Structured<Total>, ToolError> {
    let total = counter.calls.fetch_add(arguments.amount, Ordering::SeqCst) + arguments.amount;
    Ok(Structured(Total { total }))
}

async fn whoami(_: &Counter, _: NoArguments, context: &CallContext) -> Result<String, ToolError> {
    Ok(context.caller.principal.id.clone())
}

async fn fail(_: &Counter, _: NoArguments, _: &CallContext) -> Result<ToolOutput, ToolError> {
    Err(ToolError::Failed("it broke".into()))
}

fn router() -> ToolRouter<Counter> {
    ToolRouter::new()
        .tool(ToolSpec::named("add", "Add to the counter."), add)
        .tool(ToolSpec::named("whoami", "Who calls.").read_only(), whoami)
        .tool(ToolSpec::named("fail", "Always fails."), fail)
}

fn context() -> CallContext {
    CallContext::detached(Caller::stdio(), Arc::new(OpenGuard))
}

fn arguments(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[test]
fn schemas_come_from_the_argument_and_result_types() {
    let specs = router().specs();
    let names: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    assert_eq!(names, ["add", "whoami", "fail"]);
    assert_eq!(specs[0].input_schema["type"], "object");
    assert_eq!(specs[0].input_schema["required"], json!(["amount"]));
    assert_eq!(specs[0].input_schema["properties"]["amount"]["description"], "How much to add.");
    let output = specs[0].output_schema.as_ref().expect("a structured result declares its schema");
    assert_eq!(output["properties"]["total"]["type"], "integer");
    assert_eq!(specs[1].input_schema["properties"], json!({}));
    assert_eq!(specs[1].output_schema, None, "a text result declares no output schema");
    assert_eq!(specs[1].annotations.read_only_hint, Some(true));
}

#[tokio::test]
async fn a_call_reaches_its_function_with_typed_arguments_and_the_state() {
    let (router, counter, context) = (router(), Counter::default(), context());
    let output = router.call(&counter, "add", arguments(json!({"amount": 2})), &context).await.expect("add");
    assert_eq!(output.structured_content, Some(json!({"total": 2})));
    assert_eq!(output.to_text(), "{\n  \"total\": 2\n}");
    router.call(&counter, "add", arguments(json!({"amount": 3})), &context).await.expect("add");
    assert_eq!(counter.calls.load(Ordering::SeqCst), 5);
    let output = router.call(&counter, "whoami", Map::new(), &context).await.expect("whoami");
    assert_eq!(output.to_text(), context.caller.principal.id);
}

#[tokio::test]
async fn bad_arguments_are_refused_before_the_function_runs() {
    let (router, counter, context) = (router(), Counter::default(), context());
    for bad in [json!({}), json!({"amount": "two"}), json!({"amount": 1, "extra": true})] {
        let error = router.call(&counter, "add", arguments(bad.clone()), &context).await.expect_err("refused");
        assert!(matches!(error, ToolError::InvalidArguments(_)), "{bad}: {error:?}");
    }
    assert_eq!(counter.calls.load(Ordering::SeqCst), 0);
    let error = router.call(&counter, "whoami", arguments(json!({"x": 1})), &context).await.expect_err("refused");
    assert!(matches!(error, ToolError::InvalidArguments(_)), "{error:?}");
}

#[tokio::test]
async fn errors_and_unknown_tools_come_back_as_tool_errors() {
    let (router, counter, context) = (router(), Counter::default(), context());
    let error = router.call(&counter, "fail", Map::new(), &context).await.expect_err("fails");
    assert!(matches!(error, ToolError::Failed(ref message) if message == "it broke"), "{error:?}");
    let error = router.call(&counter, "missing", Map::new(), &context).await.expect_err("unknown");
    assert!(matches!(error, ToolError::NotFound(_)), "{error:?}");
    assert!(router.has("fail") && !router.has("missing"));
}

#[test]
fn a_tool_without_arguments_has_a_bare_object_schema() {
    let spec = ToolSpec::named("ping", "Ping.");
    assert_eq!(
        serde_json::Value::Object(spec.input_schema),
        json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "NoArguments", "type": "object", "properties": {}, "additionalProperties": false})
    );
}
