//! What decides access around the tools: the `[fs]` configuration (errors naming the
//! key), read-only roots, the policy's fs scopes through the guard, and the client's MCP
//! roots, which narrow but never widen.

use rampart_core::{Access, PeerError, ToolError};
use rampart_fs::{FsConfig, FsToolbox, RootMode};
use serde_json::{Value, json};

use crate::common::{Fixture, RootsPeer, SECRET, TestGuard, symlink};

#[test]
fn configuration_errors_name_the_key() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().display().to_string();
    let file = temp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "roots": [{ "path": dir, "mode": "rw" }] }), "fs.roots[0].mode: unknown variant `rw`"),
        (json!({ "roots": [{ "path": dir, "modes": "read" }] }), "fs.roots[0].modes: unknown field `modes`"),
        (json!({ "roots": [{ "path": dir }], "max_read": 1 }), "fs.max_read: unknown field `max_read`"),
        (json!({ "roots": [{ "path": dir }], "max_read_bytes": "big" }), "fs.max_read_bytes: invalid type"),
        (json!({ "roots": [{ "path": dir }], "max_list_entries": 0 }), "fs.max_list_entries: must be greater than 0"),
        (json!({ "roots": [] }), "fs.roots: at least one [[fs.roots]] entry is required"),
        (json!({}), "fs.roots: at least one [[fs.roots]] entry is required"),
        (
            json!({ "roots": [{ "path": dir }, { "path": "relative/dir" }] }),
            "fs.roots[1].path: must be an absolute path",
        ),
        (json!({ "roots": [{ "path": format!("{dir}/../x") }] }), "fs.roots[0].path: must not contain '..'"),
        (json!({ "roots": [{ "path": format!("{dir}/missing") }] }), "fs.roots[0].path: cannot open"),
        (json!({ "roots": [{ "path": file }] }), "fs.roots[0].path: cannot open"),
    ];
    for (config, expected) in cases {
        let message = FsToolbox::from_config(config.clone()).unwrap_err().to_string();
        assert!(message.starts_with(expected), "{config}: {message}");
    }
    let parsed = FsConfig::from_value(json!({ "roots": [{ "path": dir }] })).unwrap();
    assert_eq!(
        (parsed.roots[0].mode, parsed.max_read_bytes, parsed.max_list_entries),
        (RootMode::Read, 10 << 20, 10_000)
    );
}

#[tokio::test]
async fn a_read_only_root_refuses_every_write_whatever_the_role() {
    let f = Fixture::with(|root| json!({ "roots": [{ "path": root, "mode": "read" }] }));
    assert_eq!(f.ok("read_text_file", json!({ "path": "file.txt" })).await, "hello\n");
    let edits = json!([{ "oldText": "hello", "newText": "bye" }]);
    let writes = [
        ("write_file", json!({ "path": "file.txt", "content": "x" })),
        ("write_file", json!({ "path": "new.txt", "content": "x" })),
        ("edit_file", json!({ "path": "file.txt", "edits": edits })),
        ("create_directory", json!({ "path": "made" })),
        ("create_directory", json!({ "path": "sub" })),
        ("move_file", json!({ "source": "file.txt", "destination": "moved.txt" })),
    ];
    for (tool, arguments) in writes {
        let message = f.err(tool, arguments).await;
        assert!(message.contains("is under the read-only root"), "{tool}: {message}");
    }
    assert_eq!(std::fs::read_to_string(f.root.join("file.txt")).unwrap(), "hello\n");
    assert!(!f.root.join("new.txt").exists() && !f.root.join("made").exists());
    assert!(f.guard.fs_requests().iter().all(|(_, access)| *access == Access::Read), "refused before the policy");
    // A dry run only reads.
    let diff = f.ok("edit_file", json!({ "path": "file.txt", "edits": edits, "dryRun": true })).await;
    assert!(diff.contains("+bye"), "{diff}");
}

#[tokio::test]
async fn nested_roots_take_the_deepest_mode_and_relative_paths_need_one_root() {
    let f = Fixture::with(
        |root| json!({ "roots": [{ "path": root, "mode": "read" }, { "path": root.join("sub"), "mode": "read-write" }] }),
    );
    f.ok("write_file", json!({ "path": f.at("sub/new.txt"), "content": "ok" })).await;
    let message = f.err("write_file", json!({ "path": f.at("new.txt"), "content": "no" })).await;
    assert!(message.contains("read-only root"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "file.txt" })).await;
    assert!(message.contains("is ambiguous"), "{message}");
}

