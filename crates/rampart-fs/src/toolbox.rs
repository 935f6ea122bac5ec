//! [`FsToolbox`]: the tool specs, their arguments, and each tool as a method of
//! [`Session`], run on a blocking thread after the client's roots are known.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rampart_core::{
    CallContext, IntoToolOutput, NoArguments, PeerError, Routes, ToolAnnotations, ToolError, ToolOutput, ToolRouter,
    ToolSpec, Toolbox, output_schema_for,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{FsConfig, FsConfigError};
use crate::confined::FsError;
use crate::roots::Root;
use crate::session::{Limits, Session};

/// How long the client may take to answer `roots/list`.
const ROOTS_TIMEOUT: Duration = Duration::from_secs(10);

/// File tools confined to the configured roots (see the crate docs).
#[derive(Debug)]
pub struct FsToolbox {
    roots: Vec<Arc<Root>>,
    limits: Limits,
    tools: ToolRouter<Self>,
}

impl FsToolbox {
    /// The toolbox for the `[fs]` table of `rampart.toml`, given as JSON.
    ///
    /// # Errors
    /// [`FsConfigError`] naming the key: an unknown or mistyped key, no root, a relative
    /// root, a root that is not an existing directory.
    pub fn from_config(value: Value) -> Result<Self, FsConfigError> {
        Self::new(&FsConfig::from_value(value)?)
    }

    /// The toolbox for `config`: validates it and opens a handle on each root.
    ///
    /// # Errors
    /// As [`FsToolbox::from_config`].
    pub fn new(config: &FsConfig) -> Result<Self, FsConfigError> {
        config.validate()?;
        let mut roots = Vec::with_capacity(config.roots.len());
        for (index, root) in config.roots.iter().enumerate() {
            let opened = Root::open(root).map_err(|source| FsConfigError::Root {
                key: format!("fs.roots[{index}].path"),
                path: root.path.clone(),
                source,
            })?;
            roots.push(Arc::new(opened));
        }
        let limits = Limits { max_read_bytes: config.max_read_bytes, max_list_entries: config.max_list_entries };
        Ok(Self { roots, limits, tools: Self::tools() })
    }

    /// The real paths of the configured roots, for the banner and `system_about`.
    pub fn root_paths(&self) -> Vec<PathBuf> {
        self.roots.iter().map(|root| root.path.clone()).collect()
    }

    /// The client's roots as paths; `None` when the client does not support MCP Roots.
    /// Fails closed when the client supports them but the answer is unusable.
    async fn client_roots(context: &CallContext) -> Result<Option<Vec<PathBuf>>, ToolError> {
        match tokio::time::timeout(ROOTS_TIMEOUT, context.request("roots/list", json!({}))).await {
            Err(_) => Err(ToolError::Failed(format!(
                "the client did not answer roots/list within {} s",
                ROOTS_TIMEOUT.as_secs()
            ))),
            Ok(Err(PeerError::Unsupported | PeerError::Refused(_))) => Ok(None),
            Ok(Err(PeerError::Transport(error))) => {
                Err(ToolError::Failed(format!("asking the client for its roots failed: {error}")))
            }
            Ok(Ok(answer)) => parse_roots(answer).map(Some),
        }
    }

    /// Runs `work` in this call's [`Session`] (the configured roots narrowed by the
    /// client's) on a blocking thread.
    async fn in_session<T: Send + 'static>(
        &self,
        context: &CallContext,
        work: impl FnOnce(&Session) -> Result<T, FsError> + Send + 'static,
    ) -> Result<T, ToolError> {
        let client_roots = Self::client_roots(context).await?;
        let (configured, limits, context) = (self.roots.clone(), self.limits, context.clone());
        tokio::task::spawn_blocking(move || {
            work(&Session::open(&configured, client_roots, limits, context)).map_err(ToolError::from)
        })
        .await
        .map_err(|error| ToolError::Internal(format!("fs task failed: {error}")))?
    }
}

/// `file://` URIs of a `roots/list` result as paths; other schemes grant nothing.
fn parse_roots(answer: Value) -> Result<Vec<PathBuf>, ToolError> {
    #[derive(Deserialize)]
    struct ListRoots {
        roots: Vec<ClientRoot>,
    }
    #[derive(Deserialize)]
    struct ClientRoot {
        uri: String,
    }
    let list: ListRoots = serde_json::from_value(answer)
        .map_err(|error| ToolError::Failed(format!("the client's roots/list answer is malformed: {error}")))?;
    Ok(list
        .roots
        .iter()
        .filter_map(|root| url::Url::parse(&root.uri).ok())
        .filter(|uri| uri.scheme() == "file")
        .filter_map(|uri| uri.to_file_path().ok())
        .collect())
}

