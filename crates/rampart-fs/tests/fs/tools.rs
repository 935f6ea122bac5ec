//! Each tool doing its job, with the reference filesystem server's arguments, texts and
//! structured results.

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use rampart_core::{Content, ResourceContents, Toolbox};
use serde_json::{Value, json};

use crate::common::{Fixture, symlink};

#[tokio::test]
async fn the_toolbox_serves_the_reference_tools_with_annotations() {
    let f = Fixture::new();
    let specs = f.toolbox.tools().await;
    type Hints = (Option<bool>, Option<bool>, Option<bool>);
    let summary: Vec<(&str, Hints)> = specs
        .iter()
        .map(|s| {
            let a = &s.annotations;
            (s.name.as_str(), (a.read_only_hint, a.destructive_hint, a.idempotent_hint))
        })
        .collect();
    let (t, f_) = (Some(true), Some(false));
    assert_eq!(
        summary,
        [
            ("read_text_file", (t, f_, t)),
            ("read_media_file", (t, f_, t)),
            ("read_multiple_files", (t, f_, t)),
            ("write_file", (f_, t, t)),
            ("edit_file", (f_, t, f_)),
            ("create_directory", (f_, f_, t)),
            ("list_directory", (t, f_, t)),
            ("list_directory_with_sizes", (t, f_, t)),
            ("directory_tree", (t, f_, t)),
            ("move_file", (f_, t, f_)),
            ("search_files", (t, f_, t)),
            ("get_file_info", (t, f_, t)),
            ("list_allowed_directories", (t, f_, t)),
        ]
    );
    let edit = specs.iter().find(|s| s.name == "edit_file").unwrap();
    let properties = edit.input_schema["properties"].as_object().unwrap();
    assert_eq!(properties.keys().collect::<Vec<_>>(), ["path", "edits", "dryRun"]);
    let sizes = specs.iter().find(|s| s.name == "list_directory_with_sizes").unwrap();
    assert!(sizes.input_schema["properties"]["sortBy"].is_object());
    assert!(specs.iter().all(|s| s.output_schema.is_some() && s.title.is_some()));
}

#[tokio::test]
async fn read_text_file_reads_whole_files_heads_and_tails() {
    let f = Fixture::new();
    std::fs::write(f.root.join("lines.txt"), "one\ntwo\r\nthree\nfour\n").unwrap();
    let cases = [
        (json!({ "path": "lines.txt" }), "one\ntwo\r\nthree\nfour\n"),
        (json!({ "path": f.at("lines.txt") }), "one\ntwo\r\nthree\nfour\n"),
        (json!({ "path": "lines.txt", "head": 2 }), "one\ntwo"),
        (json!({ "path": "lines.txt", "tail": 2 }), "three\nfour"),
        (json!({ "path": "lines.txt", "tail": 10 }), "one\ntwo\nthree\nfour"),
        (json!({ "path": "lines.txt", "head": 0 }), "one\ntwo\r\nthree\nfour\n"),
        (json!({ "path": "./sub/../lines.txt", "head": 1 }), "one"),
    ];
    for (arguments, expected) in cases {
        assert_eq!(f.ok("read_text_file", arguments.clone()).await, expected, "{arguments}");
    }
    let output = f.call("read_text_file", json!({ "path": "file.txt" })).await.unwrap();
    assert_eq!(output.structured_content, Some(json!({ "content": "hello\n" })));
    let message = f.err("read_text_file", json!({ "path": "lines.txt", "head": 1, "tail": 1 })).await;
    assert_eq!(message, "Cannot specify both head and tail parameters simultaneously");
    let message = f.err("read_text_file", json!({ "path": "missing.txt" })).await;
    assert!(message.contains("missing.txt") && message.contains("No such file"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "sub" })).await;
    assert!(message.contains("is a directory"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "file.txt", "extra": 1 })).await;
    assert!(message.contains("unknown field `extra`"), "{message}");
}

