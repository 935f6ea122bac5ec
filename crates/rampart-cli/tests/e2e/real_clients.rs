//! Clients nobody on the team wrote: the official Python SDK (`mcp` on PyPI, through
//! `tests/clients/mcp_client.py`) and the MCP Inspector CLI. The README test command
//! installs both; without them these tests say loudly that they were skipped, and under
//! `MCP_TEST_REQUIRE_CLIENTS=1` (CI) they fail instead.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::support::{BIN, Server, TempDir};

/// `RAMPART_DATA_DIR=<fresh dir>` for a stdio server started by a third-party client.
fn data_env() -> (TempDir, String) {
    let data = TempDir::new("client-data");
    let env = format!("RAMPART_DATA_DIR={}", data.0.display());
    (data, env)
}

const KEY: &str = "real-clients-key-42";

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub(crate) fn python() -> Option<PathBuf> {
    let path = std::env::var_os("MCP_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("tests/clients/.venv/bin/python"));
    path.exists().then_some(path)
}

pub(crate) fn node_bin() -> Option<PathBuf> {
    let dir = workspace().join("tests/clients/node_modules/.bin");
    dir.join("mcp-inspector").exists().then_some(dir)
}

/// Runs the Python harness; returns (exit code, parsed stdout).
pub(crate) fn python_client(python: &Path, args: &[&str]) -> (i32, Value) {
    let output = Command::new("timeout")
        .arg("90")
        .arg(python)
        .arg(workspace().join("tests/clients/mcp_client.py"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("python client printed no JSON: {stdout}\nstderr: {}", String::from_utf8_lossy(&output.stderr))
    });
    (output.status.code().unwrap_or(-1), value)
}

fn assert_tools_and_time(result: &Value, zone: &str) {
    let tools = result["tools"].as_array().expect("tools listed");
    assert!(tools.contains(&Value::from("get_current_time")), "{result}");
    assert_eq!(result["call"]["isError"], false, "{result}");
    assert_eq!(result["call"]["structuredContent"]["timezone"], zone, "{result}");
}

#[test]
fn python_sdk_over_stdio() {
    let Some(python) = python() else {
        return crate::support::skip("Python MCP SDK client", "tests/clients/.venv is missing");
    };
    let (code, result) = python_client(
        &python,
        &[
            "stdio",
            "--list-tools",
            "--call",
            "get_current_time",
            "--args",
            r#"{"timezone":"Europe/Paris"}"#,
            "--",
            BIN,
            "serve",
            "--transport",
            "stdio",
        ],
    );
    assert_eq!(code, 0, "{result}");
    assert_tools_and_time(&result, "Europe/Paris");
}

#[test]
fn python_sdk_over_http_with_a_bearer_key() {
    let Some(python) = python() else {
        return crate::support::skip("Python MCP SDK client", "tests/clients/.venv is missing");
    };
    let server = Server::start(&["--auth-key", KEY]);
    let header = format!("Authorization: Bearer {KEY}");
    let call = ["--list-tools", "--call", "get_current_time", "--args", r#"{"timezone":"America/New_York"}"#];
    let mut args = vec!["http", server.url.as_str(), "--header", header.as_str()];
    args.extend(call);
    let (code, result) = python_client(&python, &args);
    assert_eq!(code, 0, "{result}");
    assert_tools_and_time(&result, "America/New_York");
    assert_eq!(result["protocolVersion"], "2025-11-25", "session-based revision");

    // The SDK's default negotiation discovers the stateless 2026-07-28 revision.
    args.extend(["--mode", "auto"]);
    let (code, result) = python_client(&python, &args);
    assert_eq!(code, 0, "{result}");
    assert_tools_and_time(&result, "America/New_York");
    assert_eq!(result["protocolVersion"], "2026-07-28", "stateless revision negotiated");

    let (code, result) = python_client(&python, &["http", &server.url, "--list-tools"]);
    assert_eq!(code, 2, "no key: {result}");
    assert_eq!(result["error"]["httpStatus"], 401, "{result}");
}

/// Runs the Inspector CLI with a private HOME; returns (exit code, stdout).
pub(crate) fn inspector(node_bin: &Path, args: &[&str]) -> (i32, String) {
    let home = TempDir::new("inspector-home");
    let path = format!("{}:{}", node_bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("timeout")
        .arg("90")
        .arg(node_bin.join("mcp-inspector"))
        .args(["--cli", "-q"])
        .args(args)
        .env("HOME", &home.0)
        .env("PATH", path)
        .output()
        .unwrap();
    let mut stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.code().is_some(), "inspector killed: {}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        // What a failing assertion shows: the Inspector says why on stderr.
        stdout.push_str(&format!("\n--- stderr\n{}", String::from_utf8_lossy(&output.stderr)));
    }
    (output.status.code().unwrap_or(-1), stdout)
}

#[test]
fn inspector_cli_over_stdio() {
    let Some(node_bin) = node_bin() else {
        return crate::support::skip("MCP Inspector CLI", "tests/clients/node_modules is missing");
    };
    let (_data, env) = data_env();
    let (code, stdout) =
        inspector(&node_bin, &["--method", "tools/list", "--", "env", &env, BIN, "serve", "--transport", "stdio"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("\"get_current_time\""), "{stdout}");
    let (code, stdout) = inspector(
        &node_bin,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "get_current_time",
            "--tool-args-json",
            r#"{"timezone":"Asia/Tokyo"}"#,
            "--",
            BIN,
            "serve",
            "--transport",
            "stdio",
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("+09:00"), "{stdout}");
}

#[test]
fn inspector_cli_over_http_with_a_bearer_key() {
    let Some(node_bin) = node_bin() else {
        return crate::support::skip("MCP Inspector CLI", "tests/clients/node_modules is missing");
    };
    let server = Server::start(&["--auth-key", KEY]);
    let header = format!("Authorization: Bearer {KEY}");
    let base = ["--server-url", server.url.as_str(), "--transport", "http", "--header", header.as_str()];
    let (code, stdout) = inspector(&node_bin, &[&base[..], &["--method", "tools/list"]].concat());
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("\"convert_time\""), "{stdout}");
    let (code, stdout) = inspector(
        &node_bin,
        &[
            &base[..],
            &["--method", "tools/call", "--tool-name", "get_current_time", "--tool-args-json", r#"{"timezone":"UTC"}"#],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("+00:00"), "{stdout}");
    let (code, _) =
        inspector(&node_bin, &["--server-url", &server.url, "--transport", "http", "--method", "tools/list"]);
    assert_ne!(code, 0, "no key, no tools");
}

#[test]
fn rampart_cli_drives_a_third_party_server_over_stdio() {
    let Some(python) = python() else {
        return crate::support::skip("mcp-server-time", "tests/clients/.venv is missing");
    };
    let server = python.with_file_name("mcp-server-time");
    assert!(server.exists(), "mcp-server-time is in tests/clients/requirements.txt");
    let command = format!("{} --local-timezone UTC", server.display());
    let (code, stdout, stderr) = crate::support::run(&["tools", "--stdio", &command], &[], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("convert_time ")), "{stdout}");
    let (code, stdout, stderr) = crate::support::run(
        &[
            "call",
            "convert_time",
            "source_timezone=UTC",
            "time=12:00",
            "target_timezone=Asia/Kathmandu",
            "--stdio",
            &command,
            "--json",
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["structuredContent"]["time_difference"], "+5.75h", "{result}");
    let (code, _, stderr) =
        crate::support::run(&["call", "get_current_time", "timezone=Bad/Zone", "--stdio", &command], &[], None);
    assert_eq!(code, 1, "their isError exits 1 too: {stderr}");
}
