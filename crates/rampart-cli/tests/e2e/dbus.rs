//! MCP over D-Bus on a private `dbus-daemon --session` (no system bus needed): a zbus
//! client runs a session, `busctl` calls the method, and a Unix user not mapped in
//! `[dbus.users]` is refused and recorded.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

use crate::support::{BIN, TempDir, run, spawn_collecting};

/// A private session bus, killed by PID on drop.
struct Bus {
    child: Child,
    address: String,
}

impl Bus {
    fn start(dir: &TempDir) -> Option<Self> {
        let socket = dir.0.join("bus");
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
        Some(Self { child, address: line.trim().to_owned() })
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rampart serve --transport dbus` on `bus` with `config`, until dropped.
struct DbusServer {
    child: Child,
}

impl DbusServer {
    fn start(bus: &Bus, dir: &TempDir, config: &str) -> Self {
        let path = dir.0.join("rampart.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new("timeout");
        command
            .args(["120", BIN, "serve", "--config", path.to_str().unwrap(), "--transport", "dbus"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("RAMPART_DATA_DIR", dir.0.join("data"))
            .env("RAMPART_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (child, _stderr, banner) = spawn_collecting(command, "D-Bus: org.rampart.Mcp1");
        assert!(banner.contains("/org/rampart/Mcp1"), "{banner}");
        // The banner is printed as the name is requested; give the bus a moment.
        std::thread::sleep(Duration::from_millis(300));
        Self { child }
    }
}

impl Drop for DbusServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn uid() -> String {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim().to_owned()
}

fn dbus_daemon_missing() -> bool {
    if Command::new("dbus-daemon").arg("--version").output().is_ok() {
        return false;
    }
    if std::env::var_os("TEST_REQUIRE_SERVICES").is_some() {
        panic!("dbus-daemon is required (TEST_REQUIRE_SERVICES) but not installed; .ci/run installs it");
    }
    crate::support::skip("D-Bus transport", "dbus-daemon is not installed (apt-get install dbus-daemon)");
    true
}

async fn call(connection: &zbus::Connection, message: &Value) -> zbus::Result<String> {
    let reply = connection
        .call_method(
            Some("org.rampart.Mcp1"),
            "/org/rampart/Mcp1",
            Some("org.rampart.Mcp1"),
            "Call",
            &(message.to_string(),),
        )
        .await?;
    reply.body().deserialize::<String>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_a_private_session_bus_for_mapped_users_only() {
    if dbus_daemon_missing() {
        return;
    }
    let dir = TempDir::new("dbus");
    let bus = Bus::start(&dir).expect("a private dbus-daemon");
    let uid = uid();
    let server = DbusServer::start(&bus, &dir, &format!("[dbus.users.{uid}]\nroles = [\"reader\"]\n"));

    let connection = zbus::connection::Builder::address(bus.address.as_str()).build().await.unwrap();
    let answer = call(
        &connection,
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "zbus-test", "version": "1" } } }),
    )
    .await
    .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25", "{answer}");
    let none = call(&connection, &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await.unwrap();
    assert_eq!(none, "", "a notification has no answer");
    let tools: Value = serde_json::from_str(
        &call(&connection, &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" })).await.unwrap(),
    )
    .unwrap();
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"get_current_time") && !names.contains(&"admin_token_list"), "a reader's tools: {names:?}");
    let time: Value = serde_json::from_str(
        &call(
            &connection,
            &json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": { "name": "get_current_time", "arguments": { "timezone": "Asia/Tokyo" } } }),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(time["result"]["structuredContent"]["datetime"].as_str().unwrap().ends_with("+09:00"), "{time}");
    let denied: Value = serde_json::from_str(
        &call(
            &connection,
            &json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": { "name": "admin_token_list", "arguments": {} } }),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(denied["error"].is_object(), "the reader may not list tokens: {denied}");
    let bad = call(&connection, &json!("not a JSON-RPC message")).await.unwrap_err().to_string();
    assert!(bad.contains("org.rampart.Mcp1.Error.InvalidMessage"), "{bad}");

    // busctl, systemd's D-Bus client, calls the same method (where systemd is installed).
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "busctl", "version": "1" } } });
    let busctl = Command::new("busctl")
        .args([
            "--address",
            &bus.address,
            "call",
            "org.rampart.Mcp1",
            "/org/rampart/Mcp1",
            "org.rampart.Mcp1",
            "Call",
            "s",
        ])
        .arg(initialize.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&busctl.stdout);
    assert!(busctl.status.success() && stdout.starts_with("s \"") && stdout.contains("protocolVersion"), "{stdout}");
    drop(connection);
    drop(server);

    // The same user, not mapped: refused, and recorded.
    let server = DbusServer::start(&bus, &dir, "[dbus]\nbus = \"session\"\n");
    let connection = zbus::connection::Builder::address(bus.address.as_str()).build().await.unwrap();
    let refused = call(&connection, &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" })).await.unwrap_err();
    let refused = refused.to_string();
    assert!(
        refused.contains("org.rampart.Mcp1.Error.AccessDenied") && refused.contains(&format!("[dbus.users.{uid}]")),
        "{refused}"
    );
    drop(connection);
    drop(server);
    let data = dir.0.join("data");
    let (_, records, _) = run(&["audit", "search", "--json"], &[("RAMPART_DATA_DIR", data.to_str().unwrap())], None);
    let denial = records
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|record| record["method"] == "dbus")
        .unwrap_or_else(|| panic!("no denial recorded: {records}"));
    assert_eq!(denial["decision"], "deny");
    assert_eq!(denial["principal"], format!("uid:{uid}"));
    assert_eq!(denial["transport"], "dbus");
}
