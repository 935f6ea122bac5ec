//! The rmcp counter mounted in Rampart, through the real `rmcp-router` binary and its own
//! command line as the MCP client: each principal has its own instance, a role allows
//! some tools and not others, and the refusals are recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use rampart::{serde_json::Value, testing::Program};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_rmcp-router");

#[test]
fn the_mounted_rmcp_server_serves_each_principal_under_its_roles() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("rampart.toml");
    let program = Program::new(BIN, &config).unwrap();
    let served = program.serve(300).unwrap();
    let alice = program.token("alice", "counter-user").unwrap();
    let bob = program.token("bob", "counter-user").unwrap();
    let admin = program.token("ops", "counter-admin").unwrap();
    let call = |token: &str, tool: &str, arguments: Value| program.call(&served, token, tool, &arguments).unwrap();
    let value = |token: &str, tool: &str, arguments: Value| {
        let output = call(token, tool, arguments);
        assert_eq!(output.code, 0, "{tool}: {}{}", output.stdout, output.stderr);
        output.json()["content"][0]["text"].as_str().unwrap().to_owned()
    };

    // rmcp's own argument handling and schema: typed Parameters<AddRequest>.
    assert_eq!(value(&alice, "counter_add", json!({"amount": 5})), "5");
    assert_eq!(value(&alice, "counter_increment", json!({})), "6");
    let bad = call(&alice, "counter_add", json!({"amount": "five"}));
    assert_ne!(bad.code, 0, "rmcp refuses arguments that do not fit: {}", bad.stdout);
    // One instance per principal: Bob's counter is his own.
    assert_eq!(value(&bob, "counter_get", json!({})), "0");
    assert_eq!(value(&alice, "counter_get", json!({})), "6");

    // counter_reset is not Alice's: unknown to her, and nothing changed.
    let refused = call(&alice, "counter_reset", json!({}));
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("-32602"), "{}", refused.stderr);
    assert_eq!(value(&alice, "counter_get", json!({})), "6");
    let listed = program.run(&["tools", "--url", &served.url, "--token", &alice, "--json"]).unwrap().json();
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|tool| tool["name"].as_str()).collect();
    assert!(names.contains(&"counter_add") && !names.contains(&"counter_reset"), "{names:?}");
    // The annotations and schemas are rmcp's, passed through.
    let add = listed.as_array().unwrap().iter().find(|tool| tool["name"] == "counter_add").unwrap();
    assert_eq!(add["inputSchema"]["properties"]["amount"]["description"], "How much to add (may be negative).");
    assert_eq!(value(&admin, "counter_reset", json!({})), "0");

    let denied = |records: &[Value]| records.iter().any(|r| r["decision"] == "deny" && r["tool"] == "counter_reset");
    let records = program.audit("token:alice", denied).unwrap();
    assert!(denied(&records), "Alice's refused reset is recorded: {records:#?}");
    let allowed = records.iter().filter(|r| r["tool"] == "counter_add" && r["decision"] == "allow").count();
    assert_eq!(allowed, 2, "both of Alice's counter_add calls are recorded: {records:#?}");
}
