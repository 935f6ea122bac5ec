//! The `[exec]` table and the sandbox report: errors that name the key, allowlists that
//! refuse privilege (sudo, su, setuid files), `require` refusing to start without a layer,
//! and what `rampart sandbox check` would print on this machine.

use std::os::unix::fs::PermissionsExt;

use rampart_exec::{ExecConfig, ExecConfigError, ExecToolbox, Layer, SandboxReport};
use serde_json::{Value, json};

use crate::common::base_config;

fn config_error(adjust: impl FnOnce(&mut Value)) -> String {
    let temp = tempfile::tempdir().unwrap();
    let mut config = base_config(&temp.path().join("scratch"));
    adjust(&mut config);
    match ExecToolbox::from_config(config) {
        Ok(_) => panic!("the configuration should be refused"),
        Err(error) => error.to_string(),
    }
}

fn check(adjust: impl FnOnce(&mut Value), key: &str, words: &str) {
    let message = config_error(adjust);
    assert!(message.starts_with(&format!("{key}: ")), "expected the key {key}: {message}");
    assert!(message.contains(words), "expected {words:?} in: {message}");
}

#[test]
fn configuration_errors_name_the_key() {
    check(|c| c["shell"] = json!(true), "exec.shell", "unknown field `shell`");
    check(|c| c["programs"]["ls"] = json!("ls"), "exec.programs.ls", "absolute");
    check(|c| c["programs"]["ls"] = json!(3), "exec.programs.ls", "invalid type");
    check(|c| c["programs"]["gone"] = json!("/nonexistent/bin/gone"), "exec.programs.gone", "does not exist");
    check(|c| c["programs"]["etc"] = json!("/etc"), "exec.programs.etc", "not a regular file");
    check(|c| c["programs"]["passwd"] = json!("/etc/passwd"), "exec.programs.passwd", "not executable");
    check(|c| c["programs"]["a b"] = json!("/bin/ls"), "exec.programs.a b", "name");
    check(|c| c["interpreters"]["py"] = json!("python3"), "exec.interpreters.py", "absolute");
    check(|c| c["require"] = json!(["landlock", "selinux"]), "exec.require[1]", "unknown variant");
    check(|c| c["env"]["HOME"] = json!("/root"), "exec.env.HOME", "set by the sandbox");
    check(|c| c["env"]["BAD NAME"] = json!("x"), "exec.env.BAD NAME", "name");
    check(|c| c["timeout_s"] = json!(0), "exec.timeout_s", "greater than 0");
    check(|c| c["max_output_bytes"] = json!(0), "exec.max_output_bytes", "greater than 0");
    check(|c| c["limits"]["swap"] = json!(1), "exec.limits.swap", "unknown field `swap`");
    check(|c| c["limits"]["processes"] = json!(0), "exec.limits.processes", "greater than 0");
    check(|c| c["scratch_root"] = json!("relative/dir"), "exec.scratch_root", "absolute");
    check(|c| c["scratch_root"] = json!("/"), "exec.scratch_root", "dedicated");
    check(|c| c["read_only_paths"] = json!(["etc"]), "exec.read_only_paths[0]", "absolute");
    check(|c| c["read_only_paths"] = json!(["/tmp/tools"]), "exec.read_only_paths[0]", "do not see");
    // An executable under /tmp, which runs do not see.
    let temp = tempfile::tempdir().unwrap();
    let program = temp.path().join("ls");
    std::fs::copy("/bin/ls", &program).unwrap();
    check(|c| c["programs"]["tmp"] = json!(program), "exec.programs.tmp", "do not see");
    check(|c| c["programs"]["tool"] = json!("/dev/shm/../../bin/ls"), "exec.programs.tool", "'..'");
}

