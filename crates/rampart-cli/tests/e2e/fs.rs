//! The `fs` toolbox through the real server: roots, roles with filesystem scopes, and the
//! pipeline's audit of refusals.

use serde_json::json;

use crate::support::{Server, TempDir, call_tool, initialize_body, mcp_post};

#[tokio::test]
async fn roles_with_filesystem_scopes_read_and_write_inside_the_root_only() {
    let dir = TempDir::new("fs-root");
    let root = dir.0.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "hello from the root\n").unwrap();
    std::fs::write(dir.0.join("secret.txt"), "outside").unwrap();
    let root_str = root.to_str().unwrap();
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"system\", \"fs\"]\n\n[[fs.roots]]\npath = \"{root_str}\"\nmode = \"read-write\"\n\n\
             [roles.reader]\nfs = [{{ path = \"{root_str}/**\", access = \"read\" }}]\n\n\
             [roles.writer]\nfs = [{{ path = \"{root_str}/**\", access = \"read-write\" }}]\n"
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let _admin = server.admin_token();
    let mk = |name: &str, role: &str| {
        let (code, out, err) =
            server.cli(&["token", "create", "--name", name, "--role", role, "--config", config.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_owned()
    };
    let reader = mk("r", "reader");
    let writer = mk("w", "writer");

    let read = call_tool(&server, &reader, "read_text_file", json!({ "path": format!("{root_str}/a.txt") })).await;
    assert_eq!(read["result"]["isError"], false, "{read}");
    assert!(read["result"]["content"][0]["text"].as_str().unwrap().contains("hello from the root"));

    for path in ["../secret.txt", "/etc/passwd", &format!("{root_str}/../secret.txt")] {
        let escape = call_tool(&server, &reader, "read_text_file", json!({ "path": path })).await;
        assert_eq!(escape["result"]["isError"], true, "{path}: {escape}");
        assert!(!escape.to_string().contains("outside\""), "{escape}");
    }

    let denied =
        call_tool(&server, &reader, "write_file", json!({ "path": format!("{root_str}/b.txt"), "content": "x" })).await;
    assert_eq!(denied["error"]["code"], -32602, "a reader has no write tool: {denied}");
    let written =
        call_tool(&server, &writer, "write_file", json!({ "path": format!("{root_str}/b.txt"), "content": "written" }))
            .await;
    assert_eq!(written["result"]["isError"], false, "{written}");
    assert_eq!(std::fs::read_to_string(root.join("b.txt")).unwrap(), "written");

    let (_, audit, _) = server.cli_until(&["audit", "search", "--principal", "token:r", "--json"], |audit| {
        audit.contains("\"denied\"") && audit.contains("write_file")
    });
    assert!(audit.contains("\"denied\"") && audit.contains("write_file"), "{audit}");
}

#[tokio::test]
async fn kill_9_of_the_server_during_a_large_write_leaves_the_old_or_the_new_file() {
    let dir = TempDir::new("fs-kill");
    let root = dir.0.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let target = root.join("big.txt");
    let old = "old content\n".repeat(1000);
    std::fs::write(&target, &old).unwrap();
    let root_str = root.to_str().unwrap();
    let config = dir.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nmax_body_bytes = 67108864\n\n[tools]\nenabled = [\"system\", \"fs\"]\n\n[[fs.roots]]\npath = \"{root_str}\"\nmode = \"read-write\"\n\n\
             [roles.admin]\nfs = [{{ path = \"{root_str}/**\", access = \"read-write\" }}]\n"
        ),
    )
    .unwrap();
    let new = "N".repeat(48 * 1024 * 1024);
    for delay_ms in [5u64, 40, 120] {
        std::fs::write(&target, &old).unwrap();
        let mut server = Server::start(&["--config", config.to_str().unwrap(), "--insecure-no-auth"]);
        let pid = server.pid();
        let url = server.url.clone();
        let body = json!({ "path": target.to_str().unwrap(), "content": new });
        let write = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let init = mcp_post(&client, &url).json(&initialize_body(1, "2025-11-25")).send().await.ok()?;
            let session = init.headers().get("mcp-session-id")?.to_str().ok()?.to_owned();
            let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "write_file", "arguments": body } });
            let _ = mcp_post(&client, &url).header("mcp-session-id", session).json(&call).send().await;
            Some(())
        });
        tokio::time::sleep(std::time::Duration::from_millis(300 + delay_ms)).await;
        // SIGKILL the server itself (not the timeout wrapper): no chance to clean up.
        let children = std::process::Command::new("pgrep").args(["-P", &pid.to_string()]).output().unwrap();
        for child in String::from_utf8_lossy(&children.stdout).split_whitespace() {
            let _ = std::process::Command::new("kill").args(["-9", child]).status();
        }
        let _ = write.await;
        let _ = server.terminate(5);
        let content = std::fs::read(&target).unwrap();
        assert!(
            content == old.as_bytes() || content == new.as_bytes(),
            "torn write after kill -9 at +{delay_ms} ms: {} bytes",
            content.len()
        );
    }
}
