//! `rampart shell` and the progress display in a real pseudo-terminal (expectrl): what a
//! person types, keystroke by keystroke (Tab, Ctrl-C, Ctrl-D), and what they see.

use std::{path::Path, process::Command, time::Duration};

use expectrl::{Expect, Session, process::unix::WaitStatus};
use serde_json::Value;

use crate::{
    gateway::{Fixture, clients},
    real_clients::workspace,
    support::{BIN, Server, TempDir},
};

pub(crate) type Pty = expectrl::session::OsSession;

/// `rampart ARGS` in a 120×40 pseudo-terminal, its history and client file under `home`.
pub(crate) fn spawn(args: &[&str], home: &Path, env: &[(&str, &str)]) -> Pty {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("RAMPART_URL")
        .env_remove("RAMPART_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut pty = Session::spawn(command).unwrap();
    pty.get_process_mut().set_window_size(120, 40).unwrap();
    pty.set_expect_timeout(Some(Duration::from_secs(20)));
    pty
}

/// Waits for the shell's prompt (its server's label, then `>`).
pub(crate) fn prompt(pty: &mut Pty, label: &str) {
    until(pty, &format!("{label}>"));
}

/// Types `keys` one by one, as a person does: reedline sees each key event.
pub(crate) fn type_keys(pty: &mut Pty, keys: &str) {
    for c in keys.chars() {
        pty.send(c.to_string()).unwrap();
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// Reads what the terminal shows until `needle`, and returns it. Like a terminal
/// emulator, it answers the line editor's cursor-position queries (`ESC [6n`), which
/// would otherwise wait for a reply that never comes.
pub(crate) fn until(pty: &mut Pty, needle: &str) -> String {
    // Anchored, so that only the first of them matches: expectrl consumes the output up
    // to the last match of a pattern.
    let pattern = format!("(?s)^.*?({}|\\x1b\\[6n|\\x1b\\[c)", regex_escape(needle));
    let mut shown = String::new();
    loop {
        let found = match pty.expect(expectrl::Regex(pattern.as_str())) {
            Ok(found) => found,
            Err(error) => panic!("'{needle}' never showed: {error}; the terminal showed: {shown:?}"),
        };
        shown.push_str(&String::from_utf8_lossy(found.get(0).unwrap_or_default()));
        match &*String::from_utf8_lossy(found.get(1).unwrap_or_default()) {
            "\x1b[6n" => pty.send("\x1b[1;1R").unwrap(),
            // Primary device attributes (crossterm asks them with the keyboard
            // enhancement query): a VT100.
            "\x1b[c" => pty.send("\x1b[?1;2c").unwrap(),
            _ => return shown,
        }
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ' ' || c == '_' {
                c.to_string()
            } else {
                format!("\\x{:02x}", c as u32)
            }
        })
        .collect()
}

pub(crate) fn exits(pty: &mut Pty) {
    for _ in 0..100 {
        match pty.get_process().status() {
            Ok(WaitStatus::Exited(_, code)) => {
                assert_eq!(code, 0);
                return;
            }
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("the shell ended with {other:?}"),
        }
    }
    panic!("the shell did not exit");
}

#[test]
fn the_shell_completes_calls_keeps_history_and_prints_json() {
    let server = Server::start(&["--auth-key", "shell-key-1"]);
    let home = TempDir::new("shell-home");
    let env = [("RAMPART_TOKEN", "shell-key-1")];
    let label = server.url.trim_start_matches("http://").to_owned();

    let mut pty = spawn(&["shell", "--url", &server.url], &home.0, &env);
    until(&mut pty, "connected to");
    prompt(&mut pty, &label);
    // A tool name, then an argument name, completed with Tab; the value typed.
    type_keys(&mut pty, "get_curr\t");
    until(&mut pty, "get_current_time");
    type_keys(&mut pty, "timez\t");
    until(&mut pty, "timezone=");
    type_keys(&mut pty, "Asia/Tokyo\r");
    let shown = until(&mut pty, "+09:00");
    assert!(shown.contains("timezone"), "a panel of the structured result: {shown}");
    prompt(&mut pty, &label);

    // A command of the command line's table, on the same connection.
    type_keys(&mut pty, "tools\r");
    until(&mut pty, "system_health");
    prompt(&mut pty, &label);

    // `json on`: results as JSON, as --json prints them.
    type_keys(&mut pty, "json on\r");
    prompt(&mut pty, &label);
    type_keys(&mut pty, "system_health\r");
    until(&mut pty, "\"structuredContent\"");
    prompt(&mut pty, &label);
    pty.send("\x04").unwrap(); // Ctrl-D
    exits(&mut pty);

    // History persisted for this server, across runs.
    let mut pty = spawn(&["shell", "--url", &server.url], &home.0, &env);
    prompt(&mut pty, &label);
    type_keys(&mut pty, "history\r");
    until(&mut pty, "get_current_time timezone=Asia/Tokyo");
    until(&mut pty, "json on");
    prompt(&mut pty, &label);
    type_keys(&mut pty, "exit\r");
    exits(&mut pty);
}

#[test]
fn enum_values_complete_from_the_schema_of_any_server() {
    let everything = workspace().join("tests/clients/node_modules/.bin/mcp-server-everything");
    if !everything.exists() {
        return crate::support::skip("server-everything", "tests/clients/node_modules is missing");
    }
    let home = TempDir::new("shell-enum");
    let mut pty = spawn(&["shell", "--stdio", everything.to_str().unwrap()], &home.0, &[]);
    prompt(&mut pty, "mcp-server-everything");
    type_keys(&mut pty, "get-annotated-message messageType=su\t");
    until(&mut pty, "messageType=success");
    type_keys(&mut pty, "\r");
    let shown = until(&mut pty, "Operation completed successfully");
    assert!(!shown.contains("error:"), "{shown}");
    pty.send("\x04").unwrap();
    exits(&mut pty);
}

#[tokio::test]
async fn ctrl_c_in_the_shell_cancels_the_call_on_the_server_and_the_shell_goes_on() {
    let Some((python, _)) = clients() else { return };
    let dir = TempDir::new("shell-interrupt");
    let fixture = Fixture::start(&python, &dir.0, 0);
    let events = dir.0.join("events.jsonl");
    let label = fixture.url.trim_start_matches("http://").to_owned();
    let mut pty = spawn(&["shell", "--url", &fixture.url], &dir.0, &[]);
    prompt(&mut pty, &label);
    type_keys(&mut pty, "slow seconds=20\r");
    crate::support::eventually("the call started", || {
        std::fs::read_to_string(&events).unwrap_or_default().contains("\"started\"")
    })
    .await;
    // The server's log message and the progress bar show while the call runs.
    until(&mut pty, "[info] slow: sleeping 20 s");
    until(&mut pty, "%");
    pty.send("\x03").unwrap(); // Ctrl-C
    until(&mut pty, "cancelled on the server");
    crate::support::eventually("the server saw notifications/cancelled", || {
        std::fs::read_to_string(&events).unwrap_or_default().contains("\"cancelled\"")
    })
    .await;
    // The shell is still there and still connected.
    prompt(&mut pty, &label);
    type_keys(&mut pty, "echo text=still-here\r");
    // The result (a panel of its structured content), not the echo of what was typed.
    until(&mut pty, "result  still-here");
    prompt(&mut pty, &label);
    pty.send("\x04").unwrap();
    exits(&mut pty);
}

#[tokio::test]
async fn a_long_call_draws_a_progress_bar_and_json_mode_prints_only_json() {
    let Some((python, _)) = clients() else { return };
    let dir = TempDir::new("progress");
    let fixture = Fixture::start(&python, &dir.0, 0);
    let mut pty = spawn(&["tool", "--url", &fixture.url, "slow", "--seconds", "1.5"], &dir.0, &[]);
    let shown = until(&mut pty, "slept 1.5 s");
    assert!(shown.contains("slow [") && shown.contains('%'), "a bar named after the tool: {shown:?}");
    exits(&mut pty);

    let mut pty = spawn(&["tool", "--url", &fixture.url, "--json", "slow", "--seconds", "1"], &dir.0, &[]);
    let mut everything = String::new();
    let _ = std::io::Read::read_to_string(&mut pty, &mut everything);
    assert!(!everything.contains('\u{1b}'), "no escape codes, no bar: {everything:?}");
    let result: Value = serde_json::from_str(everything.trim()).unwrap_or_else(|e| panic!("{e}: {everything:?}"));
    assert_eq!(result["content"][0]["text"], "slept 1 s");
}
