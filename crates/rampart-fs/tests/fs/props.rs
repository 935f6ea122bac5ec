//! Property tests of path resolution (issue #19). A real temporary tree: the root, with
//! real symbolic links planted in it (to the directory and the file outside, relative and
//! absolute, chained, looping, dangling, `..`-shaped, and some that stay inside), unicode
//! and 255-byte names; `outside/` and `root_evil/` next to it full of [`SECRET`]. Generated
//! paths mix those names with `.`, `..`, empty components, NUL bytes, very long names,
//! random text and absolute prefixes (the root's, its parent's, `/`), and each goes to a
//! tool that reads, lists, writes, creates or moves. Whatever the path:
//!
//! - the call ends within its deadline and does not panic;
//! - every path the policy is asked about is the real path (symbolic links resolved, no
//!   `.`/`..`) of something inside the root, the thing the tool then touches;
//! - a read that succeeds read a file whose real path is inside the root;
//! - nothing of what lies outside is returned, and nothing outside changes.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256); `bench/fuzz.sh` runs them long.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::common::{Fixture, SECRET, anything, symlink};

/// How long one call may take before the case counts as a hang.
const DEADLINE: Duration = Duration::from_secs(10);

/// A 255-byte name (the longest a Linux file name can be) of a file in the root.
fn long_name() -> String {
    "L".repeat(255)
}

/// The fixture with links and awkward names planted in the root.
fn planted() -> Fixture {
    let f = Fixture::new();
    let (root, base) = (&f.root, &f.base);
    symlink(base.join("outside"), root.join("out_abs"));
    symlink("../outside", root.join("out_rel"));
    symlink(base.join("outside/secret.txt"), root.join("out_file"));
    symlink("../root_evil/secret.txt", root.join("evil_file"));
    symlink("out_rel", root.join("chain"));
    symlink("sub/up/out_rel", root.join("chain_through_up"));
    symlink("sub", root.join("in_rel"));
    symlink(root.join("sub"), root.join("in_abs"));
    symlink("file.txt", root.join("in_file"));
    symlink("loop", root.join("loop"));
    symlink("nowhere", root.join("dangling"));
    symlink("..", root.join("sub/up"));
    symlink("../..", root.join("sub/upup"));
    symlink("/", root.join("slash"));
    symlink("/etc/passwd", root.join("passwd"));
    std::fs::create_dir(root.join("é日本")).unwrap();
    std::fs::write(root.join("é日本/ü.txt"), "unicode\n").unwrap();
    std::fs::write(root.join(long_name()), "long\n").unwrap();
    f
}

/// One path component.
fn component() -> impl Strategy<Value = String> {
    let named = select(
        &[
            ".",
            "..",
            "",
            "sub",
            "file.txt",
            "nested.txt",
            "out_abs",
            "out_rel",
            "out_file",
            "evil_file",
            "chain",
            "chain_through_up",
            "in_rel",
            "in_abs",
            "in_file",
            "loop",
            "dangling",
            "up",
            "upup",
            "slash",
            "passwd",
            "outside",
            "secret.txt",
            "root",
            "root_evil",
            "é日本",
            "ü.txt",
            "new",
            "nowhere",
            "...",
            "~",
        ][..],
    )
    .prop_map(str::to_owned);
    // Names that lead somewhere inside, so that calls also succeed.
    let inside =
        select(&["sub", "file.txt", "nested.txt", "in_rel", "in_file", "é日本", "ü.txt", "up", "new", "."][..])
            .prop_map(str::to_owned);
    prop_oneof![
        16 => inside,
        24 => named,
        1 => Just(long_name()),
        1 => (256..400usize).prop_map(|n| "N".repeat(n)),
        1 => "[a-z.]{0,3}\u{0}[a-z.]{0,3}",
        2 => "\\PC{1,8}",
    ]
}

/// A path: components joined by `/`, relative or under an absolute prefix (`@ROOT@` and
/// `@BASE@` stand for the root and its parent, whose names are known once a case's tree
/// exists).
fn path() -> impl Strategy<Value = String> {
    let prefixes = &["", "", "", "@ROOT@/", "@ROOT@/", "@ROOT@", "@BASE@/", "/", "//"][..];
    let components = prop_oneof![
        4 => prop::collection::vec(component(), 1..2),
        3 => prop::collection::vec(component(), 2..3),
        2 => prop::collection::vec(component(), 3..7),
    ];
    (select(prefixes), components, prop::bool::weighted(0.1)).prop_map(|(prefix, components, slash)| {
        let mut path = prefix.to_owned() + &components.join("/");
        if slash {
            path.push('/');
        }
        path
    })
}

