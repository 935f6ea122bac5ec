//! Policy tables: (principal roles, request, expected decision), one table per concern,
//! all through [`check`]; then configuration errors, the serde model and explanations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// The configuration most tables run against.
const CONFIG: &str = r#"
[roles.ops]
description = "operators"
includes = ["writer"]
tools = ["fs_*", "run_command"]
fs = [{ path = "/srv/data/**", access = "read" }, { path = "/srv/out/**", access = "read-write" }]
commands = ["git", "ls"]
databases = [{ name = "analytics", access = "read" }, { name = "scratch-*", access = "read-write" }]
http_apis = ["github", "crm-*"]

[roles.reader]
fs = [{ path = "/srv/public/**" }]
http_apis = ["status"]

[roles.home]
fs = [{ path = "/root/**", access = "read-write" }, { path = "/srv/*/notes.txt", access = "read" }]

[roles.auditor]
includes = ["ops"]

[roles.empty]
"#;

/// `rampart.toml` as far as roles go: the `[roles]` table, as `rampart-config` embeds it.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    roles: PolicyConfig,
}

fn parse(toml_text: &str) -> Result<PolicyConfig, toml::de::Error> {
    toml::from_str::<ConfigFile>(toml_text).map(|file| file.roles)
}

fn config(toml_text: &str) -> PolicyConfig {
    parse(toml_text).expect("test configuration parses")
}

fn policy(toml_text: &str) -> Policy {
    Policy::new(&config(toml_text)).expect("test configuration is valid")
}

fn strings(roles: &[&str]) -> Vec<String> {
    roles.iter().map(|role| (*role).to_owned()).collect()
}

/// Decides `request` for a principal holding `roles` and compares the decision's text;
/// also checks that `allows` and `explain` agree with `decide`.
fn check(policy: &Policy, roles: &[&str], request: &Request<'_>, expected: &str) {
    let roles = strings(roles);
    let decision = policy.decide(&roles, request);
    assert_eq!(decision.to_string(), expected, "roles {roles:?}, request {request:?}");
    assert_eq!(policy.allows(&roles, request), decision.is_allowed(), "allows {roles:?} {request:?}");
    assert_eq!(policy.explain(&roles, request).decision, decision, "explain {roles:?} {request:?}");
}

fn check_table(policy: &Policy, cases: &[(&[&str], Request<'_>, &str)]) {
    for (roles, request, expected) in cases {
        check(policy, roles, request, expected);
    }
}

fn tool(name: &str) -> Request<'_> {
    Request::tool(name)
}

fn read(path: &str) -> Request<'_> {
    Request::fs(path, Access::Read)
}

fn write(path: &str) -> Request<'_> {
    Request::fs(path, Access::ReadWrite)
}

