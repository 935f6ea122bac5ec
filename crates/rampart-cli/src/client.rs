//! `tools` and `call`: a client for any MCP server, over HTTP or a stdio child.

use std::process::ExitCode;

use anyhow::{Context, bail};
use rampart_mcp::{ClientTarget, McpClient};
use serde_json::{Map, Value};

use crate::{
    args::{CallArgs, ClientArgs},
    display,
};

fn target(args: &ClientArgs) -> anyhow::Result<ClientTarget> {
    match (&args.url, &args.stdio) {
        (Some(url), None) => Ok(ClientTarget::Http { url: url.clone(), token: args.token.clone() }),
        (None, Some(command)) => {
            let command = shlex::split(command).context("--stdio: unbalanced quotes")?;
            if command.is_empty() {
                bail!("--stdio needs a command, e.g. --stdio \"rampart serve --transport stdio\"");
            }
            Ok(ClientTarget::Stdio { command, show_stderr: args.verbose })
        }
        (None, None) => {
            bail!("say where the server is: --url http://127.0.0.1:8080/mcp (or RAMPART_URL), or --stdio \"COMMAND\"")
        }
        (Some(_), Some(_)) => bail!("give either --url or --stdio, not both"),
    }
}

pub(crate) async fn tools(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let client = McpClient::connect(&target(&args)?).await?;
    let tools = client.list_tools().await;
    client.close().await;
    let tools = tools?;
    if args.json {
        let raw: Vec<&Value> = tools.iter().map(|t| &t.raw).collect();
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        print!("{}", display::tools_table(&tools));
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the arguments object: `--args` JSON first, then `key=value` (string) and
/// `key:=json` pairs on top.
pub(crate) fn arguments(json: Option<&str>, pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut arguments = match json {
        Some(text) => match serde_json::from_str::<Value>(text).context("--args is not valid JSON")? {
            Value::Object(map) => map,
            _ => bail!("--args must be a JSON object, e.g. --args '{{\"timezone\":\"UTC\"}}'"),
        },
        None => Map::new(),
    };
    for pair in pairs {
        if let Some((key, raw)) = pair.split_once(":=") {
            let value = serde_json::from_str(raw).with_context(|| format!("{key}:= expects JSON, got {raw}"))?;
            arguments.insert(key.to_owned(), value);
        } else if let Some((key, value)) = pair.split_once('=') {
            arguments.insert(key.to_owned(), Value::String(value.to_owned()));
        } else {
            bail!("argument '{pair}' is not key=value or key:=json");
        }
    }
    Ok(arguments)
}

pub(crate) async fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let arguments = arguments(args.args.as_deref(), &args.pairs)?;
    call_tool(&args.client, &args.tool, arguments).await
}

/// Calls `tool` on the server of `client` and shows its result: on stdout, or on stderr
/// with exit status 1 when the tool reported an error.
async fn call_tool(client: &ClientArgs, tool: &str, arguments: Map<String, Value>) -> anyhow::Result<ExitCode> {
    let json = client.json;
    let client = McpClient::connect(&target(client)?).await?;
    let result = client.call_tool(tool, arguments).await;
    client.close().await;
    let result = result?;
    let is_error = result["isError"].as_bool().unwrap_or(false);
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else if is_error {
        eprint!("{}", display::call_result(&result));
    } else {
        print!("{}", display::call_result(&result));
    }
    Ok(if is_error { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `rampart config reload`: calls the running server's `admin_config_reload` tool.
pub(crate) async fn config_reload(args: ClientArgs) -> anyhow::Result<ExitCode> {
    call_tool(&args, "admin_config_reload", Map::new()).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::arguments;

    #[test]
    fn argument_table() {
        let pairs = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (None, pairs(&["timezone=Europe/Paris"]), json!({"timezone": "Europe/Paris"})),
            (None, pairs(&["n:=3", "s=3"]), json!({"n": 3, "s": "3"})),
            (None, pairs(&["eq=a=b"]), json!({"eq": "a=b"})),
            (Some(r#"{"a":1,"b":2}"#), pairs(&["b:=true"]), json!({"a": 1, "b": true})),
        ];
        for (json, pairs, expected) in cases {
            assert_eq!(serde_json::Value::Object(arguments(json, &pairs).unwrap()), expected);
        }
        assert!(arguments(Some("[1]"), &[]).is_err());
        assert!(arguments(None, &pairs(&["novalue"])).is_err());
        assert!(arguments(None, &pairs(&["n:=notjson"])).is_err());
    }
}
