//! A counter, as rmcp's own examples write one: nothing here knows about Rampart.

use std::sync::{Arc, Mutex};

use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
};

/// `counter_add`'s arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct AddRequest {
    /// How much to add (may be negative).
    pub(crate) amount: i64,
}

/// A counter of its own for each instance.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    count: Arc<Mutex<i64>>,
    #[expect(dead_code, reason = "read by the code #[tool_handler] generates")]
    tool_router: ToolRouter<Self>,
}

impl Counter {
    pub(crate) fn new() -> Self {
        Self { count: Arc::new(Mutex::new(0)), tool_router: Self::tool_router() }
    }

    fn update(&self, change: impl FnOnce(&mut i64)) -> String {
        let mut count = self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut count);
        count.to_string()
    }
}

#[tool_router]
impl Counter {
    #[tool(description = "The counter's value.", annotations(read_only_hint = true))]
    fn counter_get(&self) -> String {
        self.update(|_| ())
    }

    #[tool(description = "Add one to the counter; returns the new value.")]
    fn counter_increment(&self) -> String {
        self.update(|count| *count += 1)
    }

    #[tool(description = "Add an amount to the counter; returns the new value.")]
    fn counter_add(&self, Parameters(AddRequest { amount }): Parameters<AddRequest>) -> String {
        self.update(|count| *count += amount)
    }

    #[tool(description = "Set the counter back to zero.", annotations(destructive_hint = true))]
    fn counter_reset(&self) -> String {
        self.update(|count| *count = 0)
    }
}

#[tool_handler]
impl ServerHandler for Counter {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions("A counter.")
    }
}