impl FsToolbox {
    /// The tools, each a method of [`Session`] run in the call's session.
    fn tools() -> ToolRouter<Self> {
        ToolRouter::new()
            .tool(
                ToolSpec::named(
                    "read_text_file",
                    "Read a file as UTF-8 text (invalid bytes are replaced). Give 'head' for only the first N lines \
                     or 'tail' for only the last N, not both. Files over the server's read limit need head or tail. \
                     Only works within allowed directories.",
                )
                .title("Read Text File")
                .read_only(),
                text(Session::read_text_file),
            )
            .tool(
                ToolSpec::named(
                    "read_media_file",
                    "Read an image or audio file and return it base64-encoded with its MIME type; other files come \
                     back as an embedded binary resource. Only works within allowed directories.",
                )
                .title("Read Media File")
                .output::<MediaResult>()
                .read_only(),
                in_session(Session::read_media_file),
            )
            .tool(
                ToolSpec::named(
                    "read_multiple_files",
                    "Read several text files in one call. Each file's content is preceded by its path; a file that \
                     cannot be read shows its error without stopping the others. Only works within allowed \
                     directories.",
                )
                .title("Read Multiple Files")
                .read_only(),
                text(Session::read_multiple_files),
            )
            .tool(
                ToolSpec::named(
                    "write_file",
                    "Create a file, or replace an existing file's content entirely, atomically (readers see the old \
                     or the new content, never a mix). Overwrites without warning. Only works within allowed \
                     directories that are writable.",
                )
                .title("Write File")
                .annotations(ToolAnnotations::write().destructive(true).idempotent(true)),
                text(Session::write_file),
            )
            .tool(
                ToolSpec::named(
                    "edit_file",
                    "Edit a text file: each edit replaces the first occurrence of oldText with newText (lines \
                     matching up to surrounding whitespace also count, keeping the file's indentation). Returns a \
                     git-style unified diff; with dryRun the file is left unchanged. Only works within allowed \
                     directories.",
                )
                .title("Edit File")
                .annotations(ToolAnnotations::write().destructive(true)),
                text(Session::edit_file),
            )
            .tool(
                ToolSpec::named(
                    "create_directory",
                    "Create a directory, with any missing parents; succeeds if it already exists. Only works within \
                     allowed directories that are writable.",
                )
                .title("Create Directory")
                .annotations(ToolAnnotations::write().idempotent(true)),
                text(Session::create_directory),
            )
            .tool(
                ToolSpec::named(
                    "list_directory",
                    "List a directory's entries, sorted by name, each prefixed with [DIR] or [FILE]. Only works \
                     within allowed directories.",
                )
                .title("List Directory")
                .read_only(),
                text(Session::list_directory),
            )
            .tool(
                ToolSpec::named(
                    "list_directory_with_sizes",
                    "List a directory's entries with [DIR]/[FILE] prefixes and file sizes, sorted by name or by \
                     size (largest first), followed by totals. Only works within allowed directories.",
                )
                .title("List Directory with Sizes")
                .read_only(),
                text(Session::list_directory_with_sizes),
            )
            .tool(
                ToolSpec::named(
                    "directory_tree",
                    "A recursive tree of a directory as JSON (2-space indented): each entry has 'name' and 'type' \
                     (file or directory), and directories have 'children'. Symbolic links are not followed. \
                     excludePatterns are globs relative to the path. Only works within allowed directories.",
                )
                .title("Directory Tree")
                .read_only(),
                text(Session::directory_tree),
            )
            .tool(
                ToolSpec::named(
                    "move_file",
                    "Move or rename a file or directory. Fails if the destination exists. Source and destination \
                     must both be within allowed directories that are writable.",
                )
                .title("Move File")
                .annotations(ToolAnnotations::write().destructive(true)),
                text(Session::move_file),
            )
            .tool(
                ToolSpec::named(
                    "search_files",
                    "Recursively find files and directories whose path relative to 'path' matches a glob pattern: \
                     '*.ext' matches in 'path' itself, '**/*.ext' at any depth. Returns full paths. Symbolic links \
                     are not followed. Only searches within allowed directories.",
                )
                .title("Search Files")
                .read_only(),
                text(Session::search_files),
            )
            .tool(
                ToolSpec::named(
                    "get_file_info",
                    "Metadata of a file or directory: size, creation, modification and access times, type and \
                     permissions, without reading its content. Only works within allowed directories.",
                )
                .title("Get File Info")
                .read_only(),
                text(Session::get_file_info),
            )
            .tool(
                ToolSpec::named(
                    "list_allowed_directories",
                    "The directories this server may access (subdirectories included), marked read-only where \
                     writes are refused. Relative paths are accepted when there is exactly one.",
                )
                .title("List Allowed Directories")
                .read_only(),
                text(|session, _: NoArguments| Ok(session.list_allowed_directories())),
            )
    }
}

/// What the tool functions made by [`in_session`] and [`text`] return.
type SessionCall<'a, T> = Pin<Box<dyn Future<Output = Result<T, ToolError>> + Send + 'a>>;

