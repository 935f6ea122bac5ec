//! The `rampart` CLI: set-up commands and the client commands against a live server.

use serde_json::Value;

use crate::support::{BIN, Server, TempDir, run};

#[test]
fn init_writes_a_config_that_checks_and_refuses_to_overwrite() {
    let dir = TempDir::new("init");
    let (code, _, stderr) = run(&["init"], &[], Some(&dir.0));
    assert_eq!(code, 0, "{stderr}");
    let written = std::fs::read_to_string(dir.0.join("rampart.toml")).unwrap();
    assert!(written.contains("[server]") && written.contains("# "), "commented example");
    let (code, _, stderr) = run(&["init"], &[], Some(&dir.0));
    assert_eq!(code, 2);
    assert!(stderr.contains("already exists"), "{stderr}");
    let (code, stdout, stderr) = run(&["config", "check"], &[], Some(&dir.0));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("configuration OK (rampart.toml)"), "{stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:8080\""), "{stdout}");
}

#[test]
fn config_check_masks_secrets_and_shows_precedence() {
    let dir = TempDir::new("check");
    std::fs::write(
        dir.0.join("rampart.toml"),
        "[server]\nlisten = \"127.0.0.1:9000\"\n[auth]\nkey = \"file-secret-123\"\n",
    )
    .unwrap();
    std::fs::write(dir.0.join(".env"), "RAMPART_LOG=debug\n").unwrap();
    let (code, stdout, stderr) =
        run(&["config", "check", "--json"], &[("RAMPART_LISTEN", "127.0.0.1:9100")], Some(&dir.0));
    assert_eq!(code, 0, "{stderr}");
    let config: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(config["server"]["listen"], "127.0.0.1:9100", "environment beats file");
    assert_eq!(config["log"]["level"], "debug", ".env is read");
    assert_eq!(config["auth"]["key"], "***");
    assert!(!stdout.contains("file-secret-123") && !stderr.contains("file-secret-123"));
}