/// A tool call on one or two generated paths.
fn call() -> impl Strategy<Value = (&'static str, String, String)> {
    let tool = select(
        &[
            "read_text_file",
            "read_media_file",
            "get_file_info",
            "list_directory",
            "directory_tree",
            "search_files",
            "write_file",
            "create_directory",
            "move_file",
            "edit_file",
            "read_multiple_files",
        ][..],
    );
    (tool, path(), path())
}

/// The arguments of `tool` with `path` and `other`.
fn arguments(tool: &str, path: &str, other: &str) -> Value {
    match tool {
        "write_file" => json!({ "path": path, "content": "PROPS" }),
        "move_file" => json!({ "source": path, "destination": other }),
        "edit_file" => json!({ "path": path, "edits": [{ "oldText": "e", "newText": "E" }] }),
        "search_files" => json!({ "path": path, "pattern": "**" }),
        "read_multiple_files" => json!({ "paths": [path, other] }),
        _ => json!({ "path": path }),
    }
}

/// The real path of `path`: its parent's real path joined with its name when it is a
/// symbolic link (renaming or replacing a link acts on the link, not on its target) or does
/// not exist yet (a file or directory about to be created), else its own.
fn real(path: &Path) -> Option<PathBuf> {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let own = if link { None } else { std::fs::canonicalize(path).ok() };
    own.or_else(|| {
        let parent = std::fs::canonicalize(path.parent()?).ok()?;
        Some(parent.join(path.file_name()?))
    })
}

fn check_case(tool: &str, path: &str, other: &str) -> Result<(), TestCaseError> {
    let f = planted();
    let place =
        |text: &str| text.replace("@ROOT@", &f.root.to_string_lossy()).replace("@BASE@", &f.base.to_string_lossy());
    let arguments = &arguments(tool, &place(path), &place(other));
    let outside = f.outside_snapshot();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = runtime.block_on(async { tokio::time::timeout(DEADLINE, f.call(tool, arguments.clone())).await });
    let Ok(result) = result else {
        return Err(TestCaseError::fail(format!("{tool} {arguments} did not answer within {DEADLINE:?}")));
    };
    let output = anything(&result);
    prop_assert!(!output.contains(SECRET), "{tool} {arguments} leaked: {output}");
    prop_assert!(!output.contains("root:x:0:0"), "{tool} {arguments} leaked /etc/passwd: {output}");
    prop_assert_eq!(&f.outside_snapshot(), &outside, "{} {} changed something outside the root", tool, arguments);
    for (asked, access) in f.guard.fs_requests() {
        let asked = Path::new(&asked);
        let clean = asked.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        prop_assert!(asked.starts_with(&f.root) && clean, "{tool} {arguments}: asked about {asked:?} ({access:?})");
        // What was authorized is what is there (or will be: a new name in a real directory;
        // a link itself, which opening does not follow).
        if let Some(real) = real(asked) {
            prop_assert_eq!(&real, asked, "{} {}: asked about a path that is not real", tool, arguments);
        }
    }
    let read = matches!(tool, "read_text_file" | "read_media_file");
    if read && result.as_ref().is_ok_and(|output| !output.is_error) {
        let target = arguments["path"].as_str().unwrap_or_default();
        let target = if target.starts_with('/') { PathBuf::from(target) } else { f.root.join(target) };
        let real = std::fs::canonicalize(lexical(&target));
        prop_assert!(real.is_ok_and(|real| real.starts_with(&f.root)), "{tool} {arguments} read outside the root");
    }
    Ok(())
}

/// `.` and `..` applied to the text, as the toolbox does before following links.
fn lexical(path: &Path) -> PathBuf {
    let mut clean = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean
}

#[test]
fn no_generated_path_escapes_the_root() {
    let config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    let cases = config.cases;
    let result = TestRunner::new(config).run(&call(), |(tool, path, other)| check_case(tool, &path, &other));
    if let Err(failure) = result {
        panic!("{failure}");
    }
    println!("proptest: {cases} cases"); // counted by bench/fuzz.sh
}
