//! Layering and error tests; each writes real files in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use super::*;
use crate::{EXAMPLE_CONFIG, Profile, TransportKind};

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-config-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rampart.toml");
    std::fs::write(&path, contents).unwrap();
    path
}

fn load_with(
    file: Option<PathBuf>,
    env: &[(&str, &str)],
    flags: Vec<(&'static str, serde_json::Value)>,
) -> Result<Loaded, ConfigError> {
    load(LoadOptions {
        config_path: file,
        overrides: flags,
        dotenv: false,
        env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
    })
}

#[test]
fn example_config_parses_to_the_defaults() {
    let path = temp_file("example", EXAMPLE_CONFIG);
    let loaded = load_with(Some(path), &[], vec![]).unwrap();
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn flags_beat_environment_beats_file() {
    let path =
        temp_file("precedence", "[server]\nlisten = \"127.0.0.1:1000\"\nstateless = true\n[log]\nlevel = \"warn\"\n");
    let env = [("RAMPART_LISTEN", "127.0.0.1:2000"), ("RAMPART_LOG", "debug")];
    let loaded = load_with(Some(path), &env, vec![("server.listen", serde_json::json!("127.0.0.1:3000"))]).unwrap();
    assert_eq!(loaded.config.server.listen.port(), 3000, "flag wins");
    assert_eq!(loaded.config.log.level, "debug", "environment beats file");
    assert!(loaded.config.server.stateless, "file beats default");
}

#[test]
fn unknown_key_names_the_key_and_the_file() {
    let path = temp_file("unknown", "[server]\nlsiten = \"127.0.0.1:1\"\n");
    let error = load_with(Some(path.clone()), &[], vec![]).unwrap_err().to_string();
    assert!(error.contains("lsiten"), "{error}");
    assert!(error.contains(&path.display().to_string()), "{error}");
}

#[test]
fn bad_value_names_the_key() {
    let path = temp_file("badvalue", "[server]\nlisten = \"nowhere\"\n");
    let error = load_with(Some(path), &[], vec![]).unwrap_err().to_string();
    assert!(error.contains("server.listen") || error.contains("listen"), "{error}");
}

#[test]
fn unknown_rampart_variable_is_an_error() {
    let error = load_with(None, &[("RAMPART_LSITEN", "x")], vec![]).unwrap_err().to_string();
    assert!(error.contains("RAMPART_LSITEN"), "{error}");
}

#[test]
fn kubernetes_service_links_are_not_configuration_but_look_alikes_are_refused() {
    // What Kubernetes puts in every pod of a namespace with a Service named `rampart`.
    let links = [
        ("RAMPART_SERVICE_HOST", "10.96.0.12"),
        ("RAMPART_SERVICE_PORT", "8080"),
        ("RAMPART_SERVICE_PORT_HTTP", "8080"),
        ("RAMPART_PORT", "tcp://10.96.0.12:8080"),
        ("RAMPART_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
        ("RAMPART_PORT_8080_TCP_PROTO", "tcp"),
        ("RAMPART_PORT_8080_TCP_PORT", "8080"),
        ("RAMPART_PORT_8080_TCP_ADDR", "10.96.0.12"),
    ];
    assert!(load_with(None, &links, vec![]).is_ok());
    // The same names with what a person would mean by them: still unknown variables.
    for (name, value) in [
        ("RAMPART_PORT", "8080"),
        ("RAMPART_SERVICE_HOST", "rampart.example.com"),
        ("RAMPART_PORT_8080_TCP_ADDR", "0.0.0.0:8080"),
        ("RAMPART_PORT_X_TCP", "tcp://10.96.0.12:8080"),
        ("RAMPART_SERVICE_PORTS", "8080"),
    ] {
        let error = load_with(None, &[(name, value)], vec![]).unwrap_err().to_string();
        assert!(error.contains(name), "{name}={value}: {error}");
    }
}

#[test]
fn openapi_paths_are_relative_to_the_configuration_file() {
    let dir = std::env::temp_dir().join(format!("rampart-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rampart.toml");
    let text = "[http.apis.crm]\nbase_url = \"https://crm.example.com\"\nopenapi = \"openapi/crm.json\"\n\n\
                [http.apis.abs]\nbase_url = \"https://abs.example.com\"\nopenapi = \"/srv/abs.json\"\n";
    std::fs::write(&file, text).unwrap();
    let config = load_with(Some(file), &[], vec![]).unwrap().config;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(config.http["apis"]["crm"]["openapi"], dir.join("openapi/crm.json").to_str().unwrap());
    assert_eq!(config.http["apis"]["abs"]["openapi"], "/srv/abs.json", "absolute paths stay");
}

#[test]
fn an_empty_variable_is_not_set() {
    let loaded = load_with(None, &[("RAMPART_AUTH_KEY", ""), ("RAMPART_DATA_DIR", "")], vec![]).unwrap();
    assert!(loaded.config.auth.key.is_none(), "an empty key is no key");
    assert!(loaded.config.store.data_dir.is_none());
    let loaded = load_with(None, &[("RAMPART_AUTH_KEY", "s3cret")], vec![]).unwrap();
    assert_eq!(loaded.config.auth.key.as_ref().map(|key| key.expose().to_owned()).as_deref(), Some("s3cret"));
}

#[test]
fn bad_boolean_in_environment_names_the_variable() {
    let error = load_with(None, &[("RAMPART_STATELESS", "maybe")], vec![]).unwrap_err().to_string();
    assert!(error.contains("RAMPART_STATELESS"), "{error}");
}

#[test]
fn missing_explicit_file_is_an_error() {
    let error = load_with(Some(PathBuf::from("/nonexistent/rampart.toml")), &[], vec![]).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error}");
}

#[test]
fn environment_lists_and_enums() {
    let env = [("RAMPART_TOOLS", "system, other"), ("RAMPART_PROFILE", "conformance"), ("RAMPART_TRANSPORT", "stdio")];
    let config = load_with(None, &env, vec![]).unwrap().config;
    assert_eq!(config.tools.enabled, vec!["system", "other"]);
    assert_eq!(config.server.profile, Profile::Conformance);
    assert_eq!(config.server.transport, TransportKind::Stdio);
}

#[test]
fn secrets_are_masked_when_printed() {
    let config = load_with(None, &[("RAMPART_AUTH_KEY", "hunter2-very-secret")], vec![]).unwrap().config;
    let printed = format!("{config:?} {}", toml::to_string(&config).unwrap());
    assert!(!printed.contains("hunter2"), "{printed}");
    assert_eq!(config.auth.key.unwrap().expose(), "hunter2-very-secret");
}

#[test]
fn dbus_users_are_numeric_uids() {
    let path = temp_file("dbus-users", "[dbus.users.1000]\nroles = [\"reader\"]\n");
    assert_eq!(load_with(Some(path), &[], vec![]).unwrap().config.dbus.users["1000"].roles, ["reader"]);
    let path = temp_file("dbus-names", "[dbus.users.alice]\nroles = [\"reader\"]\n");
    let error = load_with(Some(path), &[], vec![]).unwrap_err().to_string();
    assert!(error.contains("[dbus.users.alice]") && error.contains("id -u"), "{error}");
}

#[test]
fn telemetry_takes_an_http_endpoint_and_a_ratio_from_0_to_1() {
    let env = [("RAMPART_TELEMETRY_OTLP_ENDPOINT", "http://127.0.0.1:4318"), ("RAMPART_TELEMETRY_SERVICE_NAME", "gw")];
    let loaded = load_with(None, &env, vec![]).unwrap();
    assert_eq!(loaded.config.telemetry.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!(loaded.config.telemetry.service_name, "gw");
    assert_eq!(loaded.config.telemetry.sample_ratio, 1.0);
    for (toml, expected) in [
        ("[telemetry]\notlp_endpoint = \"127.0.0.1:4318\"\n", "telemetry.otlp_endpoint"),
        ("[telemetry]\nsample_ratio = 1.5\n", "telemetry.sample_ratio"),
        ("[telemetry]\nservice_name = \" \"\n", "telemetry.service_name"),
        ("[telemetry]\nendpoint = \"http://x\"\n", "endpoint"),
    ] {
        let path = temp_file("telemetry", toml);
        let error = load_with(Some(path), &[], vec![]).unwrap_err().to_string();
        assert!(error.contains(expected), "{toml}: {error}");
    }
}