#[test]
fn deny_by_default() {
    let policy = policy("");
    check_table(
        &policy,
        &[
            (&[], tool("system_health"), "deny: missing tool 'system_health'"),
            (&[], read("/"), "deny: missing fs read on '/'"),
            (&[], Request::command("ls"), "deny: missing command 'ls'"),
            (&[], Request::database("db", Access::Read), "deny: missing database read on 'db'"),
            (&[], Request::http_api("github"), "deny: missing HTTP API 'github'"),
            (&["ghost"], tool("system_health"), "deny: missing tool 'system_health'"),
            (&["Admin"], tool("system_health"), "deny: missing tool 'system_health'"),
            (&[""], tool("system_health"), "deny: missing tool 'system_health'"),
            (&["ghost", "reader"], tool("read_file"), r#"allow: tools: "read_*" of role 'reader'"#),
        ],
    );
}

#[test]
fn builtin_roles() {
    let policy = policy("");
    check_table(
        &policy,
        &[
            (&["public"], tool("system_health"), r#"allow: tools: "system_health" of role 'public'"#),
            (&["public"], tool("system_about"), "deny: missing tool 'system_about'"),
            (&["public"], tool("get_current_time"), "deny: missing tool 'get_current_time'"),
            (&["public"], tool("read_file"), "deny: missing tool 'read_file'"),
            (&["public"], tool("system_health_x"), "deny: missing tool 'system_health_x'"),
            (&["reader"], tool("system_health"), r#"allow: tools: "system_*" of role 'reader'"#),
            (&["reader"], tool("system_about"), r#"allow: tools: "system_*" of role 'reader'"#),
            (&["reader"], tool("get_current_time"), r#"allow: tools: "get_current_time" of role 'reader'"#),
            (&["reader"], tool("convert_time"), r#"allow: tools: "convert_time" of role 'reader'"#),
            (&["reader"], tool("read_file"), r#"allow: tools: "read_*" of role 'reader'"#),
            (&["reader"], tool("list_directory"), r#"allow: tools: "list_*" of role 'reader'"#),
            (&["reader"], tool("directory_tree"), r#"allow: tools: "directory_tree" of role 'reader'"#),
            (&["reader"], tool("sql_list_tables"), r#"allow: tools: "sql_list_*" of role 'reader'"#),
            (&["reader"], tool("sql_query"), r#"allow: tools: "sql_query" of role 'reader'"#),
            (&["reader"], tool("http_list_apis"), r#"allow: tools: "http_list_apis" of role 'reader'"#),
            (&["reader"], tool("write_file"), "deny: missing tool 'write_file'"),
            (&["reader"], tool("sql_execute"), "deny: missing tool 'sql_execute'"),
            (&["reader"], tool("http_request"), "deny: missing tool 'http_request'"),
            (&["reader"], tool("run_command"), "deny: missing tool 'run_command'"),
            (&["reader"], tool("admin_token_create"), "deny: missing tool 'admin_token_create'"),
            (&["writer"], tool("write_file"), r#"allow: tools: "write_file" of role 'writer'"#),
            (&["writer"], tool("run_script"), r#"allow: tools: "run_script" of role 'writer'"#),
            (&["writer"], tool("read_file"), r#"allow: tools: "read_*" of role 'reader' (reached through 'writer')"#),
            (
                &["writer"],
                tool("system_health"),
                r#"allow: tools: "system_*" of role 'reader' (reached through 'writer')"#,
            ),
            (&["writer"], tool("admin_token_create"), "deny: missing tool 'admin_token_create'"),
            (&["writer"], tool("write_file_x"), "deny: missing tool 'write_file_x'"),
            // Tool grants give no resource scope: reader and writer read no path by default.
            (&["reader"], read("/srv/data/a"), "deny: missing fs read on '/srv/data/a'"),
            (&["writer"], write("/tmp/x"), "deny: missing fs read-write on '/tmp/x'"),
            (&["writer"], Request::command("git"), "deny: missing command 'git'"),
            (&["writer"], Request::database("analytics", Access::Read), "deny: missing database read on 'analytics'"),
            (&["writer"], Request::http_api("github"), "deny: missing HTTP API 'github'"),
        ],
    );
}

#[test]
fn admin_is_allowed_everything() {
    let policy = policy(CONFIG);
    check_table(
        &policy,
        &[
            (&["admin"], tool("admin_token_create"), r#"allow: tools: "*" of role 'admin'"#),
            (&["admin"], tool("anything/at all"), r#"allow: tools: "*" of role 'admin'"#),
            (&["admin"], write("/etc/passwd"), r#"allow: fs: "**" (read-write) of role 'admin'"#),
            (&["admin"], read("/"), r#"allow: fs: "**" (read-write) of role 'admin'"#),
            (&["admin"], Request::command("rm"), r#"allow: commands: "*" of role 'admin'"#),
            (
                &["admin"],
                Request::database("prod", Access::ReadWrite),
                r#"allow: databases: "*" (read-write) of role 'admin'"#,
            ),
            (&["admin"], Request::http_api("anything"), r#"allow: http_apis: "*" of role 'admin'"#),
            // Not even admin gets a path that is not normalized.
            (
                &["admin"],
                read("/srv/data/.."),
                "deny: missing fs read on '/srv/data/..', which no grant allows: the path has a '..' component; \
                 pass the normalized absolute path",
            ),
        ],
    );
}

#[test]
fn configured_roles_and_includes() {
    let policy = policy(CONFIG);
    check_table(
        &policy,
        &[
            (&["ops"], tool("fs_stat"), r#"allow: tools: "fs_*" of role 'ops'"#),
            (&["ops"], tool("FS_stat"), "deny: missing tool 'FS_stat'"),
            (&["ops"], tool("write_file"), r#"allow: tools: "write_file" of role 'writer' (reached through 'ops')"#),
            (&["ops"], tool("system_health"), r#"allow: tools: "system_*" of role 'reader' (reached through 'ops')"#),
            (&["ops"], tool("admin_token_list"), "deny: missing tool 'admin_token_list'"),
            // auditor -> ops -> writer -> reader -> public
            (&["auditor"], tool("read_file"), r#"allow: tools: "read_*" of role 'reader' (reached through 'auditor')"#),
            (
                &["auditor"],
                read("/srv/data/a.csv"),
                r#"allow: fs: "/srv/data/**" (read) of role 'ops' (reached through 'auditor')"#,
            ),
            (
                &["auditor"],
                Request::http_api("crm-eu"),
                r#"allow: http_apis: "crm-*" of role 'ops' (reached through 'auditor')"#,
            ),
            (&["empty"], tool("system_health"), "deny: missing tool 'system_health'"),
            (&["empty"], read("/srv/public/x"), "deny: missing fs read on '/srv/public/x'"),
            // Principal roles are tried in the order given.
            (&["reader", "ops"], tool("system_health"), r#"allow: tools: "system_*" of role 'reader'"#),
            (
                &["ops", "reader"],
                tool("system_health"),
                r#"allow: tools: "system_*" of role 'reader' (reached through 'ops')"#,
            ),
        ],
    );
}

#[test]
fn configuration_adds_to_builtin_roles() {
    let policy = policy(CONFIG);
    check_table(
        &policy,
        &[
            (&["reader"], read("/srv/public/index.html"), r#"allow: fs: "/srv/public/**" (read) of role 'reader'"#),
            (&["reader"], Request::http_api("status"), r#"allow: http_apis: "status" of role 'reader'"#),
            // The built-in grants are still there.
            (&["reader"], tool("system_about"), r#"allow: tools: "system_*" of role 'reader'"#),
            (
                &["writer"],
                read("/srv/public/x"),
                r#"allow: fs: "/srv/public/**" (read) of role 'reader' (reached through 'writer')"#,
            ),
            (
                &["ops"],
                read("/srv/public/x"),
                r#"allow: fs: "/srv/public/**" (read) of role 'reader' (reached through 'ops')"#,
            ),
            // public does not include reader.
            (&["public"], read("/srv/public/x"), "deny: missing fs read on '/srv/public/x'"),
            (&["reader"], write("/srv/public/x"), "deny: missing fs read-write on '/srv/public/x'"),
        ],
    );
    let effective = policy.effective_config();
    let reader = &effective["reader"];
    assert!(reader.tools.contains(&"read_*".to_owned()), "{reader:?}");
    assert_eq!(reader.fs, vec![FsScope { path: "/srv/public/**".into(), access: Access::Read }]);
    assert_eq!(reader.includes, vec!["public".to_owned()]);
    assert_eq!(effective["ops"].description.as_deref(), Some("operators"));
}

#[test]
fn read_versus_read_write() {
    let policy = policy(CONFIG);
    let db = Request::database;
    check_table(
        &policy,
        &[
            (&["ops"], read("/srv/data/a"), r#"allow: fs: "/srv/data/**" (read) of role 'ops'"#),
            (&["ops"], write("/srv/data/a"), "deny: missing fs read-write on '/srv/data/a'"),
            (&["ops"], read("/srv/out/a"), r#"allow: fs: "/srv/out/**" (read-write) of role 'ops'"#),
            (&["ops"], write("/srv/out/a/b"), r#"allow: fs: "/srv/out/**" (read-write) of role 'ops'"#),
            (&["ops"], db("analytics", Access::Read), r#"allow: databases: "analytics" (read) of role 'ops'"#),
            (&["ops"], db("analytics", Access::ReadWrite), "deny: missing database read-write on 'analytics'"),
            (
                &["ops"],
                db("scratch-1", Access::ReadWrite),
                r#"allow: databases: "scratch-*" (read-write) of role 'ops'"#,
            ),
            (&["ops"], db("scratch-1", Access::Read), r#"allow: databases: "scratch-*" (read-write) of role 'ops'"#),
            (&["ops"], db("analytics2", Access::Read), "deny: missing database read on 'analytics2'"),
        ],
    );
    assert!(Access::ReadWrite.satisfies(Access::Read));
    assert!(Access::Read.satisfies(Access::Read));
    assert!(!Access::Read.satisfies(Access::ReadWrite));
}

#[test]
fn name_scopes() {
    let policy = policy(CONFIG);
    let (cmd, api) = (Request::command, Request::http_api);
    check_table(
        &policy,
        &[
            (&["ops"], cmd("git"), r#"allow: commands: "git" of role 'ops'"#),
            (&["ops"], cmd("ls"), r#"allow: commands: "ls" of role 'ops'"#),
            (&["ops"], cmd("gitk"), "deny: missing command 'gitk'"),
            (&["ops"], cmd("/usr/bin/git"), "deny: missing command '/usr/bin/git'"),
            (&["ops"], cmd("rm"), "deny: missing command 'rm'"),
            (&["ops"], api("github"), r#"allow: http_apis: "github" of role 'ops'"#),
            (&["ops"], api("github-evil"), "deny: missing HTTP API 'github-evil'"),
            (&["ops"], api("crm-eu"), r#"allow: http_apis: "crm-*" of role 'ops'"#),
            (&["ops"], api("crm"), "deny: missing HTTP API 'crm'"),
            // Name globs are not path globs: `*` matches `/`.
            (&["ops"], tool("fs_a/b"), r#"allow: tools: "fs_*" of role 'ops'"#),
        ],
    );
}

#[test]
fn fs_paths() {
    let policy = policy(CONFIG);
    let refused =
        |path: &str, problem: &str| format!("deny: missing fs read on '{path}', which no grant allows: {problem}");
    let dotdot = "the path has a '..' component; pass the normalized absolute path";
    let dot = "the path has a '.' or empty component; pass the normalized absolute path";
    let cases: &[(&[&str], Request, &str)] = &[
        (&["home"], write("/root/.bashrc"), r#"allow: fs: "/root/**" (read-write) of role 'home'"#),
        (&["home"], read("/root/a/b/c"), r#"allow: fs: "/root/**" (read-write) of role 'home'"#),
        // Sibling prefixes are other directories.
        (&["home"], read("/root_evil"), "deny: missing fs read on '/root_evil'"),
        (&["home"], read("/root_evil/x"), "deny: missing fs read on '/root_evil/x'"),
        (&["ops"], read("/srv/data-evil/x"), "deny: missing fs read on '/srv/data-evil/x'"),
        (&["ops"], read("/srv/database"), "deny: missing fs read on '/srv/database'"),
        // `dir/**` covers what is under dir, not dir itself.
        (&["home"], read("/root"), "deny: missing fs read on '/root'"),
        // `*` stays within one component.
        (&["home"], read("/srv/a/notes.txt"), r#"allow: fs: "/srv/*/notes.txt" (read) of role 'home'"#),
        (&["home"], read("/srv/a/b/notes.txt"), "deny: missing fs read on '/srv/a/b/notes.txt'"),
        (&["home"], read("/srv/notes.txt"), "deny: missing fs read on '/srv/notes.txt'"),
        // Paths that are not normalized and absolute are refused whatever the grants.
        (&["ops"], read("/srv/data/../etc/passwd"), &refused("/srv/data/../etc/passwd", dotdot)),
        (&["ops"], read("/srv/data/.."), &refused("/srv/data/..", dotdot)),
        (&["home"], read("/root/../root_evil"), &refused("/root/../root_evil", dotdot)),
        (&["ops"], read("srv/data/x"), &refused("srv/data/x", "the path is not absolute")),
        (&["ops"], read(""), &refused("", "the path is not absolute")),
        (&["ops"], read("/srv/data/./x"), &refused("/srv/data/./x", dot)),
        (&["ops"], read("/srv/data//x"), &refused("/srv/data//x", dot)),
        (&["ops"], read("/srv/data/x/"), &refused("/srv/data/x/", dot)),
        (&["ops"], read("/srv/data/x\0"), &refused("/srv/data/x\\0", "the path contains a NUL byte")),
        // Names are escaped so that they cannot forge lines.
        (&["ops"], read("/srv/x'\ny"), "deny: missing fs read on '/srv/x\\'\\ny'"),
    ];
    check_table(&policy, cases);
}

#[test]
fn invalid_configurations() {
    let cases: &[(&str, &str)] = &[
        (
            "[roles.a]\nincludes = [\"b\"]\n[roles.b]\nincludes = [\"a\"]",
            "roles include each other in a cycle: a -> b -> a",
        ),
        ("[roles.a]\nincludes = [\"a\"]", "roles include each other in a cycle: a -> a"),
        (
            "[roles.a]\nincludes = [\"b\"]\n[roles.b]\nincludes = [\"c\"]\n[roles.c]\nincludes = [\"a\"]",
            "roles include each other in a cycle: a -> b -> c -> a",
        ),
        ("[roles.reader]\nincludes = [\"writer\"]", "roles include each other in a cycle: reader -> writer -> reader"),
        (
            "[roles.ops]\nincludes = [\"writers\"]",
            "role 'ops' includes 'writers', which is not a defined role (defined: admin, ops, public, reader, writer)",
        ),
        (
            "[roles.ops]\ntools = [\"fs_[a\"]",
            r#"role 'ops': tools pattern "fs_[a" is not valid: unclosed character class; missing ']'"#,
        ),
        (
            "[roles.ops]\ndatabases = [{ name = \"{a,b\" }]",
            r#"role 'ops': databases pattern "{a,b" is not valid: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"#,
        ),
        ("[roles.ops]\ncommands = [\"\"]", r#"role 'ops': commands pattern "" is not valid: the pattern is empty"#),
        (
            "[roles.ops]\nfs = [{ path = \"srv/**\" }]",
            r#"role 'ops': fs pattern "srv/**" is not valid: an fs pattern must be an absolute path (start with '/') or start with '**'"#,
        ),
        (
            "[roles.ops]\nfs = [{ path = \"/srv/../etc/**\" }]",
            r#"role 'ops': fs pattern "/srv/../etc/**" is not valid: an fs pattern cannot have a '..' component"#,
        ),
        (
            "[roles.public]\nhttp_apis = [\"[\"]",
            r#"role 'public': http_apis pattern "[" is not valid: unclosed character class; missing ']'"#,
        ),
        ("[roles.\"a b\"]", r#"role name "a b" is not valid: use ASCII letters, digits, '-' and '_'"#),
        (r#"[roles.""]"#, r#"role name "" is not valid: use ASCII letters, digits, '-' and '_'"#),
    ];
    for (toml_text, expected) in cases {
        let error = Policy::new(&config(toml_text)).expect_err(toml_text);
        assert_eq!(error.to_string(), *expected, "config:\n{toml_text}");
    }
}

/// A pattern at the length limit is built into a matcher when first checked (no panic),
/// and one byte more is refused with the policy.
#[test]
fn patterns_are_bounded_and_the_longest_still_matches() {
    let longest = format!("/{}", "?*".repeat(2047) + "x");
    assert_eq!(longest.len(), 4096);
    let policy = policy(&format!("[roles.ops]\nfs = [{{ path = \"{longest}\" }}]"));
    let ops = strings(&["ops"]);
    assert!(policy.allows(&ops, &read(&format!("/{}x", "a".repeat(2047)))));
    assert!(!policy.allows(&ops, &read("/etc/passwd")));
    let error = Policy::new(&config(&format!("[roles.ops]\nfs = [{{ path = \"{longest}y\" }}]"))).unwrap_err();
    assert!(error.to_string().ends_with("is not valid: the pattern is longer than 4096 bytes"), "{error}");
}

#[test]
fn model_rejects_unknown_keys_and_values() {
    let cases: &[(&str, &str)] = &[
        ("[roles.ops]\ntool = [\"x\"]", "unknown field `tool`"),
        ("[roles.ops]\nfs = [{ path = \"/x\", acess = \"read\" }]", "unknown field `acess`"),
        ("[roles.ops]\nfs = [{ path = \"/x\", access = \"write\" }]", "unknown variant `write`"),
        ("[roles.ops]\ndatabases = [{ access = \"read\" }]", "missing field `name`"),
        ("[roles.ops]\ntools = \"x\"", "invalid type"),
    ];
    for (toml_text, expected) in cases {
        let error = parse(toml_text).expect_err(toml_text).to_string();
        assert!(error.contains(expected), "config:\n{toml_text}\nerror: {error}");
    }
}

#[test]
fn model_round_trips_through_toml() {
    let parsed = config(CONFIG);
    assert_eq!(parsed["reader"].fs[0].access, Access::Read, "access defaults to read");
    assert_eq!(parsed["empty"], RoleConfig::default());
    let written = toml::to_string(&ConfigFile { roles: parsed.clone() }).expect("serializes");
    assert!(written.contains(r#"access = "read-write""#), "{written}");
    assert!(!written.contains("description = \"\""), "{written}");
    assert_eq!(config(&written), parsed);
}

#[test]
fn role_names_and_unknown_roles() {
    let policy = policy(CONFIG);
    let names: Vec<&str> = policy.role_names().collect();
    assert_eq!(names, ["admin", "auditor", "empty", "home", "ops", "public", "reader", "writer"]);
    let builtin = self::policy("");
    assert_eq!(builtin.role_names().collect::<Vec<_>>(), ["admin", "public", "reader", "writer"]);
    assert_eq!(policy.unknown_roles(&strings(&["reader", "ghost", "ops", "ghost", "Reader"])), ["ghost", "Reader"]);
    assert!(policy.unknown_roles(&strings(&["admin", "empty"])).is_empty());
}

#[test]
fn explain_a_deny() {
    let policy = policy(CONFIG);
    let explanation = policy.explain(&strings(&["ops", "ghost"]), &write("/srv/data/report.csv"));
    let expected = "\
request:  fs read-write on '/srv/data/report.csv'
decision: deny: missing fs read-write on '/srv/data/report.csv'
roles:
  ops
    ops
    writer (through ops -> writer)
    reader (through ops -> writer -> reader)
    public (through ops -> writer -> reader -> public)
  ghost: not a defined role, grants nothing
closest rules that did not match:
  fs: \"/srv/data/**\" (read) of role 'ops': grants read only
  fs: \"/srv/out/**\" (read-write) of role 'ops': the pattern does not match
  fs: \"/srv/public/**\" (read) of role 'reader' (reached through 'ops'): the pattern does not match
roles that would allow it: admin
";
    assert_eq!(explanation.to_string(), expected);
    assert_eq!(explanation.near_misses[0].reason, MissReason::AccessTooNarrow);
}

#[test]
fn explain_an_allow_and_the_roles_that_would_allow() {
    let policy = policy(CONFIG);
    let explanation = policy.explain(&strings(&["writer"]), &tool("read_file"));
    let expected = "\
request:  tool 'read_file'
decision: allow: tools: \"read_*\" of role 'reader' (reached through 'writer')
roles:
  writer
    writer
    reader (through writer -> reader)
    public (through writer -> reader -> public)
";
    assert_eq!(explanation.to_string(), expected);
    assert!(explanation.near_misses.is_empty() && explanation.allowed_by.is_empty());

    let denied = policy.explain(&[], &tool("write_file"));
    assert_eq!(denied.allowed_by, ["admin", "auditor", "ops", "writer"]);
    assert!(denied.to_string().contains("roles:    none (everything is denied)\n"), "{denied}");

    let nobody = policy.explain(&strings(&["reader"]), &Request::command("rm"));
    assert!(nobody.allowed_by == ["admin"], "{nobody}");

    let refused = policy.explain(&strings(&["admin"]), &read("/a/../b"));
    assert!(refused.allowed_by.is_empty() && refused.near_misses.is_empty(), "{refused}");
    assert!(!refused.to_string().contains("would allow"), "{refused}");
}

#[test]
fn policy_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
}

#[test]
fn decisions_serialize_for_audit_and_json_output() {
    let policy = policy(CONFIG);
    let cases: &[(&[&str], Request, serde_json::Value)] = &[
        (
            &["writer"],
            tool("read_file"),
            serde_json::json!({"effect": "allow", "grant": {"role": "reader", "principal_role": "writer",
                "rule": {"kind": "tool", "pattern": "read_*"}}}),
        ),
        (
            &["ops"],
            write("/srv/data/a"),
            serde_json::json!({"effect": "deny", "missing": {"kind": "fs", "path": "/srv/data/a", "access": "read-write"}}),
        ),
        (
            &["ops"],
            read("/a/../b"),
            serde_json::json!({"effect": "deny", "missing": {"kind": "fs_path", "path": "/a/../b", "access": "read",
                "problem": "parent_component"}}),
        ),
    ];
    for (roles, request, expected) in cases {
        let decision = policy.decide(&strings(roles), request);
        assert_eq!(&serde_json::to_value(&decision).unwrap(), expected, "{roles:?} {request:?}");
    }
    let explanation = serde_json::to_value(policy.explain(&strings(&["ops"]), &write("/srv/data/a"))).unwrap();
    assert_eq!(explanation["near_misses"][0]["reason"], "access_too_narrow");
    assert_eq!(explanation["roles"][0]["reached"][1], serde_json::json!(["ops", "writer"]));
}

#[test]
fn resources_and_prompts_are_granted_by_their_own_lists_and_denied_by_default() {
    let policy = policy(
        r#"
        [roles.viewer]
        includes = ["reader"]
        resources = ["test://static-*", "file:///srv/notes/**"]
        prompts = ["summarize_*"]
        "#,
    );
    let resource = Request::resource;
    let prompt = Request::prompt;
    check_table(
        &policy,
        &[
            (&["reader"], resource("test://static-text"), "deny: missing resource 'test://static-text'"),
            (&["reader"], prompt("summarize_day"), "deny: missing prompt 'summarize_day'"),
            (&["viewer"], resource("test://static-text"), r#"allow: resources: "test://static-*" of role 'viewer'"#),
            (&["viewer"], resource("test://static/x"), "deny: missing resource 'test://static/x'"),
            (
                &["viewer"],
                resource("file:///srv/notes/a/b.md"),
                r#"allow: resources: "file:///srv/notes/**" of role 'viewer'"#,
            ),
            (&["viewer"], resource("file:///srv/other"), "deny: missing resource 'file:///srv/other'"),
            (&["viewer"], prompt("summarize_day"), r#"allow: prompts: "summarize_*" of role 'viewer'"#),
            (&["viewer"], prompt("other"), "deny: missing prompt 'other'"),
            (&["admin"], resource("anything://at/all"), r#"allow: resources: "**" of role 'admin'"#),
            (&["admin"], prompt("any"), r#"allow: prompts: "*" of role 'admin'"#),
        ],
    );
}

/// A toolbox's own kind of scope (`Request::scope`), granted by `scopes.KIND`: matched
/// only against grants of that kind, with the access level checked.
#[test]
fn scopes_of_a_toolboxs_own_kind() {
    let policy = policy(
        r#"
[roles.team]
scopes = { notebook = [{ name = "team-*", access = "read-write" }, { name = "handbook" }] }

[roles.guest]
scopes = { notebook = [{ name = "handbook", access = "read" }], ticket = [{ name = "*" }] }
databases = [{ name = "team-db", access = "read-write" }]
"#,
    );
    let notebook = |name, access| Request::scope("notebook", name, access);
    check_table(
        &policy,
        &[
            (
                &["team"],
                notebook("team-ops", Access::ReadWrite),
                r#"allow: scopes.notebook: "team-*" (read-write) of role 'team'"#,
            ),
            (
                &["team"],
                notebook("team-ops", Access::Read),
                r#"allow: scopes.notebook: "team-*" (read-write) of role 'team'"#,
            ),
            (
                &["team"],
                notebook("handbook", Access::Read),
                r#"allow: scopes.notebook: "handbook" (read) of role 'team'"#,
            ),
            (
                &["team"],
                notebook("handbook", Access::ReadWrite),
                "deny: missing scope notebook read-write on 'handbook'",
            ),
            (&["team"], notebook("private", Access::Read), "deny: missing scope notebook read on 'private'"),
            (&["guest"], notebook("team-ops", Access::Read), "deny: missing scope notebook read on 'team-ops'"),
            (
                &["guest"],
                Request::scope("ticket", "42", Access::Read),
                r#"allow: scopes.ticket: "*" (read) of role 'guest'"#,
            ),
            // A grant of one kind never answers for another kind, built-in or not.
            (
                &["guest"],
                Request::scope("ticket", "42", Access::ReadWrite),
                "deny: missing scope ticket read-write on '42'",
            ),
            (&["team"], Request::scope("ticket", "42", Access::Read), "deny: missing scope ticket read on '42'"),
            (
                &["guest"],
                Request::scope("database", "team-db", Access::Read),
                "deny: missing scope database read on 'team-db'",
            ),
            (&["team"], Request::database("team-ops", Access::Read), "deny: missing database read on 'team-ops'"),
            (
                &["reader", "writer"],
                notebook("handbook", Access::Read),
                "deny: missing scope notebook read on 'handbook'",
            ),
            (
                &["admin"],
                notebook("anything", Access::ReadWrite),
                r#"allow: scopes.*: "*" (read-write) of role 'admin'"#,
            ),
        ],
    );
}

#[test]
fn a_bad_scope_kind_or_pattern_is_refused() {
    let error = Policy::new(&config("[roles.x]\nscopes = { \"Note Book\" = [{ name = \"a\" }] }")).unwrap_err();
    assert!(error.to_string().contains("scope kind"), "{error}");
    let error = Policy::new(&config("[roles.x]\nscopes = { notebook = [{ name = \"\" }] }")).unwrap_err();
    assert!(error.to_string().contains("pattern \"\" is not valid"), "{error}");
}
