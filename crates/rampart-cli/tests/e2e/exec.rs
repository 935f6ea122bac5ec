//! The `exec` toolbox through the real server: an allowlisted program in the sandbox,
//! under the policy's command scopes.

use serde_json::json;

use crate::support::{Server, TempDir, call_tool};

#[tokio::test]
async fn a_granted_command_runs_sandboxed_and_an_ungranted_one_is_refused() {
    if crate::support::sandbox_missing("exec toolbox end-to-end") {
        return;
    }
    let dir = TempDir::new("exec");
    let scratch = dir.0.join("scratch");
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"system\", \"exec\"]\n\n[exec]\nprograms = {{ echo = \"/bin/echo\", cat = \"/bin/cat\" }}\n\
             scratch_root = \"{}\"\n\n[roles.builder]\nincludes = [\"writer\"]\ncommands = [\"echo\"]\n",
            scratch.display()
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let _admin = server.admin_token();
    let make = |name: &str, role: &str| server.token(name, role, Some(&config));
    let builder = make("b", "builder");
    let writer = make("w", "writer");

    let ran = call_tool(
        &server,
        &builder,
        "run_command",
        json!({ "program": "echo", "args": ["hello", "$HOME", ";", "id"] }),
    )
    .await;
    assert_eq!(ran["result"]["isError"], false, "{ran}");
    let text = ran.to_string();
    assert!(text.contains("hello $HOME ; id"), "argv, never a shell: {text}");

    let denied = call_tool(&server, &writer, "run_command", json!({ "program": "echo", "args": ["x"] })).await;
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    let not_granted =
        call_tool(&server, &builder, "run_command", json!({ "program": "cat", "args": ["/etc/hostname"] })).await;
    assert_eq!(not_granted["result"]["isError"], true, "cat is allowlisted but not granted: {not_granted}");
}
