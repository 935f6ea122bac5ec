//! A client of the OpenAI-compatible Chat Completions API (`POST {base}/chat/completions`,
//! streamed as server-sent events), as OpenAI, vLLM, Ollama, LM Studio and llama.cpp's
//! server speak it: messages and function tools in, text deltas and tool calls out.

use std::time::Duration;

use serde_json::{Value, json};

/// Where the model is and how to ask it.
#[derive(Debug, Clone)]
pub(crate) struct Llm {
    http: reqwest::Client,
    /// e.g. `https://api.openai.com/v1` (no trailing `/`).
    base_url: String,
    model: String,
    api_key: Option<String>,
    /// The environment variable the key is read from (named in errors).
    key_variable: String,
}

/// One call of a function tool, as the model asked for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The arguments as the model wrote them (JSON text, possibly invalid).
    pub(crate) arguments: String,
}

/// What the model answered in one request.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    pub(crate) content: String,
    pub(crate) tool_calls: Vec<ToolCall>,
}

impl Llm {
    pub(crate) fn new(base_url: &str, model: &str, key_variable: &str) -> Self {
        let api_key = std::env::var(key_variable).ok().filter(|key| !key.is_empty());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key,
            key_variable: key_variable.to_owned(),
        }
    }

    pub(crate) fn model(&self) -> &str {
        &self.model
    }

    /// Sends the conversation and the tools; each text delta goes to `on_text` as it
    /// arrives.
    ///
    /// # Errors
    /// The endpoint cannot be reached, or answers with an error: in words naming what to
    /// change (the key variable, the model, the base URL, the conversation's length, the
    /// tool whose schema was refused).
    pub(crate) async fn complete(
        &self,
        messages: &[Value],
        tools: &[Value],
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> anyhow::Result<Turn> {
        let mut body = json!({ "model": self.model, "messages": messages, "stream": true });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools.to_vec());
        }
        let url = format!("{}/chat/completions", self.base_url);
        let mut request = self.http.post(&url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(self.refused(status.as_u16(), &text, tools));
        }
        let streamed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !streamed {
            // A server that ignores `stream`: one JSON answer.
            let answer: Value =
                response.json().await.map_err(|e| anyhow::anyhow!("the model API's answer is not JSON: {e}"))?;
            let message = &answer["choices"][0]["message"];
            let mut turn =
                Turn { content: message["content"].as_str().unwrap_or_default().to_owned(), ..Turn::default() };
            on_text(&turn.content);
            for call in message["tool_calls"].as_array().into_iter().flatten() {
                turn.tool_calls.push(ToolCall {
                    id: call["id"].as_str().unwrap_or_default().to_owned(),
                    name: call["function"]["name"].as_str().unwrap_or_default().to_owned(),
                    arguments: call["function"]["arguments"].as_str().unwrap_or("{}").to_owned(),
                });
            }
            return Ok(turn);
        }
        let mut events = SseLines::default();
        let mut turn = Turn::default();
        let mut calls: Vec<ToolCall> = Vec::new();
        'stream: while let Some(chunk) =
            response.chunk().await.map_err(|e| anyhow::anyhow!("the model API's stream broke: {e}"))?
        {
            for data in events.push(&chunk) {
                if data == "[DONE]" {
                    break 'stream;
                }
                let Ok(event) = serde_json::from_str::<Value>(&data) else { continue };
                if let Some(error) = event.get("error") {
                    anyhow::bail!(
                        "the model API reported an error: {}",
                        error["message"].as_str().unwrap_or("(no message)")
                    );
                }
                let delta = &event["choices"][0]["delta"];
                if let Some(text) = delta["content"].as_str() {
                    turn.content.push_str(text);
                    on_text(text);
                }
                for call in delta["tool_calls"].as_array().into_iter().flatten() {
                    let index = call["index"].as_u64().and_then(|i| usize::try_from(i).ok()).unwrap_or(calls.len());
                    while calls.len() <= index {
                        calls.push(ToolCall { id: String::new(), name: String::new(), arguments: String::new() });
                    }
                    let slot = &mut calls[index];
                    if let Some(id) = call["id"].as_str() {
                        slot.id = id.to_owned();
                    }
                    if let Some(name) = call["function"]["name"].as_str() {
                        slot.name.push_str(name);
                    }
                    if let Some(arguments) = call["function"]["arguments"].as_str() {
                        slot.arguments.push_str(arguments);
                    }
                }
            }
        }
        for (n, mut call) in calls.into_iter().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{n}");
            }
            if call.arguments.trim().is_empty() {
                call.arguments = "{}".into();
            }
            turn.tool_calls.push(call);
        }
        Ok(turn)
    }

    fn unreachable(&self, error: &reqwest::Error) -> anyhow::Error {
        if error.is_timeout() {
            anyhow::anyhow!("the model API at {} did not answer in time (timeout)", self.base_url)
        } else {
            anyhow::anyhow!(
                "cannot reach the model API at {}: is it running, and is the address right? (--base-url or \
                 RAMPART_LLM_BASE_URL)",
                self.base_url
            )
        }
    }

    /// An error answer, in words: what the server said and what to change.
    fn refused(&self, status: u16, body: &str, tools: &[Value]) -> anyhow::Error {
        let error: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let error = if error["error"].is_object() { &error["error"] } else { &error };
        let message = error["message"]
            .as_str()
            .or_else(|| error["error"].as_str())
            .map_or_else(|| body.chars().take(300).collect::<String>(), str::to_owned);
        let code = error["code"].as_str().unwrap_or_default();
        let lower = message.to_lowercase();
        let said = match status {
            401 | 403 if self.api_key.is_none() => format!(
                "the model API wants a key (HTTP {status}): set {} (or name another variable with --api-key-env)",
                self.key_variable
            ),
            401 | 403 => format!("the model API refused the key in {} (HTTP {status}): {message}", self.key_variable),
            404 => format!(
                "model '{}' not found at {} (HTTP 404): {message} (--model or RAMPART_LLM_MODEL)",
                self.model, self.base_url
            ),
            _ if code == "context_length_exceeded"
                || lower.contains("context length")
                || lower.contains("maximum context") =>
            {
                format!("the conversation is too long for model '{}': {message} (/reset starts over)", self.model)
            }
            400 | 422 if lower.contains("tool") || lower.contains("function") || lower.contains("schema") => {
                let culprit = tools
                    .iter()
                    .filter_map(|t| t["function"]["name"].as_str())
                    .find(|name| message.contains(name))
                    .map_or_else(String::new, |name| format!(" (tool '{name}')"));
                format!("the model API rejected a tool's schema{culprit}: {message} (--read-only offers fewer tools)")
            }
            _ => format!("the model API answered HTTP {status}: {message}"),
        };
        anyhow::anyhow!(said)
    }
}

/// Server-sent events out of a byte stream: the `data:` of each event, joined.
#[derive(Default)]
struct SseLines {
    buffer: Vec<u8>,
    data: Vec<String>,
}

impl SseLines {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(data) = line.strip_prefix("data:") {
                self.data.push(data.strip_prefix(' ').unwrap_or(data).to_owned());
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_joined() {
        let mut lines = SseLines::default();
        assert!(lines.push(b"data: {\"a\"").is_empty());
        assert_eq!(lines.push(b":1}\n\ndata: [DONE]\r\n\r\n"), ["{\"a\":1}", "[DONE]"]);
        assert_eq!(lines.push(b": keep-alive\n\ndata: x\ndata: y\n\n"), ["x\ny"]);
    }
}