#[test]
fn privilege_tools_and_setuid_files_are_refused_in_the_allowlist() {
    for name in ["sudo", "su", "doas", "pkexec", "runuser"] {
        check(|c| c["programs"][name] = json!("/bin/ls"), &format!("exec.programs.{name}"), "never");
    }
    // `su` under another name is refused by its file name and its setuid bit.
    check(|c| c["programs"]["switch"] = json!("/usr/bin/su"), "exec.programs.switch", "");
    let temp = tempfile::tempdir().unwrap();
    let setuid = temp.path().join("tool");
    std::fs::copy("/bin/ls", &setuid).unwrap();
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    check(|c| c["programs"]["tool"] = json!(setuid), "exec.programs.tool", "setuid");
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o2755)).unwrap();
    check(|c| c["interpreters"]["tool"] = json!(setuid), "exec.interpreters.tool", "setgid");
}

#[test]
fn the_defaults_are_safe() {
    let config = ExecConfig::from_value(json!({ "programs": { "ls": "/bin/ls" } })).unwrap();
    assert!(!config.network);
    assert_eq!(config.require, Layer::ALL, "every layer is required unless the operator says otherwise");
    assert_eq!(config.timeout_s, 30);
    assert_eq!(config.max_output_bytes, 1024 * 1024);
    assert_eq!(config.scratch_root, std::path::PathBuf::from("/tmp/rampart-scratch"));
    assert_eq!(config.limits.processes, 64);
}

#[test]
fn a_required_layer_that_is_missing_refuses_to_start() {
    let config = ExecConfig::from_value(json!({ "programs": { "ls": "/bin/ls" } })).unwrap();
    let mut report = ExecToolbox::check_sandbox();
    assert!(config.check_required(&report).is_ok() || !report.missing(&Layer::ALL).is_empty());
    report.landlock_abi = None;
    report.seccomp = false;
    let error = config.check_required(&report).unwrap_err();
    assert!(matches!(&error, ExecConfigError::LayerUnavailable { layers, .. } if layers.contains(&Layer::Landlock)));
    let message = error.to_string();
    assert!(message.starts_with("exec.require: "), "{message}");
    assert!(message.contains("landlock") && message.contains("seccomp"), "{message}");
    let relaxed =
        ExecConfig::from_value(json!({ "programs": { "ls": "/bin/ls" }, "require": ["namespaces"] })).unwrap();
    assert_eq!(relaxed.check_required(&report).is_ok(), report.namespaces);
}

#[test]
fn sandbox_check_reports_every_layer() {
    let report: SandboxReport = ExecToolbox::check_sandbox();
    eprintln!("sandbox check on this machine:\n{report}");
    let shown = report.to_string();
    for layer in Layer::ALL {
        assert!(shown.contains(&layer.to_string()), "{layer} missing from:\n{shown}");
        if !report.is_available(layer) {
            eprintln!("NOTE: layer {layer} is unavailable here: {}", report.detail(layer).unwrap_or("?"));
            assert!(report.detail(layer).is_some(), "an unavailable layer says why");
        }
    }
    if let Some(abi) = report.landlock_abi {
        assert!(shown.contains(&format!("ABI {abi}")), "{shown}");
        assert_eq!(report.landlock_network, abi >= 4);
    }
    let json = serde_json::to_value(&report).unwrap();
    assert!(json.get("seccomp").is_some() && json.get("namespaces").is_some(), "{json}");
    // On a machine known to have every layer (CI), a broken probe must fail rather than
    // turn every layer's tests into SKIPPED.
    if let Ok(expected) = std::env::var("SANDBOX_EXPECT_LAYERS") {
        for name in expected.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let layer: Layer = serde_json::from_value(json!(name)).unwrap();
            assert!(report.is_available(layer), "SANDBOX_EXPECT_LAYERS lists {layer}, unavailable here:\n{report}");
        }
    }
}

#[test]
fn a_toolbox_requiring_every_available_layer_starts() {
    let report = ExecToolbox::check_sandbox();
    let available: Vec<Layer> = Layer::ALL.into_iter().filter(|l| report.is_available(*l)).collect();
    let temp = tempfile::tempdir().unwrap();
    let mut config = base_config(&temp.path().join("scratch"));
    config["require"] = json!(available);
    ExecToolbox::from_config(config).unwrap();
}
