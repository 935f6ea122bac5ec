//! Progress of a long tool call on stderr (indicatif), driven by the server's
//! `notifications/progress` (MCP 2025-11-25 "Progress"): a bar with an ETA when the total
//! is known, a spinner with the latest message when not. Nothing is drawn when stderr is
//! not a terminal or under `--json`.

use std::{
    io::IsTerminal,
    sync::{Arc, Mutex},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Draws the progress of one call until it is dropped.
pub(crate) struct CallProgress {
    drawer: Option<tokio::task::JoinHandle<()>>,
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl CallProgress {
    /// A channel for the call's progress notifications (params as JSON) and the display
    /// of them; `None` for the channel when nothing is to be drawn.
    pub(crate) fn start(tool: &str, visible: bool) -> (Option<UnboundedSender<Value>>, Self) {
        if !visible || !std::io::stderr().is_terminal() {
            return (None, Self { drawer: None, bar: Arc::default() });
        }
        let (sender, receiver) = unbounded_channel();
        let bar = Arc::default();
        let drawer = tokio::spawn(draw(tool.to_owned(), receiver, Arc::clone(&bar)));
        (Some(sender), Self { drawer: Some(drawer), bar })
    }
}

impl Drop for CallProgress {
    fn drop(&mut self) {
        if let Some(drawer) = self.drawer.take() {
            drawer.abort();
        }
        // The bar goes when the call ends: the result takes its place.
        if let Some(bar) = self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            bar.finish_and_clear();
        }
    }
}

/// Shows progress `params` as they come: the bar appears with the first one.
async fn draw(tool: String, mut updates: UnboundedReceiver<Value>, shown: Arc<Mutex<Option<ProgressBar>>>) {
    while let Some(params) = updates.recv().await {
        let progress = params["progress"].as_f64().unwrap_or(0.0);
        let total = params["total"].as_f64();
        let mut shown = shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bar = shown.get_or_insert_with(|| new_bar(&tool, total));
        // Bars count in thousandths of the total: the specification allows fractions
        // (seconds, bytes) as well as steps.
        match total {
            Some(total) if total > 0.0 => bar.set_position(whole(progress / total * 1000.0)),
            _ => bar.set_position(whole(progress)),
        }
        if let Some(message) = params["message"].as_str() {
            bar.set_message(message.to_owned());
        }
    }
}

fn new_bar(tool: &str, total: Option<f64>) -> ProgressBar {
    let bar = match total {
        Some(_) => ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% ({eta} left) {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} {spinner} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_prefix(tool.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A progress figure as a whole number of steps (the specification allows floats).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole(value: f64) -> u64 {
    value.max(0.0).round() as u64
}