#[tokio::test]
async fn read_media_file_returns_images_audio_and_other_blobs() {
    let f = Fixture::new();
    let png = [0x89, b'P', b'N', b'G', 0, 1, 2, 255];
    std::fs::write(f.root.join("pic.PNG"), png).unwrap();
    std::fs::write(f.root.join("sound.wav"), b"RIFF").unwrap();
    std::fs::write(f.root.join("data.bin"), [0, 1, 2]).unwrap();
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    let output = f.call("read_media_file", json!({ "path": "pic.PNG" })).await.unwrap();
    assert_eq!(output.content, [Content::Image { data: encode(&png), mime_type: "image/png".into() }]);
    assert_eq!(
        output.structured_content,
        Some(json!({ "content": [{ "type": "image", "data": encode(&png), "mimeType": "image/png" }] }))
    );
    let output = f.call("read_media_file", json!({ "path": "sound.wav" })).await.unwrap();
    assert_eq!(output.content, [Content::Audio { data: encode(b"RIFF"), mime_type: "audio/wav".into() }]);
    let output = f.call("read_media_file", json!({ "path": "data.bin" })).await.unwrap();
    let uri = format!("file://{}", f.at("data.bin"));
    assert_eq!(
        output.content,
        [Content::Resource {
            resource: ResourceContents::Blob {
                uri: uri.clone(),
                mime_type: Some("application/octet-stream".into()),
                blob: encode(&[0, 1, 2])
            }
        }]
    );
    assert_eq!(output.structured_content.unwrap()["content"][0]["resource"]["uri"], json!(uri));
}