#[test]
fn bad_configuration_names_the_key_and_the_file() {
    let dir = TempDir::new("bad");
    let file = dir.0.join("rampart.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9000\"\ntransprot = \"http\"\n").unwrap();
    let (code, _, stderr) = run(&["config", "check", "--config", file.to_str().unwrap()], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("transprot") && stderr.contains(file.to_str().unwrap()), "{stderr}");
    std::fs::write(&file, "[tools]\nenabled = [\"system\", \"nope\"]\n").unwrap();
    let (code, _, stderr) = run(&["serve", "--config", file.to_str().unwrap()], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown toolbox 'nope' in tools.enabled"), "{stderr}");
    let (code, _, stderr) = run(&["config", "check"], &[("RAMPART_LISTN", "x")], Some(&dir.0));
    assert_eq!(code, 2);
    assert!(stderr.contains("RAMPART_LISTN"), "{stderr}");
    // A configured local zone is checked (in any case), the system's is taken as found.
    std::fs::write(&file, "[tools.system]\nlocal_timezone = \"Mars/Olympus\"\n").unwrap();
    let (code, _, stderr) = run(&["config", "check", "--config", file.to_str().unwrap()], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown timezone 'Mars/Olympus'"), "{stderr}");
    std::fs::write(&file, "[tools.system]\nlocal_timezone = \"asia/tokyo\"\n").unwrap();
    let (code, _, stderr) = run(&["config", "check", "--config", file.to_str().unwrap()], &[], None);
    assert_eq!(code, 0, "{stderr}");
}

/// `--log` takes `TARGET=LEVEL` directives: each target logs at its own level, and a
/// filter that is not one stops the start with a message saying what is expected.
#[test]
fn the_log_filter_sets_a_level_per_target_and_refuses_what_it_cannot_read() {
    use std::io::Write as _;
    let dir = TempDir::new("log-filter");
    // The stdio server answers one `initialize`, sees the end of its input and stops.
    let serve = |filter: &str| {
        let mut child = std::process::Command::new("timeout")
            .args(["60", BIN, "serve", "--transport", "stdio", "--log", filter])
            .env("RAMPART_DATA_DIR", &dir.0)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn rampart");
        let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{initialize}").unwrap();
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = serve("off,rampart_server::run=info");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("stopped"), "rampart_server::run at info: {stderr}");
    assert!(!stderr.contains("stdio session ended"), "rampart_mcp is off: {stderr}");
    let (code, stderr) = serve("info");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("stdio session ended") && stderr.contains("stopped"), "{stderr}");
    let (code, stderr) = serve("rampart_server=loud");
    assert_eq!(code, 2);
    assert!(stderr.contains("'rampart_server=loud' is not a valid filter (TARGET=LEVEL"), "{stderr}");
    // `config check` finds it before a start does.
    let file = dir.0.join("rampart.toml");
    std::fs::write(&file, "[log]\nlevel = \"rampart_server=loud\"\n").unwrap();
    let (code, _, stderr) = run(&["config", "check", "--config", file.to_str().unwrap()], &[], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("'rampart_server=loud' is not a valid filter (TARGET=LEVEL"), "{stderr}");
}

/// A toolbox's section without the toolbox in `tools.enabled` does nothing: a warning
/// that names both, and an error under `--strict`.
#[test]
fn a_section_whose_toolbox_is_not_enabled_is_a_warning_and_a_strict_error() {
    let dir = TempDir::new("unused");
    let file = dir.0.join("rampart.toml");
    std::fs::write(&file, format!("[[fs.roots]]\npath = \"{}\"\n", dir.0.display())).unwrap();
    let file = file.to_str().unwrap();
    let (code, _, stderr) = run(&["config", "check", "--config", file], &[], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("warning: [fs] is configured but \"fs\" is not in tools.enabled"), "{stderr}");
    let (code, _, stderr) = run(&["config", "check", "--strict", "--config", file], &[], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--strict"), "{stderr}");
}

#[test]
fn tools_and_call_against_a_live_server() {
    let server = Server::start(&["--auth-key", "cli-key"]);
    let env = [("RAMPART_URL", server.url.as_str()), ("RAMPART_TOKEN", "cli-key")];
    let (code, stdout, stderr) = run(&["tools"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("NAME"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("get_current_time ")), "{stdout}");

    let (code, stdout, _) = run(&["tools", "--json"], &env, None);
    assert_eq!(code, 0);
    let tools: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(tools.as_array().unwrap().len(), 14, "the static key holder is admin: {tools}");

    let (code, stdout, stderr) = run(&["call", "get_current_time", "timezone=Asia/Kolkata"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+05:30"), "{stdout}");

    let (code, stdout, _) = run(
        &[
            "call",
            "convert_time",
            "--args",
            r#"{"source_timezone":"UTC","time":"12:00"}"#,
            "target_timezone=Asia/Tokyo",
            "--json",
        ],
        &env,
        None,
    );
    assert_eq!(code, 0);
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["structuredContent"]["time_difference"], "+9.0h");

    let (code, stdout, stderr) = run(&["call", "get_current_time", "timezone=Mars/Olympus"], &env, None);
    assert_eq!(code, 1, "a tool error exits 1");
    assert!(stdout.is_empty() && stderr.contains("unknown timezone 'Mars/Olympus'"), "{stderr}");

    let (code, _, stderr) = run(&["call", "no_such_tool"], &env, None);
    assert_eq!(code, 2);
    assert!(stderr.contains("Unknown tool"), "{stderr}");

    let (code, _, stderr) = run(&["tools", "--url", &server.url], &[], None);
    assert_eq!(code, 2, "no token");
    assert!(stderr.contains("cannot connect") && stderr.contains("HTTP 401") && stderr.contains("--token"), "{stderr}");
    assert!(!stderr.contains("rmcp::") && !stderr.contains("reqwest"), "no library names: {stderr}");
}

#[test]
fn a_server_that_is_not_there_is_named_in_words() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let (code, _, stderr) = run(&["tools", "--url", &url], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("connection refused: is a server listening on 127.0.0.1:{port}?")), "{stderr}");
    assert!(!stderr.contains("rmcp::") && !stderr.contains("Transport ["), "no library names: {stderr}");
    let (code, _, stderr) = run(&["tools", "--stdio", "rampart-no-such-program --x"], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("command not found: rampart-no-such-program"), "{stderr}");

    // https:// to a plain-HTTP server: the TLS handshake, in words.
    let server = Server::open(&[]);
    let https = server.url.replace("http://", "https://");
    let (code, _, stderr) = run(&["tools", "--url", &https], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("TLS handshake with 127.0.0.1:") && stderr.contains("http://"), "{stderr}");
    assert!(!stderr.contains("rmcp::") && !stderr.contains("reqwest"), "no library names: {stderr}");
}

#[test]
fn call_over_stdio_spawns_the_server() {
    let command = format!("{BIN} serve --transport stdio");
    let (code, stdout, stderr) = run(&["call", "system_health", "--stdio", &command, "--json"], &[], None);
    assert_eq!(code, 0, "{stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["structuredContent"]["status"], "ok");
    let (code, _, stderr) = run(&["tools"], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("--url"), "says what is missing: {stderr}");
}

/// A value for a property of this schema that the server will accept: its first enum
/// value, its default, or a plain one of its type.
fn sample(schema: &Value) -> String {
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.as_str().unwrap().to_owned();
    }
    if let Some(default) = schema.get("default") {
        return default.as_str().map_or_else(|| default.to_string(), str::to_owned);
    }
    match schema["type"].as_str() {
        Some("integer") | Some("number") => "1".into(),
        Some("boolean") => "true".into(),
        _ => "x".into(),
    }
}

/// The flag `rampart tool NAME --help` lists for `property`: the same letters, any case,
/// any dashes or underscores (`messageType` is `--message-type`).
fn flag_for(help: &str, property: &str) -> String {
    let letters = |s: &str| s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
    help.split_whitespace()
        .filter_map(|word| word.strip_prefix("--"))
        .map(|flag| flag.split(['[', '=', ',']).next().unwrap_or(flag))
        .find(|flag| letters(flag) == letters(property))
        .unwrap_or_else(|| panic!("no flag for '{property}' in:\n{help}"))
        .to_owned()
}

#[test]
fn every_tool_of_rampart_and_of_server_everything_is_a_command_with_flags() {
    // Rampart over HTTP: kebab-case names and flags, types checked, help from the schema.
    let server = Server::start(&["--auth-key", "tool-key-1"]);
    let env = [("RAMPART_URL", server.url.as_str()), ("RAMPART_TOKEN", "tool-key-1")];
    let (code, stdout, stderr) = run(&["tool", "get-current-time", "--timezone", "Asia/Tokyo"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+09:00"), "{stdout}");
    let (code, stdout, _) = run(&["tool", "convert-time", "--help"], &env, None);
    assert_eq!(code, 0);
    for flag in ["--source-timezone <TEXT>", "--time <TEXT>", "--target-timezone <TEXT>", "Convert a 24-hour time"] {
        assert!(stdout.contains(flag), "{flag}: {stdout}");
    }
    let (code, _, stderr) = run(&["tool", "convert-time", "--source-timezone", "UTC"], &env, None);
    assert_eq!(code, 2, "missing required flags are refused before sending");
    assert!(stderr.contains("--time <TEXT>") && stderr.contains("--target-timezone <TEXT>"), "{stderr}");
    let (code, stdout, stderr) = run(&["tool"], &env, None);
    assert_eq!(code, 0);
    assert!(stdout.contains("system_*:") && stdout.contains("system_health"), "grouped by toolbox: {stdout}");
    assert!(stderr.contains("rampart tool NAME --help"), "{stderr}");
    let (code, _, stderr) = run(&["tool", "no-such-tool"], &env, None);
    assert_eq!(code, 2);
    assert!(stderr.contains("no tool 'no-such-tool'"), "{stderr}");

    // server-everything over stdio and over streamable HTTP: every tool it lists, called
    // with flags only.
    let everything = crate::real_clients::workspace().join("tests/clients/node_modules/.bin/mcp-server-everything");
    if !everything.exists() {
        return crate::support::skip("server-everything", "tests/clients/node_modules is missing");
    }
    let stdio = everything.to_str().unwrap();
    let (code, _, stderr) =
        run(&["tool", "--stdio", stdio, "get-annotated-message", "--message-type", "bogus"], &[], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("[possible values: error, success, debug]"), "{stderr}");
    let http = crate::gateway::EverythingHttp::start("streamableHttp", "/mcp");
    for target in [["--stdio", stdio], ["--url", http.url.as_str()]] {
        let tool_errors = every_tool_with_flags(&target);
        // With made-up values a tool may refuse them (a URL to fetch, a resource id); most run.
        assert!(tool_errors.len() <= 2, "{target:?}: {} tools failed: {tool_errors:#?}", tool_errors.len());
    }
}

/// Calls every tool of the server `target` names with flags made from its schema; the
/// tools that reported an error.
fn every_tool_with_flags(target: &[&str; 2]) -> Vec<String> {
    let (code, stdout, stderr) = run(&["tool", target[0], target[1], "--json"], &[], None);
    assert_eq!(code, 0, "{stderr}");
    let tools: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert!(tools.len() >= 10, "{stdout}");
    let mut tool_errors = Vec::new();
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        let mut words = vec!["tool".to_owned(), target[0].into(), target[1].into(), name.to_owned()];
        let required: Vec<&str> = tool["inputSchema"]["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !required.is_empty() {
            let (code, help, _) = run(&["tool", target[0], target[1], name, "--help"], &[], None);
            assert_eq!(code, 0, "{name}: {help}");
            let properties = tool["inputSchema"]["properties"].as_object().cloned().unwrap_or_default();
            for (property, schema) in properties.iter().filter(|(p, _)| required.contains(&p.as_str())) {
                words.push(format!("--{}", flag_for(&help, property)));
                words.push(sample(schema));
            }
        }
        if name == "trigger-long-running-operation" {
            words.extend(["--duration".into(), "1".into(), "--steps".into(), "1".into()]);
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run(&words, &[], None);
        assert!(code == 0 || code == 1, "{name}: exit {code}: {stderr}");
        assert!(!stderr.contains("Invalid arguments") && !stderr.contains("-32602"), "{name}: {stderr}");
        assert!(!stdout.is_empty() || !stderr.is_empty(), "{name} said something");
        if code == 1 {
            tool_errors.push(format!("{name}: {stderr}"));
        }
    }
    tool_errors
}
#[test]
fn resources_and_prompts_on_the_command_line() {
    let server = Server::open(&["--profile", "conformance"]);
    let env = [("RAMPART_URL", server.url.as_str())];
    let (code, stdout, stderr) = run(&["resources"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("test://static-text") && stdout.contains("test://template/{id}/data"), "{stdout}");
    let (code, stdout, _) = run(&["resource", "read", "test://static-text"], &env, None);
    assert_eq!(code, 0);
    assert!(!stdout.trim().is_empty(), "{stdout}");
    let (code, stdout, _) = run(&["resource", "read", "test://static-binary"], &env, None);
    assert_eq!(code, 0);
    assert!(stdout.contains("image/png") && stdout.contains("--save FILE"), "a blob is described: {stdout}");
    let dir = TempDir::new("read-save");
    let saved = dir.0.join("image.png");
    let (code, _, stderr) =
        run(&["resource", "read", "test://static-binary", "--save", saved.to_str().unwrap()], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read(&saved).unwrap().starts_with(b"\x89PNG"), "the blob decoded");
    let (code, _, stderr) = run(&["resource", "read", "test://nothing-here"], &env, None);
    assert_eq!(code, 2);
    assert!(stderr.contains("Resource not found"), "{stderr}");

    let (code, stdout, _) = run(&["prompts"], &env, None);
    assert_eq!(code, 0);
    assert!(stdout.contains("test_prompt_with_arguments(arg1*, arg2*)"), "{stdout}");
    let (code, stdout, stderr) =
        run(&["prompt", "get", "test_prompt_with_arguments", "arg1=alpha", "arg2=beta"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("user: ") && stdout.contains("alpha") && stdout.contains("beta"), "{stdout}");
    let (code, stdout, _) = run(&["prompts", "--json"], &env, None);
    assert_eq!(code, 0);
    assert!(serde_json::from_str::<Value>(&stdout).unwrap().as_array().is_some_and(|p| p.len() >= 4), "{stdout}");

    // MCP completion of a prompt argument, asked of the server.
    let (code, stdout, stderr) = run(&["complete", "prompt", "test_prompt_with_arguments", "arg1", "pa"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["paris", "park", "party"]);

    // Images of a tool result written to a directory, not described.
    let media = TempDir::new("save-media");
    let (code, stdout, stderr) = run(&["tool", "--save", media.0.to_str().unwrap(), "test-image-content"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("wrote ") && !stdout.contains("about"), "{stdout}\n{stderr}");
    let image = media.0.join("test-image-content-0.png");
    assert!(std::fs::read(&image).unwrap().starts_with(b"\x89PNG"), "{}", image.display());

    for (shell, marker) in [("bash", "_rampart()"), ("zsh", "#compdef rampart"), ("fish", "complete -c rampart")] {
        let (code, stdout, _) = run(&["completions", shell], &[], None);
        assert_eq!(code, 0);
        assert!(
            stdout.contains(marker) && stdout.contains("upstream"),
            "{shell}: {}",
            &stdout[..200.min(stdout.len())]
        );
    }
}

#[test]
fn tool_names_and_flags_complete_from_the_cached_tool_list_even_with_the_server_gone() {
    let cache = TempDir::new("tool-cache");
    let cache_home = cache.0.to_str().unwrap();
    let server = Server::start(&["--auth-key", "cache-key-1"]);
    let url = server.url.clone();
    let env = [("RAMPART_URL", url.as_str()), ("RAMPART_TOKEN", "cache-key-1"), ("XDG_CACHE_HOME", cache_home)];
    let (code, _, stderr) = run(&["tool"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    drop(server.stop());

    // `--help` from the cache: no connection needed.
    let (code, stdout, stderr) = run(&["tool", "convert-time", "--help"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("--source-timezone <TEXT>"), "{stdout}");

    // The completion hook of the bash script, as bash runs it on Tab.
    let (code, script, _) = run(&["completions", "bash"], &[], None);
    assert_eq!(code, 0);
    let complete = |words: &str, cword: usize| {
        let program = format!(
            "source /dev/stdin; COMP_WORDS=({words}); COMP_CWORD={cword}; \
             _rampart_with_tools rampart \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let output = std::process::Command::new("bash")
            .args(["-c", &program])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    std::path::Path::new(crate::support::BIN).parent().unwrap().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes())?;
                drop(child.stdin.take());
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(complete("rampart tool get_cu", 2), ["get_current_time"]);
    assert_eq!(complete("rampart tool convert-", 2), ["convert-time"], "kebab-case typed, kebab-case offered");
    let flags = complete("rampart tool convert_time --", 3);
    for flag in ["--source-timezone", "--time", "--target-timezone"] {
        assert!(flags.contains(&flag.to_owned()), "{flags:?}");
    }
    assert!(complete("rampart to", 1).contains(&"tool".to_owned()), "the static part still works");
}
