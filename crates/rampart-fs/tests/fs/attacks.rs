//! The attacks the `fs` toolbox must stop: path traversal in many encodings, absolute
//! paths and sibling prefixes, symbolic links out of the root, a directory swapped for a
//! link while it is read, writes through planted links, FIFOs and devices, oversized
//! reads and listings, and a kill -9 in the middle of a write. Every case checks the
//! outcome (refused, nothing leaked, nothing outside changed), not just that code ran.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Fixture, SECRET, anything, symlink};

/// Base64 of [`SECRET`]'s start, as `read_media_file` would leak it.
const SECRET_BASE64: &str = "VE9QLVNFQ1JFVA";

fn assert_no_leak(what: &str, output: &str) {
    assert!(!output.contains(SECRET), "{what} leaked the secret: {output}");
    assert!(!output.contains(SECRET_BASE64), "{what} leaked the secret (base64): {output}");
    assert!(!output.contains("root:x:0:0"), "{what} leaked /etc/passwd: {output}");
}

/// Paths that try to leave the root, relative and absolute, in many encodings.
fn traversals(f: &Fixture) -> Vec<String> {
    let base = f.base.display();
    let root = f.root.display();
    let mut paths: Vec<String> = [
        // Plain and dotted traversal.
        "../outside/secret.txt",
        "../../../../../../../../../../../../etc/passwd",
        "sub/../../outside/secret.txt",
        "./../outside/secret.txt",
        "sub/./../.././outside/secret.txt",
        "../root_evil/secret.txt",
        "~/../../outside/secret.txt",
        // Windows separators, URL encodings and filter-evasion spellings: literal names
        // on Linux, none of which exists.
        "..\\outside\\secret.txt",
        "..\\..\\outside\\secret.txt",
        "%2e%2e/outside/secret.txt",
        "%2e%2e%2foutside%2fsecret.txt",
        "..%2foutside%2fsecret.txt",
        "%252e%252e%252foutside%252fsecret.txt",
        "....//outside/secret.txt",
        "....//....//outside/secret.txt",
        "..;/outside/secret.txt",
        ".../outside/secret.txt",
        "file:///etc/passwd",
        // Unicode look-alikes of '.' and '/'.
        "\u{2025}/outside/secret.txt",
        "\u{FF0E}\u{FF0E}/outside/secret.txt",
        "\u{FE52}\u{FE52}/outside/secret.txt",
        "..\u{2215}outside\u{2215}secret.txt",
        "..\u{FF0F}outside\u{FF0F}secret.txt",
        ".\u{200B}./outside/secret.txt",
        // NUL bytes.
        "../outside/secret.txt\0",
        "file.txt\0/../../outside/secret.txt",
        // Absolute paths outside the root.
        "/etc/passwd",
        "//etc/passwd",
        "/",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    paths.extend([
        format!("{base}/outside/secret.txt"),
        format!("{root}/../outside/secret.txt"),
        format!("{root}/sub/../../outside/secret.txt"),
        format!("{base}/./root/../outside/secret.txt"),
        format!("file://{base}/outside/secret.txt"),
        // Sibling prefix: `root_evil` starts with `root` as a string, not as a path.
        format!("{root}_evil/secret.txt"),
        format!("{base}/root_evil/secret.txt"),
        format!("{root}/../root_evil/secret.txt"),
        // Very long paths.
        format!("{}outside/secret.txt", "../".repeat(5000)),
        "a/".repeat(3000),
        "x".repeat(300),
        format!("{root}/{}", "y".repeat(300)),
    ]);
    paths
}

#[tokio::test]
async fn traversal_in_any_encoding_reads_nothing_outside_the_root() {
    let f = Fixture::new();
    for path in traversals(&f) {
        let calls = [
            ("read_text_file", json!({ "path": path })),
            ("read_text_file", json!({ "path": path, "tail": 1 })),
            ("read_media_file", json!({ "path": path })),
            ("get_file_info", json!({ "path": path })),
            ("list_directory", json!({ "path": path })),
            ("list_directory_with_sizes", json!({ "path": path })),
            ("directory_tree", json!({ "path": path })),
            ("search_files", json!({ "path": path, "pattern": "**" })),
            ("edit_file", json!({ "path": path, "edits": [{ "oldText": "x", "newText": "y" }], "dryRun": true })),
        ];
        for (tool, arguments) in calls {
            let result = f.call(tool, arguments).await;
            assert_no_leak(&format!("{tool} {path:?}"), &anything(&result));
            assert!(result.is_err(), "{tool} {path:?} should be refused: {result:?}");
        }
    }
    let paths = traversals(&f);
    let all = f.ok("read_multiple_files", json!({ "paths": paths })).await;
    assert_no_leak("read_multiple_files", &all);
    assert_eq!(all.matches(": Error - ").count(), paths.len(), "every path fails on its own: {all}");
}

#[tokio::test]
async fn absolute_paths_and_sibling_prefixes_are_refused_by_component_not_by_string() {
    let f = Fixture::new();
    let evil = format!("{}_evil/secret.txt", f.root.display());
    let message = f.err("read_text_file", json!({ "path": evil })).await;
    assert!(message.contains("is outside the allowed directories"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "/etc/passwd" })).await;
    assert!(message.contains("is outside the allowed directories"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "../outside/secret.txt" })).await;
    assert!(message.contains("is outside the allowed directories"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "a\0b" })).await;
    assert!(message.contains("NUL"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "a/".repeat(3000) })).await;
    assert!(message.contains("longer than 4096 bytes"), "{message}");
    // The root itself and a path that only looks like it leaves are fine.
    assert_eq!(f.ok("read_text_file", json!({ "path": f.at("sub/../file.txt") })).await, "hello\n");
    assert!(f.guard.fs_requests().iter().all(|(path, _)| Path::new(path).starts_with(&f.root)));
}