#[tokio::test]
async fn read_multiple_files_reports_each_failure_without_stopping() {
    let f = Fixture::new();
    let text = f.ok("read_multiple_files", json!({ "paths": ["file.txt", "missing.txt", "sub/nested.txt"] })).await;
    let parts: Vec<&str> = text.split("\n---\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert_eq!(parts[0], "file.txt:\nhello\n\n");
    assert!(parts[1].starts_with("missing.txt: Error - ") && parts[1].contains("No such file"), "{}", parts[1]);
    assert_eq!(parts[2], "sub/nested.txt:\nnested\n\n");
    let message = f.err("read_multiple_files", json!({ "paths": [] })).await;
    assert!(message.contains("At least one file path"), "{message}");
}

#[tokio::test]
async fn write_file_creates_and_replaces_atomically_keeping_permissions() {
    let f = Fixture::new();
    assert_eq!(
        f.ok("write_file", json!({ "path": "new.txt", "content": "fresh" })).await,
        "Successfully wrote to new.txt"
    );
    assert_eq!(std::fs::read_to_string(f.root.join("new.txt")).unwrap(), "fresh");
    std::fs::set_permissions(f.root.join("file.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    f.ok("write_file", json!({ "path": f.at("file.txt"), "content": "replaced" })).await;
    assert_eq!(std::fs::read_to_string(f.root.join("file.txt")).unwrap(), "replaced");
    let mode = std::fs::metadata(f.root.join("file.txt")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let leftovers: Vec<_> = std::fs::read_dir(&f.root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".rampart-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    let message = f.err("write_file", json!({ "path": "nowhere/new.txt", "content": "x" })).await;
    assert!(message.contains("No such file"), "{message}");
    let message = f.err("write_file", json!({ "path": "sub", "content": "x" })).await;
    assert!(message.contains("a directory"), "{message}");
}

#[tokio::test]
async fn edit_file_returns_a_unified_diff_and_honours_dry_run() {
    let f = Fixture::new();
    std::fs::write(f.root.join("code.rs"), "fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n").unwrap();
    let edits = json!([{ "oldText": "let x = 1;", "newText": "let x = 2;" }]);
    let path = f.at("code.rs");
    let diff = f.ok("edit_file", json!({ "path": "code.rs", "edits": edits, "dryRun": true })).await;
    let expected = format!(
        "```diff\nIndex: {path}\n===================================================================\n\
         --- {path}\toriginal\n+++ {path}\tmodified\n@@ -1,4 +1,4 @@\n fn main() {{\n-    let x = 1;\n\
         +    let x = 2;\n     println!(\"{{x}}\");\n }}\n```\n\n"
    );
    assert_eq!(diff, expected);
    assert!(std::fs::read_to_string(f.root.join("code.rs")).unwrap().contains("let x = 1;"), "dry run wrote");
    assert_eq!(f.ok("edit_file", json!({ "path": "code.rs", "edits": edits })).await, expected);
    assert!(std::fs::read_to_string(f.root.join("code.rs")).unwrap().contains("let x = 2;"));
    // Whitespace-insensitive line matching keeps the file's indentation.
    let loose = json!([{ "oldText": "println!(\"{x}\");", "newText": "dbg!(x);" }, { "oldText": "\tlet x = 2;", "newText": "let y = 3;" }]);
    f.ok("edit_file", json!({ "path": "code.rs", "edits": loose })).await;
    assert_eq!(
        std::fs::read_to_string(f.root.join("code.rs")).unwrap(),
        "fn main() {\n    let y = 3;\n    dbg!(x);\n}\n"
    );
    let message =
        f.err("edit_file", json!({ "path": "code.rs", "edits": [{ "oldText": "absent", "newText": "x" }] })).await;
    assert_eq!(message, "Could not find exact match for edit:\nabsent");
}

#[tokio::test]
async fn create_directory_makes_parents_and_accepts_existing_directories() {
    let f = Fixture::new();
    assert_eq!(f.ok("create_directory", json!({ "path": "a/b/c" })).await, "Successfully created directory a/b/c");
    assert!(f.root.join("a/b/c").is_dir());
    f.ok("create_directory", json!({ "path": "a/b" })).await;
    f.ok("create_directory", json!({ "path": f.at("sub") })).await;
    symlink("sub", f.root.join("sub_link"));
    f.ok("create_directory", json!({ "path": "sub_link/made" })).await;
    assert!(f.root.join("sub/made").is_dir(), "a link inside the root is followed");
    let message = f.err("create_directory", json!({ "path": "file.txt/below" })).await;
    assert!(message.contains("Not a directory"), "{message}");
}

#[tokio::test]
async fn list_directory_marks_directories_and_files() {
    let f = Fixture::new();
    std::fs::write(f.root.join("b.txt"), "").unwrap();
    symlink("sub", f.root.join("link"));
    let listing = f.ok("list_directory", json!({ "path": "." })).await;
    assert_eq!(listing, "[FILE] b.txt\n[FILE] file.txt\n[FILE] link\n[DIR] sub");
    assert_eq!(f.ok("list_directory", json!({ "path": f.at("sub") })).await, "[FILE] nested.txt");
}

#[tokio::test]
async fn list_directory_with_sizes_sorts_and_sums() {
    let f = Fixture::new();
    std::fs::write(f.root.join("big.bin"), vec![0; 2048]).unwrap();
    let by_size = f.ok("list_directory_with_sizes", json!({ "path": ".", "sortBy": "size" })).await;
    let lines: Vec<&str> = by_size.lines().collect();
    let big = format!("[FILE] {:<30} {:>10}", "big.bin", "2.00 KB");
    let small = format!("[FILE] {:<30} {:>10}", "file.txt", "6 B");
    let position =
        |line: &str| lines.iter().position(|l| *l == line).unwrap_or_else(|| panic!("{line:?} in {by_size}"));
    // A directory's own size is filesystem-dependent: it only decides where it sorts.
    assert!(position(&big) < position(&small), "{by_size}");
    assert!(lines[..3].iter().any(|l| l.starts_with("[DIR] sub ")), "{by_size}");
    assert_eq!(&lines[3..], ["", "Total: 2 files, 1 directories", "Combined size: 2.01 KB"]);
    let by_name = f.ok("list_directory_with_sizes", json!({ "path": "." })).await;
    let names: Vec<&str> = by_name.lines().take(3).map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(names, ["big.bin", "file.txt", "sub"]);
    let message = f.err("list_directory_with_sizes", json!({ "path": ".", "sortBy": "date" })).await;
    assert!(message.contains("unknown variant `date`"), "{message}");
}

#[tokio::test]
async fn directory_tree_is_json_and_honours_excludes() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.root.join("node_modules/pkg")).unwrap();
    std::fs::write(f.root.join("node_modules/pkg/index.js"), "").unwrap();
    std::fs::write(f.root.join("sub/skip.log"), "").unwrap();
    std::fs::create_dir(f.root.join("empty")).unwrap();
    let tree = f.ok("directory_tree", json!({ "path": ".", "excludePatterns": ["node_modules", "**/*.log"] })).await;
    let parsed: Value = serde_json::from_str(&tree).unwrap();
    assert_eq!(
        parsed,
        json!([
            { "name": "empty", "type": "directory", "children": [] },
            { "name": "file.txt", "type": "file" },
            { "name": "sub", "type": "directory", "children": [{ "name": "nested.txt", "type": "file" }] },
        ])
    );
    assert!(tree.starts_with("[\n  {\n    \"name\""), "two-space indentation: {tree}");
    let all = f.ok("directory_tree", json!({ "path": "." })).await;
    assert!(all.contains("index.js") && all.contains("skip.log"));
}

#[tokio::test]
async fn move_file_renames_and_never_overwrites() {
    let f = Fixture::new();
    let text = f.ok("move_file", json!({ "source": "file.txt", "destination": "sub/moved.txt" })).await;
    assert_eq!(text, "Successfully moved file.txt to sub/moved.txt");
    assert!(!f.root.join("file.txt").exists());
    assert_eq!(std::fs::read_to_string(f.root.join("sub/moved.txt")).unwrap(), "hello\n");
    let message = f.err("move_file", json!({ "source": "sub/moved.txt", "destination": "sub/nested.txt" })).await;
    assert!(message.contains("already exists"), "{message}");
    assert_eq!(std::fs::read_to_string(f.root.join("sub/nested.txt")).unwrap(), "nested\n");
    f.ok("move_file", json!({ "source": "sub", "destination": "renamed" })).await;
    assert!(f.root.join("renamed/moved.txt").exists());
    symlink("renamed", f.root.join("link"));
    f.ok("move_file", json!({ "source": "link", "destination": "link2" })).await;
    assert!(std::fs::symlink_metadata(f.root.join("link2")).unwrap().is_symlink(), "the link itself moves");
    let message = f.err("move_file", json!({ "source": "missing", "destination": "x" })).await;
    assert!(message.contains("No such file"), "{message}");
}

#[tokio::test]
async fn search_files_matches_globs_relative_to_the_path() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.root.join("sub/deep")).unwrap();
    std::fs::write(f.root.join("sub/deep/x.txt"), "").unwrap();
    std::fs::write(f.root.join(".hidden.txt"), "").unwrap();
    let cases = [
        (json!({ "path": ".", "pattern": "*.txt" }), vec![".hidden.txt", "file.txt"]),
        (
            json!({ "path": ".", "pattern": "**/*.txt" }),
            vec![".hidden.txt", "file.txt", "sub/deep/x.txt", "sub/nested.txt"],
        ),
        (
            json!({ "path": ".", "pattern": "**/*.txt", "excludePatterns": ["sub/deep"] }),
            vec![".hidden.txt", "file.txt", "sub/nested.txt"],
        ),
        (json!({ "path": "sub", "pattern": "deep" }), vec!["sub/deep"]),
    ];
    for (arguments, expected) in cases {
        let found = f.ok("search_files", arguments.clone()).await;
        let mut found: Vec<&str> = found.lines().collect();
        found.sort_unstable();
        let expected: Vec<String> = expected.iter().map(|p| f.at(p)).collect();
        assert_eq!(found, expected, "{arguments}");
    }
    assert_eq!(f.ok("search_files", json!({ "path": ".", "pattern": "*.rs" })).await, "No matches found");
    let message = f.err("search_files", json!({ "path": ".", "pattern": "[" })).await;
    assert!(message.contains("invalid pattern"), "{message}");
}

#[tokio::test]
async fn get_file_info_reports_metadata() {
    let f = Fixture::new();
    std::fs::set_permissions(f.root.join("file.txt"), std::fs::Permissions::from_mode(0o604)).unwrap();
    let info = f.ok("get_file_info", json!({ "path": "file.txt" })).await;
    let keys: Vec<&str> = info.lines().map(|l| l.split(": ").next().unwrap()).collect();
    assert_eq!(keys, ["size", "created", "modified", "accessed", "isDirectory", "isFile", "permissions"]);
    assert!(
        info.contains("size: 6\n") && info.contains("isFile: true") && info.ends_with("permissions: 604"),
        "{info}"
    );
    let modified = info.lines().find_map(|l| l.strip_prefix("modified: ")).unwrap();
    assert!(modified.parse::<jiff::Timestamp>().is_ok(), "{modified}");
    let root = f.ok("get_file_info", json!({ "path": f.at("") })).await;
    assert!(root.contains("isDirectory: true"), "{root}");
}

#[tokio::test]
async fn list_allowed_directories_names_each_root_and_its_mode() {
    let f = Fixture::with(|root| {
        json!({ "roots": [
            { "path": root, "mode": "read-write" },
            { "path": root.parent().unwrap().join("outside"), "mode": "read" },
        ] })
    });
    let text = f.ok("list_allowed_directories", json!({})).await;
    assert_eq!(text, format!("Allowed directories:\n{}\n{} (read-only)", f.root.display(), f.outside.display()));
}