/// The tool function that runs `work` in the call's session ([`FsToolbox::in_session`]).
fn in_session<A, T>(
    work: impl Fn(&Session, A) -> Result<T, FsError> + Copy + Send + Sync + 'static,
) -> impl for<'a> Fn(&'a FsToolbox, A, &'a CallContext) -> SessionCall<'a, T> + Send + Sync
where
    A: Send + 'static,
    T: Send + 'static,
{
    move |fs, arguments, context| Box::pin(fs.in_session(context, move |session| work(session, arguments)))
}

/// [`in_session`] for a tool whose result is text.
fn text<A: Send + 'static>(
    work: impl Fn(&Session, A) -> Result<String, FsError> + Copy + Send + Sync + 'static,
) -> impl for<'a> Fn(&'a FsToolbox, A, &'a CallContext) -> SessionCall<'a, Text> + Send + Sync {
    in_session(move |session, arguments| work(session, arguments).map(Text))
}

/// A text tool's result: the text, also as [`TextResult`] (as the reference server
/// returns it), whose schema is the tool's output schema.
struct Text(String);

impl IntoToolOutput for Text {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        ToolOutput::structured(&TextResult { content: self.0.clone() }, self.0)
    }

    fn output_schema() -> Option<Map<String, Value>> {
        Some(output_schema_for::<TextResult>())
    }
}

/// The arguments of a tool that takes one path.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathArguments {
    /// Absolute path under an allowed directory, or relative to it when there is only one.
    pub(crate) path: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadTextFileArguments {
    /// Absolute path under an allowed directory, or relative to it when there is only one.
    pub(crate) path: String,
    /// If provided, returns only the last N lines of the file.
    pub(crate) tail: Option<u64>,
    /// If provided, returns only the first N lines of the file.
    pub(crate) head: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadMultipleFilesArguments {
    /// Paths of the files to read (at least one), each within the allowed directories.
    pub(crate) paths: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteFileArguments {
    /// Absolute path under an allowed directory, or relative to it when there is only one.
    pub(crate) path: String,
    /// The file's new content (UTF-8 text).
    pub(crate) content: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct EditOperation {
    /// Text to search for - must match exactly.
    pub(crate) old_text: String,
    /// Text to replace with.
    pub(crate) new_text: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct EditFileArguments {
    /// Absolute path under an allowed directory, or relative to it when there is only one.
    pub(crate) path: String,
    /// Edits, applied in order.
    pub(crate) edits: Vec<EditOperation>,
    /// Preview changes using git-style diff format, without writing.
    #[serde(default)]
    pub(crate) dry_run: bool,
}

/// How `list_directory_with_sizes` orders entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SortBy {
    /// By name.
    #[default]
    Name,
    /// By size, largest first.
    Size,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListDirectoryWithSizesArguments {
    /// Absolute path under an allowed directory, or relative to it when there is only one.
    pub(crate) path: String,
    /// Sort entries by name or size.
    #[serde(default)]
    pub(crate) sort_by: SortBy,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DirectoryTreeArguments {
    /// Absolute path under an allowed directory, or relative to it when there is only one.
    pub(crate) path: String,
    /// Glob patterns of entries to leave out, relative to `path`.
    #[serde(default)]
    pub(crate) exclude_patterns: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveFileArguments {
    /// What to move.
    pub(crate) source: String,
    /// Where to move it; must not exist.
    pub(crate) destination: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SearchFilesArguments {
    /// The directory to search.
    pub(crate) path: String,
    /// Glob pattern matched against paths relative to `path`.
    pub(crate) pattern: String,
    /// Glob patterns of entries to leave out (and not descend into).
    #[serde(default)]
    pub(crate) exclude_patterns: Vec<String>,
}

/// The structured result of the text tools (as the reference server returns it).
#[derive(Serialize, JsonSchema)]
pub(crate) struct TextResult {
    /// The same text as the content block.
    pub(crate) content: String,
}

/// The structured result of `read_media_file`.
#[derive(Serialize, JsonSchema)]
pub(crate) struct MediaResult {
    /// The one content block, as in `content`.
    pub(crate) content: Vec<MediaBlock>,
}

/// An image, audio or embedded-resource block.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum MediaBlock {
    /// An image.
    Image {
        /// Base64 of the bytes.
        data: String,
        /// e.g. `image/png`.
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// Audio.
    Audio {
        /// Base64 of the bytes.
        data: String,
        /// e.g. `audio/wav`.
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// Any other file, as an embedded blob resource.
    Resource {
        /// The blob.
        resource: BlobResource,
    },
}

/// A blob resource's contents.
#[derive(Serialize, JsonSchema)]
pub(crate) struct BlobResource {
    /// `file://` URI of the file.
    pub(crate) uri: String,
    /// `application/octet-stream` unless known.
    #[serde(rename = "mimeType")]
    pub(crate) mime_type: String,
    /// Base64 of the bytes.
    pub(crate) blob: String,
}

#[async_trait]
impl Toolbox for FsToolbox {
    fn name(&self) -> &str {
        "fs"
    }

    fn routes(&self) -> Option<Routes<'_>> {
        Some(self.tools.bind(self))
    }
}
