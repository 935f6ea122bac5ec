//! Tools declared as functions: a [`ToolRouter`] maps each tool's name to an `async fn`
//! with typed arguments and result, and derives the tool's input and output schemas from
//! those types (schemars), so a toolbox never writes a schema, a `match` on tool names or
//! argument parsing by hand.
//!
//! ```
//! use rampart_core::{CallContext, NoArguments, Structured, ToolError, ToolRouter, ToolSpec};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! struct Greeter { greeting: String }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct GreetArguments {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! async fn greet(greeter: &Greeter, arguments: GreetArguments, _: &CallContext) -> Result<String, ToolError> {
//!     Ok(format!("{}, {}!", greeter.greeting, arguments.name))
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Count { greetings: u32 }
//!
//! async fn count(_: &Greeter, _: NoArguments, _: &CallContext) -> Result<Structured<Count>, ToolError> {
//!     Ok(Structured(Count { greetings: 1 }))
//! }
//!
//! let router = ToolRouter::new()
//!     .tool(ToolSpec::named("greet", "Greet someone by name.").read_only(), greet)
//!     .tool(ToolSpec::named("greetings_count", "How many greetings were sent.").read_only(), count);
//! let specs = router.specs();
//! assert_eq!(specs[0].input_schema["required"], serde_json::json!(["name"]));
//! assert!(specs[1].output_schema.is_some());
//! # let _: ToolRouter<Greeter> = router;
//! ```

use std::{any::Any, future::Future, pin::Pin};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::{CallContext, ToolError, ToolOutput, ToolSpec, tool::input_schema_for, tool::output_schema_for};

/// The arguments of a tool that takes none: `{}` (unknown fields refused).
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// The schema says nothing: this comment is not the tool's description.
#[schemars(description = "")]
pub struct NoArguments {}

/// A tool's structured result: `T` goes into `structuredContent`, its pretty-printed JSON
/// into a text block (MCP 2025-06-18 "Structured Content" recommends both, for clients
/// that read only text), and `T`'s schema becomes the tool's `outputSchema`.
#[derive(Debug, Clone, PartialEq)]
pub struct Structured<T>(pub T);

/// What a tool function may return: turned into the call's [`ToolOutput`], and saying
/// which `outputSchema` the tool declares.
pub trait IntoToolOutput: Send {
    /// The result as MCP content.
    ///
    /// # Errors
    /// [`ToolError::Internal`] when it cannot be serialized.
    fn into_tool_output(self) -> Result<ToolOutput, ToolError>;

    /// The JSON Schema of `structuredContent`, when the result has one.
    fn output_schema() -> Option<Map<String, Value>> {
        None
    }
}

impl IntoToolOutput for ToolOutput {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(self)
    }
}

impl IntoToolOutput for String {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text(self))
    }
}

impl<T: Serialize + JsonSchema + Send> IntoToolOutput for Structured<T> {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        let value = serde_json::to_value(&self.0)
            .map_err(|error| ToolError::Internal(format!("serializing result: {error}")))?;
        Ok(ToolOutput {
            content: vec![crate::Content::text(pretty(&value))],
            structured_content: Some(value),
            is_error: false,
        })
    }

    fn output_schema() -> Option<Map<String, Value>> {
        Some(output_schema_for::<T>())
    }
}

/// `value` as indented JSON: the text a person (or a text-only client) reads of a
/// structured result.
pub fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// An `async fn(&S, Args, &CallContext) -> Result<Out, ToolError>` usable as a tool.
///
/// Implemented for every such function (the lifetime-generic form lets the future borrow
/// the state and the context, so a tool function is a plain `async fn`); you never
/// implement it yourself.
pub trait ToolFn<'a, S: ?Sized + 'a, Args>: Send + Sync + 'static {
    /// The function's success type.
    type Output: IntoToolOutput;
    /// The function's future.
    type Future: Future<Output = Result<Self::Output, ToolError>> + Send + 'a;

    /// Calls the function.
    fn call(&self, state: &'a S, arguments: Args, context: &'a CallContext) -> Self::Future;
}

impl<'a, S, Args, F, Fut, Out> ToolFn<'a, S, Args> for F
where
    S: ?Sized + 'a,
    F: Fn(&'a S, Args, &'a CallContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, ToolError>> + Send + 'a,
    Out: IntoToolOutput,
{
    type Output = Out;
    type Future = Fut;

    fn call(&self, state: &'a S, arguments: Args, context: &'a CallContext) -> Fut {
        self(state, arguments, context)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One tool's handler with its arguments parsed and its result converted.
type Handler<S> = Box<
    dyn for<'a> Fn(&'a S, Map<String, Value>, &'a CallContext) -> BoxFuture<'a, Result<ToolOutput, ToolError>>
        + Send
        + Sync,
>;

/// The tools of one toolbox, each a [`ToolSpec`] and the function that runs it. `S` is
/// the state the functions are handed (usually the toolbox itself).
pub struct ToolRouter<S: ?Sized> {
    routes: Vec<(ToolSpec, Handler<S>)>,
}

impl<S: ?Sized> std::fmt::Debug for ToolRouter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.routes.iter().map(|(spec, _)| &spec.name)).finish()
    }
}

