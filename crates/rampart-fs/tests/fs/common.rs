//! The fixture every test starts from: a temporary directory holding a root, a secret
//! outside it and a sibling whose name shares the root's prefix; a guard that records
//! what the toolbox asked and refuses what a test says; and a scriptable client peer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rampart_core::{
    Access, Admission, CallContext, CallRecord, Caller, ClientPeer, Denied, Guard, LogLevel, PeerError, Refusal,
    Request, ToolError, ToolOutput, Toolbox,
};
use rampart_fs::FsToolbox;
use serde_json::{Value, json};

/// What files outside the root hold; no tool output may ever contain it.
pub(crate) const SECRET: &str = "TOP-SECRET";

/// Allows every tool; refuses fs access under the listed prefixes (component-wise), for
/// any access or for writes only; records every resource asked about.
#[derive(Default)]
pub(crate) struct TestGuard {
    deny_all: Vec<PathBuf>,
    deny_write: Vec<PathBuf>,
    pub(crate) asked: Mutex<Vec<Request<'static>>>,
}

impl TestGuard {
    pub(crate) fn denying(deny_all: &[&Path], deny_write: &[&Path]) -> Self {
        Self {
            deny_all: deny_all.iter().map(|p| p.to_path_buf()).collect(),
            deny_write: deny_write.iter().map(|p| p.to_path_buf()).collect(),
            asked: Mutex::default(),
        }
    }

    /// The fs paths asked about, with their access.
    pub(crate) fn fs_requests(&self) -> Vec<(String, Access)> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                Request::Fs { path, access } => Some((path.to_string(), *access)),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl Guard for TestGuard {
    fn authorize(&self, _: &Caller, request: &Request<'_>) -> Result<(), Denied> {
        if matches!(request, Request::Tool { .. }) {
            return Ok(());
        }
        self.asked.lock().unwrap().push(request.clone().into_owned());
        let Request::Fs { path, access } = request else { return Ok(()) };
        let under = |prefixes: &[PathBuf]| prefixes.iter().any(|p| Path::new(path.as_ref()).starts_with(p));
        if under(&self.deny_all) || (*access == Access::ReadWrite && under(&self.deny_write)) {
            return Err(Denied { missing: format!("fs {access:?} on '{path}'") });
        }
        Ok(())
    }
    async fn admit(&self, _: &Caller, _: &str, _: Option<&str>) -> Result<Admission, Refusal> {
        Ok(Admission::default())
    }
    async fn record(&self, _: CallRecord) -> Result<(), Refusal> {
        Ok(())
    }
}

/// A client whose `roots/list` answer is scripted.
pub(crate) struct RootsPeer(pub(crate) Result<Value, PeerError>);

#[async_trait]
impl ClientPeer for RootsPeer {
    async fn notify_progress(&self, _: &Value, _: f64, _: Option<f64>, _: Option<String>) {}
    async fn log(&self, _: LogLevel, _: Option<&str>, _: Value) {}
    async fn request(&self, method: &str, _: Value) -> Result<Value, PeerError> {
        assert_eq!(method, "roots/list");
        match &self.0 {
            Ok(value) => Ok(value.clone()),
            Err(PeerError::Unsupported) => Err(PeerError::Unsupported),
            Err(PeerError::Refused(m)) => Err(PeerError::Refused(m.clone())),
            Err(PeerError::Transport(m)) => Err(PeerError::Transport(m.clone())),
        }
    }
}

/// `base/` holds `root/` (the one read-write root), `outside/` and `root_evil/` (both
/// full of [`SECRET`]).
pub(crate) struct Fixture {
    _temp: tempfile::TempDir,
    pub(crate) base: PathBuf,
    pub(crate) root: PathBuf,
    pub(crate) outside: PathBuf,
    pub(crate) toolbox: FsToolbox,
    pub(crate) guard: Arc<TestGuard>,
    pub(crate) peer: Option<Arc<dyn ClientPeer>>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with(|root| json!({ "roots": [{ "path": root, "mode": "read-write" }] }))
    }

    /// A fixture whose `[fs]` table is `config(root)`.
    pub(crate) fn with(config: impl FnOnce(&Path) -> Value) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(temp.path()).unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        let evil = base.join("root_evil");
        for dir in [&root, &root.join("sub"), &outside, &evil] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(root.join("file.txt"), "hello\n").unwrap();
        std::fs::write(root.join("sub/nested.txt"), "nested\n").unwrap();
        std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
        std::fs::write(outside.join("f.txt"), SECRET).unwrap();
        std::fs::write(evil.join("secret.txt"), SECRET).unwrap();
        let toolbox = FsToolbox::from_config(config(&root)).unwrap();
        Self { _temp: temp, base, root, outside, toolbox, guard: Arc::default(), peer: None }
    }

    pub(crate) fn guard(mut self, guard: TestGuard) -> Self {
        self.guard = Arc::new(guard);
        self
    }

    pub(crate) fn peer(mut self, peer: RootsPeer) -> Self {
        self.peer = Some(Arc::new(peer));
        self
    }

    pub(crate) fn context(&self) -> CallContext {
        let caller = Caller::stdio();
        match &self.peer {
            Some(peer) => CallContext::new(caller, peer.clone(), self.guard.clone()),
            None => CallContext::detached(caller, self.guard.clone()),
        }
    }

    /// `root/rel` as text.
    pub(crate) fn at(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    pub(crate) async fn call(&self, tool: &str, arguments: Value) -> Result<ToolOutput, ToolError> {
        let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
        self.toolbox.call_tool(tool, arguments, &self.context()).await
    }

    /// The text of a successful call.
    pub(crate) async fn ok(&self, tool: &str, arguments: Value) -> String {
        match self.call(tool, arguments.clone()).await {
            Ok(output) => {
                assert!(!output.is_error, "{tool} {arguments}: {output:?}");
                text(&output)
            }
            Err(error) => panic!("{tool} {arguments} failed: {error}"),
        }
    }

    /// The message of a failed call.
    pub(crate) async fn err(&self, tool: &str, arguments: Value) -> String {
        match self.call(tool, arguments.clone()).await {
            Ok(output) => panic!("{tool} {arguments} should fail, got {output:?}"),
            Err(error) => error.to_string(),
        }
    }

    /// Every file and directory under `base` except `root/`, with contents: what must
    /// never change whatever a tool is asked.
    pub(crate) fn outside_snapshot(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut snapshot = BTreeMap::new();
        let mut pending = vec![self.base.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path == self.root {
                    continue;
                }
                let metadata = std::fs::symlink_metadata(&path).unwrap();
                if metadata.is_dir() {
                    pending.push(path.clone());
                    snapshot.insert(path, None);
                } else {
                    snapshot.insert(path.clone(), Some(std::fs::read(&path).unwrap_or_default()));
                }
            }
        }
        snapshot
    }
}

/// All text blocks of `output`, joined.
pub(crate) fn text(output: &ToolOutput) -> String {
    output
        .content
        .iter()
        .filter_map(|c| match c {
            rampart_core::Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whatever a call produced, as text (output or error), to look for leaked secrets.
pub(crate) fn anything(result: &Result<ToolOutput, ToolError>) -> String {
    match result {
        Ok(output) => format!("{output:?}"),
        Err(error) => error.to_string(),
    }
}

pub(crate) fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}