#[tokio::test]
async fn the_policy_decides_on_the_real_path_and_its_denial_is_a_denied_error() {
    let f = Fixture::new();
    std::fs::create_dir(f.root.join("private")).unwrap();
    std::fs::write(f.root.join("private/data.txt"), SECRET).unwrap();
    symlink("private/data.txt", f.root.join("public_link"));
    symlink("private", f.root.join("public_dir"));
    let (private, sub) = (f.root.join("private"), f.root.join("sub"));
    let f = f.guard(TestGuard::denying(&[&private], &[&sub]));
    for (tool, arguments) in [
        ("read_text_file", json!({ "path": "private/data.txt" })),
        ("read_text_file", json!({ "path": "public_link" })),
        ("read_text_file", json!({ "path": "public_dir/data.txt" })),
        ("list_directory", json!({ "path": "public_dir" })),
        ("write_file", json!({ "path": "public_dir/new.txt", "content": "x" })),
        ("write_file", json!({ "path": "sub/nested.txt", "content": "x" })),
        ("move_file", json!({ "source": "file.txt", "destination": "sub/x.txt" })),
    ] {
        match f.call(tool, arguments.clone()).await {
            Err(ToolError::Denied(denied)) => assert!(denied.missing.contains(&f.root.display().to_string())),
            other => panic!("{tool} {arguments}: expected a denial, got {other:?}"),
        }
    }
    assert_eq!(f.ok("read_text_file", json!({ "path": "sub/nested.txt" })).await, "nested\n");
    let multiple = f.ok("read_multiple_files", json!({ "paths": ["public_link", "file.txt"] })).await;
    assert!(multiple.contains("public_link: Error - permission denied") && multiple.contains("hello"), "{multiple}");
    let tree = f.ok("directory_tree", json!({ "path": "." })).await;
    assert!(tree.contains("\"private\"") && !tree.contains("data.txt"), "a denied directory is not listed: {tree}");
    let asked = f.guard.fs_requests();
    assert!(asked.contains(&(f.at("private/data.txt"), Access::Read)), "{asked:?}");
    assert!(asked.contains(&(f.at("sub/nested.txt"), Access::ReadWrite)), "{asked:?}");
    assert!(!std::fs::read_to_string(f.root.join("sub/nested.txt")).unwrap().contains('x'));
}

fn roots(paths: &[&std::path::Path]) -> Value {
    let roots: Vec<Value> =
        paths.iter().map(|p| json!({ "uri": format!("file://{}", p.display()), "name": "r" })).collect();
    json!({ "roots": roots })
}

#[tokio::test]
async fn client_roots_narrow_the_configured_roots() {
    let f = Fixture::new();
    let sub = f.root.join("sub");
    let f = f.peer(RootsPeer(Ok(roots(&[&sub, std::path::Path::new("/etc")]))));
    assert_eq!(f.ok("list_allowed_directories", json!({})).await, format!("Allowed directories:\n{}", sub.display()));
    assert_eq!(f.ok("read_text_file", json!({ "path": "nested.txt" })).await, "nested\n", "relative to the one root");
    let message = f.err("read_text_file", json!({ "path": f.at("file.txt") })).await;
    assert!(message.contains("outside the allowed directories"), "{message}");
    f.err("read_text_file", json!({ "path": "/etc/passwd" })).await;
}

#[tokio::test]
async fn client_roots_never_widen_the_configured_roots() {
    let f = Fixture::new();
    let base = f.base.clone();
    let f = f.peer(RootsPeer(Ok(roots(&[&base]))));
    assert_eq!(
        f.ok("list_allowed_directories", json!({})).await,
        format!("Allowed directories:\n{}", f.root.display())
    );
    let message = f.err("read_text_file", json!({ "path": f.outside.join("secret.txt") })).await;
    assert!(message.contains("outside the allowed directories"), "{message}");

    let elsewhere = Fixture::new();
    let other = elsewhere.base.clone();
    let f = Fixture::new().peer(RootsPeer(Ok(roots(&[&other]))));
    let message = f.err("read_text_file", json!({ "path": "file.txt" })).await;
    assert!(message.contains("no allowed directories"), "{message}");
}

#[tokio::test]
async fn without_client_roots_the_configured_roots_apply_and_a_broken_client_fails_closed() {
    let answers = [
        Err(PeerError::Unsupported),
        Err(PeerError::Refused("Method not found".into())),
        Ok(json!({ "roots": [] })),
        Ok(json!({ "roots": [{ "uri": "https://example.invalid/" }] })),
    ];
    for answer in answers {
        let f = Fixture::new().peer(RootsPeer(answer));
        assert_eq!(f.ok("read_text_file", json!({ "path": "file.txt" })).await, "hello\n");
    }
    for answer in [Err(PeerError::Transport("closed".into())), Ok(json!({ "roots": "nope" }))] {
        let f = Fixture::new().peer(RootsPeer(answer));
        f.err("read_text_file", json!({ "path": "file.txt" })).await;
    }
    // A client root reached through a link inside the root is narrowed to the link's
    // target, and one that leads out is dropped.
    let f = Fixture::new();
    symlink("sub", f.root.join("sub_link"));
    symlink(&f.outside, f.root.join("out_link"));
    let (via_link, out) = (f.root.join("sub_link"), f.root.join("out_link"));
    let f = f.peer(RootsPeer(Ok(roots(&[&via_link, &out]))));
    assert_eq!(f.ok("list_allowed_directories", json!({})).await, format!("Allowed directories:\n{}", f.at("sub")));
    assert_eq!(f.ok("read_text_file", json!({ "path": f.at("sub_link/nested.txt") })).await, "nested\n");
}