impl<S: ?Sized + Send + Sync + 'static> Default for ToolRouter<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: ?Sized + Send + Sync + 'static> ToolRouter<S> {
    /// No tools.
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Adds a tool: `spec` (from [`ToolSpec::named`]; its input schema is replaced by
    /// `Args`'s, its output schema, unless set, by the function's result type's) run by
    /// `function`. Arguments that do not deserialize into `Args` are refused with
    /// [`ToolError::InvalidArguments`] before the function runs.
    #[must_use]
    pub fn tool<Args, F>(mut self, spec: ToolSpec, function: F) -> Self
    where
        Args: DeserializeOwned + JsonSchema + Send + 'static,
        F: for<'a> ToolFn<'a, S, Args>,
    {
        let mut spec = spec;
        spec.input_schema = input_schema_for::<Args>();
        if spec.output_schema.is_none() {
            spec.output_schema = <<F as ToolFn<'static, S, Args>>::Output as IntoToolOutput>::output_schema();
        }
        let handler: Handler<S> = Box::new(move |state, arguments, context| {
            let parsed = crate::parse_arguments::<Args>(arguments);
            let call = parsed.map(|arguments| function.call(state, arguments, context));
            Box::pin(async move { call?.await?.into_tool_output() })
        });
        self.routes.push((spec, handler));
        self
    }

    /// Adds a tool whose arguments the function parses itself (a schema known only at
    /// run time: an OpenAPI operation, a configured command).
    #[must_use]
    pub fn dynamic_tool<F>(mut self, spec: ToolSpec, function: F) -> Self
    where
        F: for<'a> ToolFn<'a, S, Map<String, Value>>,
    {
        let handler: Handler<S> = Box::new(move |state, arguments, context| {
            let call = function.call(state, arguments, context);
            Box::pin(async move { call.await?.into_tool_output() })
        });
        self.routes.push((spec, handler));
        self
    }

    /// The tools' specs, in the order they were added (what [`crate::Toolbox::tools`]
    /// returns).
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.routes.iter().map(|(spec, _)| spec.clone()).collect()
    }

    /// Whether `tool` is one of these.
    pub fn has(&self, tool: &str) -> bool {
        self.routes.iter().any(|(spec, _)| spec.name == tool)
    }

    /// Runs `tool` with `arguments` on `state` (what [`crate::Toolbox::call_tool`] does).
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for a tool this router does not have; the function's own
    /// [`ToolError`] (including [`ToolError::InvalidArguments`] for arguments that do not
    /// fit its type).
    pub async fn call(
        &self,
        state: &S,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        match self.routes.iter().find(|(spec, _)| spec.name == tool) {
            Some((_, handler)) => handler(state, arguments, context).await,
            None => Err(ToolError::NotFound(format!("tool '{tool}'"))),
        }
    }
}

impl<S: Send + Sync + 'static> ToolRouter<S> {
    /// This router with the state its functions are handed, as
    /// [`crate::Toolbox::routes`] returns it: `Some(self.tools.bind(self))`.
    pub fn bind<'a>(&'a self, state: &'a S) -> Routes<'a> {
        Routes { router: self, state }
    }
}

/// A toolbox's [`ToolRouter`] bound to the toolbox: what [`crate::Toolbox::routes`]
/// returns, so that the trait's `tools` and `call_tool` serve the router's tools without
/// the toolbox writing them.
pub struct Routes<'a> {
    router: &'a dyn ErasedRouter,
    state: &'a (dyn Any + Send + Sync),
}

impl std::fmt::Debug for Routes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.router.specs().iter().map(|spec| spec.name.clone())).finish()
    }
}

impl Routes<'_> {
    /// The tools' specs ([`ToolRouter::specs`]).
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.router.specs()
    }

    /// Runs `tool` ([`ToolRouter::call`]).
    ///
    /// # Errors
    /// As [`ToolRouter::call`].
    pub async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        self.router.call_erased(self.state, tool, arguments, context).await
    }
}

/// A [`ToolRouter`] whose state type is known only to itself ([`Routes`] pairs it with a
/// state of that type).
trait ErasedRouter: Send + Sync {
    fn specs(&self) -> Vec<ToolSpec>;

    fn call_erased<'a>(
        &'a self,
        state: &'a (dyn Any + Send + Sync),
        tool: &'a str,
        arguments: Map<String, Value>,
        context: &'a CallContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;
}

impl<S: Send + Sync + 'static> ErasedRouter for ToolRouter<S> {
    fn specs(&self) -> Vec<ToolSpec> {
        ToolRouter::specs(self)
    }

    fn call_erased<'a>(
        &'a self,
        state: &'a (dyn Any + Send + Sync),
        tool: &'a str,
        arguments: Map<String, Value>,
        context: &'a CallContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        match state.downcast_ref::<S>() {
            Some(state) => Box::pin(self.call(state, tool, arguments, context)),
            // `bind` pairs a router only with a state of its own type.
            None => Box::pin(async { Err(ToolError::Internal("a tool router bound to another state".into())) }),
        }
    }
}

#[cfg(test)]
mod tests;