#[tokio::test]
async fn traversal_writes_change_nothing_outside_the_root() {
    let f = Fixture::new();
    let before = f.outside_snapshot();
    let paths: Vec<String> = traversals(&f).into_iter().filter(|p| !p.contains("etc/passwd") && p != "/").collect();
    for path in &paths {
        std::fs::write(f.root.join("movable.txt"), "movable").unwrap();
        let calls = [
            ("write_file", json!({ "path": path, "content": "PWNED" })),
            ("create_directory", json!({ "path": path })),
            ("create_directory", json!({ "path": format!("{path}/newdir") })),
            ("edit_file", json!({ "path": path, "edits": [{ "oldText": "SECRET", "newText": "PWNED" }] })),
            ("move_file", json!({ "source": "movable.txt", "destination": path })),
            ("move_file", json!({ "source": path, "destination": "stolen.txt" })),
        ];
        for (tool, arguments) in calls {
            let result = f.call(tool, arguments).await;
            assert_no_leak(&format!("{tool} {path:?}"), &anything(&result));
        }
        // A literal name inside the root (say `..\\outside\\secret.txt`) may be moved;
        // nothing from outside may.
        if let Ok(stolen) = std::fs::read_to_string(f.root.join("stolen.txt")) {
            assert_no_leak(&format!("move_file {path:?}"), &stolen);
            std::fs::remove_file(f.root.join("stolen.txt")).unwrap();
        }
    }
    assert_eq!(f.outside_snapshot(), before, "something outside the root changed");
}

/// Links in the root that lead out, in every form: absolute, relative, chained, to a
/// directory, dangling, looping.
fn plant_links(f: &Fixture) {
    let root = &f.root;
    symlink(f.outside.join("secret.txt"), root.join("abs_link"));
    symlink("../outside/secret.txt", root.join("rel_link"));
    symlink("chain_b", root.join("chain_a"));
    symlink("sub/chain_c", root.join("chain_b"));
    symlink("../../outside/secret.txt", root.join("sub/chain_c"));
    symlink(&f.outside, root.join("dir_link"));
    symlink("../outside", root.join("rel_dir_link"));
    symlink("..", root.join("up"));
    symlink("sub/..", root.join("sub_up"));
    symlink("../root_evil/secret.txt", root.join("evil_link"));
    symlink(f.outside.join("new.txt"), root.join("dangling_out"));
    symlink("../outside/new_dir", root.join("dangling_dir_out"));
    symlink("loop_b", root.join("loop_a"));
    symlink("loop_a", root.join("loop_b"));
}

