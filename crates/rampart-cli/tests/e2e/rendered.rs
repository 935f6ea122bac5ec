//! What people see: the real output of each rendered command against a real server,
//! snapshot-tested (insta) with times, ids, secrets, durations and ports filtered out. A
//! change of layout shows up here as a diff to review (`cargo insta review`, or
//! `INSTA_UPDATE=always` then `git diff`).

use crate::support::{Server, TempDir, run};

#[test]
fn every_rendered_command_as_people_see_it() {
    let server = Server::start(&["--profile", "conformance"]);
    let admin = server.admin_token();
    let cache = TempDir::new("rendered-cache");
    let data = server.data.0.to_str().unwrap().to_owned();
    let env = [
        ("RAMPART_URL", server.url.as_str()),
        ("RAMPART_TOKEN", admin.as_str()),
        ("XDG_CACHE_HOME", cache.0.to_str().unwrap()),
        ("RAMPART_DATA_DIR", data.as_str()),
        ("NO_COLOR", "1"),
    ];
    let commands: &[(&str, &[&str])] = &[
        ("tool_list", &["tool"]),
        ("tool_help", &["tool", "convert-time", "--help"]),
        (
            "call_structured",
            &["call", "convert_time", "source_timezone=UTC", "time=09:30", "target_timezone=Asia/Tokyo"],
        ),
        ("call_text", &["call", "test_simple_text"]),
        ("call_image", &["call", "test_image_content"]),
        ("call_tool_error", &["call", "test_error_handling"]),
        ("call_unknown_tool", &["call", "no_such_tool"]),
        ("tool_bad_flag", &["tool", "convert-time", "--time", "09:30"]),
        ("resources", &["resources"]),
        ("resource_read", &["resource", "read", "test://static-text"]),
        ("resource_read_blob", &["resource", "read", "test://static-binary"]),
        ("prompts", &["prompts"]),
        ("prompt_get", &["prompt", "get", "test_prompt_with_arguments", "arg1=alpha", "arg2=beta"]),
        ("complete", &["complete", "prompt", "test_prompt_with_arguments", "arg1", "pa"]),
        ("token_create", &["token", "create", "--name", "snap", "--role", "reader", "--expires", "30d"]),
        ("token_list", &["token", "list"]),
        ("policy_explain", &["policy", "explain", "--role", "reader", "--tool", "admin_token_list"]),
    ];
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    for (pattern, replacement) in [
        (r"(?m)^ +\d+ (\d{4}-)", "[SEQ] $1"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", "[TIME]"),
        (r"\d{4}-\d\d-\d\d", "[DATE]"),
        (r"tok_[A-Za-z0-9]+", "[TOKEN-ID]"),
        (r"rpt_[A-Za-z0-9_-]+", "[SECRET]"),
        (r"\d+\.\dms", "[DURATION]"),
        (r"127\.0\.0\.1:\d+", "[ADDRESS]"),
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UUID]"),
        (r"(Sunday|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday)", "[DAY]"),
        // Column widths follow the width of filtered values (times have a varying number
        // of digits): the gaps between cells are compared, not their width (the unit
        // snapshots of the printer check alignment).
        (r"(\S) {2,}", "$1  "),
    ] {
        settings.add_filter(pattern, replacement);
    }
    settings.bind(|| {
        for (name, args) in commands {
            let (code, stdout, stderr) = run(args, &env, None);
            insta::assert_snapshot!(
                *name,
                format!("$ rampart {}\nexit status {code}\n--- stdout\n{stdout}--- stderr\n{stderr}", args.join(" "))
            );
        }
        // The audit record of the tool error above, once written (asynchronous commit).
        let (code, stdout, stderr) = server.cli_until(&["audit", "search", "--tool", "test_error_handling"], |out| {
            out.contains("test_error_handling")
        });
        insta::assert_snapshot!(
            "audit_search",
            format!("exit status {code}\n--- stdout\n{stdout}--- stderr\n{stderr}")
        );
    });
}