const ESCAPING_LINKS: &[&str] = &[
    "abs_link",
    "rel_link",
    "chain_a",
    "chain_b",
    "sub/chain_c",
    "dir_link/secret.txt",
    "rel_dir_link/secret.txt",
    "up/outside/secret.txt",
    "sub_up/../outside/f.txt",
    "up/root_evil/secret.txt",
    "evil_link",
    "dangling_out",
    "loop_a",
];

#[tokio::test]
async fn symbolic_links_out_of_the_root_are_refused() {
    let f = Fixture::new();
    plant_links(&f);
    for link in ESCAPING_LINKS {
        for tool in ["read_text_file", "read_media_file", "get_file_info"] {
            let result = f.call(tool, json!({ "path": link })).await;
            assert_no_leak(&format!("{tool} {link}"), &anything(&result));
            assert!(result.is_err(), "{tool} {link} should be refused: {result:?}");
        }
    }
    let message = f.err("read_text_file", json!({ "path": "rel_link" })).await;
    assert!(message.contains("leads outside the allowed directory"), "{message}");
    for dir in ["dir_link", "rel_dir_link", "up", "dangling_dir_out"] {
        for tool in ["list_directory", "list_directory_with_sizes", "directory_tree"] {
            let result = f.call(tool, json!({ "path": dir })).await;
            assert_no_leak(&format!("{tool} {dir}"), &anything(&result));
            assert!(result.is_err(), "{tool} {dir} should be refused: {result:?}");
        }
    }
    // Walks list the links but never follow them.
    let tree = f.ok("directory_tree", json!({ "path": "." })).await;
    assert!(!tree.contains("secret.txt") && tree.contains("\"dir_link\""), "{tree}");
    let found = f.ok("search_files", json!({ "path": ".", "pattern": "**/*secret*" })).await;
    assert_eq!(found, "No matches found");
    let all = f.ok("read_multiple_files", json!({ "paths": ESCAPING_LINKS })).await;
    assert_no_leak("read_multiple_files", &all);
    // Links that stay inside work, and the policy is asked about the real path.
    symlink("file.txt", f.root.join("good_link"));
    symlink("sub", f.root.join("good_dir"));
    assert_eq!(f.ok("read_text_file", json!({ "path": "good_link" })).await, "hello\n");
    assert_eq!(f.ok("read_text_file", json!({ "path": "good_dir/nested.txt" })).await, "nested\n");
    let asked: Vec<String> = f.guard.fs_requests().into_iter().map(|(path, _)| path).collect();
    assert!(asked.ends_with(&[f.at("file.txt"), f.at("sub/nested.txt")]), "{asked:?}");
    // An absolute link is refused even when it points inside: it is resolved from '/'.
    symlink(f.root.join("file.txt"), f.root.join("abs_inside"));
    f.err("read_text_file", json!({ "path": "abs_inside" })).await;
}

#[tokio::test]
async fn writes_never_go_through_a_planted_link() {
    let f = Fixture::new();
    plant_links(&f);
    let before = f.outside_snapshot();
    let writes = [
        ("write_file", json!({ "path": "abs_link", "content": "PWNED" })),
        ("write_file", json!({ "path": "rel_link", "content": "PWNED" })),
        ("write_file", json!({ "path": "chain_a", "content": "PWNED" })),
        ("write_file", json!({ "path": "dangling_out", "content": "PWNED" })),
        ("write_file", json!({ "path": "dir_link/secret.txt", "content": "PWNED" })),
        ("write_file", json!({ "path": "dir_link/new.txt", "content": "PWNED" })),
        ("write_file", json!({ "path": "up/outside/secret.txt", "content": "PWNED" })),
        ("edit_file", json!({ "path": "rel_link", "edits": [{ "oldText": "SECRET", "newText": "PWNED" }] })),
        ("edit_file", json!({ "path": "dir_link/f.txt", "edits": [{ "oldText": "SECRET", "newText": "PWNED" }] })),
        ("create_directory", json!({ "path": "dir_link/made" })),
        ("create_directory", json!({ "path": "dangling_dir_out" })),
        ("create_directory", json!({ "path": "dangling_dir_out/deeper" })),
        ("move_file", json!({ "source": "file.txt", "destination": "dir_link/moved.txt" })),
        ("move_file", json!({ "source": "dir_link/secret.txt", "destination": "stolen.txt" })),
    ];
    for (tool, arguments) in writes {
        let result = f.call(tool, arguments.clone()).await;
        assert_no_leak(&format!("{tool} {arguments}"), &anything(&result));
        assert!(result.is_err(), "{tool} {arguments} should be refused: {result:?}");
    }
    assert_eq!(f.outside_snapshot(), before, "a write went through a link");
    assert_eq!(std::fs::read_to_string(f.root.join("file.txt")).unwrap(), "hello\n");
    // A link inside the root is followed to its target, which is replaced atomically; the
    // link stays a link.
    symlink("file.txt", f.root.join("good_link"));
    f.ok("write_file", json!({ "path": "good_link", "content": "via link" })).await;
    assert_eq!(std::fs::read_to_string(f.root.join("file.txt")).unwrap(), "via link");
    assert!(std::fs::symlink_metadata(f.root.join("good_link")).unwrap().is_symlink());
}

/// Swaps `a` and `b` atomically (renameat2 RENAME_EXCHANGE) until told to stop.
fn swapper(a: std::path::PathBuf, b: std::path::PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            rustix::fs::renameat_with(rustix::fs::CWD, &a, rustix::fs::CWD, &b, rustix::fs::RenameFlags::EXCHANGE)
                .unwrap();
            swaps += 1;
        }
        swaps
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_link_while_being_read_never_yields_a_byte_from_outside() {
    let f = Fixture::new();
    std::fs::create_dir(f.root.join("swap")).unwrap();
    std::fs::write(f.root.join("swap/f.txt"), "inside").unwrap();
    symlink(&f.outside, f.root.join("alt"));
    let before = f.outside_snapshot();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(f.root.join("swap"), f.root.join("alt"), stop.clone());
    let (mut served, mut refused) = (0, 0);
    for round in 0..1500 {
        for (tool, arguments) in [
            ("read_text_file", json!({ "path": "swap/f.txt" })),
            ("list_directory", json!({ "path": "swap" })),
            ("write_file", json!({ "path": "swap/w.txt", "content": format!("round {round}") })),
        ] {
            let result = f.call(tool, arguments).await;
            assert_no_leak(tool, &anything(&result));
            if let Ok(output) = &result
                && tool == "read_text_file"
            {
                assert_eq!(crate::common::text(output), "inside");
            }
            if result.is_ok() { served += 1 } else { refused += 1 }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    assert!(swaps > 100 && served > 0 && refused > 0, "the race did not happen: {swaps} swaps, {served}/{refused}");
    let after = f.outside_snapshot();
    assert_eq!(after, before, "a write landed outside the root");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_planted_over_the_target_during_writes_is_replaced_not_written_through() {
    let f = Fixture::new();
    let victim = f.outside.join("secret.txt");
    let before = f.outside_snapshot();
    let stop = Arc::new(AtomicBool::new(false));
    let planter = {
        let (root, victim, stop) = (f.root.clone(), victim.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut planted = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let staged = root.join("staged_link");
                let _ = std::fs::remove_file(&staged);
                std::os::unix::fs::symlink(&victim, &staged).unwrap();
                std::fs::rename(&staged, root.join("target.txt")).unwrap();
                planted += 1;
            }
            planted
        })
    };
    for round in 0..1000 {
        let result = f.call("write_file", json!({ "path": "target.txt", "content": format!("round {round}") })).await;
        assert_no_leak("write_file", &anything(&result));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(planter.join().unwrap() > 100);
    assert_eq!(f.outside_snapshot(), before, "a write went through the planted link");
}

#[tokio::test]
async fn fifos_sockets_and_devices_are_refused_without_hanging() {
    let f = Fixture::new();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        f.root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
    symlink("fifo", f.root.join("fifo_link"));
    let _socket = std::os::unix::net::UnixListener::bind(f.root.join("socket")).unwrap();
    // A character device needs CAP_MKNOD (and a filesystem that allows devices); where it
    // cannot be made, the FIFO and socket cases still run.
    let device = rustix::fs::mknodat(
        rustix::fs::CWD,
        f.root.join("zero"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 5),
    )
    .is_ok();
    let mut specials = vec![("fifo", "a FIFO"), ("fifo_link", "a FIFO"), ("socket", "a socket")];
    if device {
        specials.push(("zero", "a character device"));
    }
    for (name, kind) in specials {
        let calls = [
            ("read_text_file", json!({ "path": name })),
            ("read_text_file", json!({ "path": name, "head": 1 })),
            ("read_media_file", json!({ "path": name })),
            ("edit_file", json!({ "path": name, "edits": [{ "oldText": "a", "newText": "b" }] })),
            ("write_file", json!({ "path": name, "content": "x" })),
        ];
        for (tool, arguments) in calls {
            let result = tokio::time::timeout(Duration::from_secs(10), f.call(tool, arguments.clone()))
                .await
                .unwrap_or_else(|_| panic!("{tool} {arguments} hung"));
            let message = result.expect_err(&format!("{tool} {name} should be refused")).to_string();
            assert!(message.contains(kind), "{tool} {name}: {message}");
        }
        let multiple =
            tokio::time::timeout(Duration::from_secs(10), f.call("read_multiple_files", json!({ "paths": [name] })))
                .await
                .expect("read_multiple_files hung");
        assert!(anything(&multiple).contains(kind));
    }
    assert!(std::fs::symlink_metadata(f.root.join("fifo")).unwrap().file_type().is_fifo(), "the FIFO is still there");
}

#[tokio::test]
async fn reads_and_listings_are_capped() {
    let f = Fixture::with(
        |root| json!({ "roots": [{ "path": root, "mode": "read-write" }], "max_read_bytes": 1000, "max_list_entries": 5 }),
    );
    let big: String = (0..100).map(|i| format!("line {i:03} of the big file\n")).collect();
    std::fs::write(f.root.join("big.txt"), &big).unwrap();
    let huge = std::fs::File::create(f.root.join("sparse.bin")).unwrap();
    huge.set_len(64 << 30).unwrap();
    for (tool, arguments) in [
        ("read_text_file", json!({ "path": "big.txt" })),
        ("read_text_file", json!({ "path": "sparse.bin" })),
        ("read_media_file", json!({ "path": "sparse.bin" })),
        ("edit_file", json!({ "path": "big.txt", "edits": [{ "oldText": "line 000", "newText": "x" }] })),
    ] {
        let message = f.err(tool, arguments).await;
        assert!(message.contains("over the read limit of 1000 bytes"), "{tool}: {message}");
    }
    assert_eq!(
        f.ok("read_text_file", json!({ "path": "big.txt", "head": 2 })).await,
        big.lines().take(2).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(f.ok("read_text_file", json!({ "path": "big.txt", "tail": 1 })).await, "line 099 of the big file");
    let message = f.err("read_text_file", json!({ "path": "big.txt", "tail": 99 })).await;
    assert!(message.contains("longer than the read limit"), "{message}");
    let message = f.err("read_text_file", json!({ "path": "sparse.bin", "head": 1 })).await;
    assert!(message.contains("longer than the read limit"), "{message}");
    let multiple = f.ok("read_multiple_files", json!({ "paths": ["big.txt", "file.txt"] })).await;
    assert!(multiple.contains("big.txt: Error - ") && multiple.contains("file.txt:\nhello\n"), "{multiple}");

    for i in 0..10 {
        std::fs::write(f.root.join(format!("sub/n{i}.txt")), "").unwrap();
    }
    let listing = f.ok("list_directory", json!({ "path": "sub" })).await;
    assert_eq!(listing.lines().filter(|l| l.starts_with('[') && !l.starts_with("[listing")).count(), 5);
    assert!(listing.ends_with("[listing truncated after 5 entries (fs.max_list_entries)]"), "{listing}");
    let message = f.err("directory_tree", json!({ "path": "." })).await;
    assert!(message.contains("more than 5 entries"), "{message}");
    let found = f.ok("search_files", json!({ "path": ".", "pattern": "**/*.txt" })).await;
    assert!(found.contains("[search stopped after reading 5 entries"), "{found}");
}

/// Where the child of [`kill_9_during_a_large_write_leaves_the_old_or_the_new_file`]
/// writes; set only in that child.
const CHILD_ROOT: &str = "RAMPART_FS_TEST_WRITER_ROOT";
const OLD_BYTE: u8 = b'o';
const OLD_LEN: usize = 24 << 20;
const NEW_BYTE: u8 = b'n';
const NEW_LEN: usize = (24 << 20) + 1;

/// Not a test of its own: the child process of the kill -9 test, which re-runs this
/// binary with [`CHILD_ROOT`] set. It rewrites `big.bin` with the new and the old content
/// in turn until it is killed.
#[test]
fn atomic_write_child() {
    let Ok(root) = std::env::var(CHILD_ROOT) else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let toolbox =
        rampart_fs::FsToolbox::from_config(json!({ "roots": [{ "path": root, "mode": "read-write" }] })).unwrap();
    let context = rampart_core::CallContext::detached(
        rampart_core::Caller::stdio(),
        std::sync::Arc::new(rampart_core::OpenGuard),
    );
    let new = String::from_utf8(vec![NEW_BYTE; NEW_LEN]).unwrap();
    let old = String::from_utf8(vec![OLD_BYTE; OLD_LEN]).unwrap();
    runtime.block_on(async {
        use rampart_core::Toolbox as _;
        for content in [&new, &old].into_iter().cycle() {
            let arguments = json!({ "path": "big.bin", "content": content });
            let serde_json::Value::Object(arguments) = arguments else { unreachable!() };
            toolbox.call_tool("write_file", arguments, &context).await.unwrap();
        }
    });
}

#[test]
fn kill_9_during_a_large_write_leaves_the_old_or_the_new_file() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    let target = root.join("big.bin");
    std::fs::write(&target, vec![OLD_BYTE; OLD_LEN]).unwrap();
    let mut killed_mid_write = 0;
    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "attacks::atomic_write_child", "--test-threads=1"])
            .env(CHILD_ROOT, root.to_str().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until a write is under way (its temporary file exists), then a little more
        // on later rounds, and kill.
        let deadline = Instant::now() + Duration::from_secs(30);
        while temporary_files(root).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(round * 7));
        let writing = !temporary_files(root).is_empty();
        assert!(child.try_wait().unwrap().is_none(), "the writer stopped before it was killed");
        child.kill().unwrap();
        child.wait().unwrap();
        killed_mid_write += usize::from(writing && !temporary_files(root).is_empty());
        let content = std::fs::read(&target).unwrap();
        let old = content.len() == OLD_LEN && content.iter().all(|b| *b == OLD_BYTE);
        let new = content.len() == NEW_LEN && content.iter().all(|b| *b == NEW_BYTE);
        assert!(old || new, "round {round}: {} bytes, neither the old nor the new content", content.len());
        for leftover in temporary_files(root) {
            std::fs::remove_file(root.join(leftover)).unwrap();
        }
    }
    assert!(killed_mid_write > 0, "no kill landed during a write");
}

fn temporary_files(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|name| name.to_string_lossy().starts_with(".rampart-"))
        .collect()
}
