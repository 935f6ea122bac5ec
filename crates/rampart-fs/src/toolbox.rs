//! [`FsToolbox`]: the tool specs, their arguments, and the dispatch of a call to
//! [`Session`] on a blocking thread after the client's roots are known.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rampart_core::{CallContext, PeerError, ToolAnnotations, ToolError, ToolOutput, ToolSpec, Toolbox};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{FsConfig, FsConfigError};
use crate::roots::Root;
use crate::session::{Limits, Session};

/// How long the client may take to answer `roots/list`.
const ROOTS_TIMEOUT: Duration = Duration::from_secs(10);

/// File tools confined to the configured roots (see the crate docs).
#[derive(Debug)]
pub struct FsToolbox {
    roots: Vec<Arc<Root>>,
    limits: Limits,
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
        Ok(Self { roots, limits })
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

/// The tools, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    ReadTextFile,
    ReadMediaFile,
    ReadMultipleFiles,
    WriteFile,
    EditFile,
    CreateDirectory,
    ListDirectory,
    ListDirectoryWithSizes,
    DirectoryTree,
    MoveFile,
    SearchFiles,
    GetFileInfo,
    ListAllowedDirectories,
}

impl Tool {
    const ALL: [Self; 13] = [
        Self::ReadTextFile,
        Self::ReadMediaFile,
        Self::ReadMultipleFiles,
        Self::WriteFile,
        Self::EditFile,
        Self::CreateDirectory,
        Self::ListDirectory,
        Self::ListDirectoryWithSizes,
        Self::DirectoryTree,
        Self::MoveFile,
        Self::SearchFiles,
        Self::GetFileInfo,
        Self::ListAllowedDirectories,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::ReadTextFile => "read_text_file",
            Self::ReadMediaFile => "read_media_file",
            Self::ReadMultipleFiles => "read_multiple_files",
            Self::WriteFile => "write_file",
            Self::EditFile => "edit_file",
            Self::CreateDirectory => "create_directory",
            Self::ListDirectory => "list_directory",
            Self::ListDirectoryWithSizes => "list_directory_with_sizes",
            Self::DirectoryTree => "directory_tree",
            Self::MoveFile => "move_file",
            Self::SearchFiles => "search_files",
            Self::GetFileInfo => "get_file_info",
            Self::ListAllowedDirectories => "list_allowed_directories",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tool| tool.name() == name)
    }

    fn spec(self) -> ToolSpec {
        let (title, description, annotations) = self.describe();
        let spec = match self {
            Self::ReadTextFile => ToolSpec::new::<ReadTextFileArguments>(self.name(), description),
            Self::ReadMediaFile => ToolSpec::new::<PathArguments>(self.name(), description).output::<MediaResult>(),
            Self::ReadMultipleFiles => ToolSpec::new::<ReadMultipleFilesArguments>(self.name(), description),
            Self::WriteFile => ToolSpec::new::<WriteFileArguments>(self.name(), description),
            Self::EditFile => ToolSpec::new::<EditFileArguments>(self.name(), description),
            Self::ListDirectoryWithSizes => ToolSpec::new::<ListDirectoryWithSizesArguments>(self.name(), description),
            Self::DirectoryTree => ToolSpec::new::<DirectoryTreeArguments>(self.name(), description),
            Self::MoveFile => ToolSpec::new::<MoveFileArguments>(self.name(), description),
            Self::SearchFiles => ToolSpec::new::<SearchFilesArguments>(self.name(), description),
            Self::ListAllowedDirectories => ToolSpec::new::<NoArguments>(self.name(), description),
            Self::CreateDirectory | Self::ListDirectory | Self::GetFileInfo => {
                ToolSpec::new::<PathArguments>(self.name(), description)
            }
        };
        let spec = if self == Self::ReadMediaFile { spec } else { spec.output::<TextResult>() };
        spec.title(title).annotations(annotations)
    }

    fn describe(self) -> (&'static str, &'static str, ToolAnnotations) {
        let read = ToolAnnotations::read_only();
        match self {
            Self::ReadTextFile => (
                "Read Text File",
                "Read a file as UTF-8 text (invalid bytes are replaced). Give 'head' for only the first N lines or \
                 'tail' for only the last N, not both. Files over the server's read limit need head or tail. \
                 Only works within allowed directories.",
                read,
            ),
            Self::ReadMediaFile => (
                "Read Media File",
                "Read an image or audio file and return it base64-encoded with its MIME type; other files come back \
                 as an embedded binary resource. Only works within allowed directories.",
                read,
            ),
            Self::ReadMultipleFiles => (
                "Read Multiple Files",
                "Read several text files in one call. Each file's content is preceded by its path; a file that \
                 cannot be read shows its error without stopping the others. Only works within allowed directories.",
                read,
            ),
            Self::WriteFile => (
                "Write File",
                "Create a file, or replace an existing file's content entirely, atomically (readers see the old or \
                 the new content, never a mix). Overwrites without warning. Only works within allowed directories \
                 that are writable.",
                write(true, true),
            ),
            Self::EditFile => (
                "Edit File",
                "Edit a text file: each edit replaces the first occurrence of oldText with newText (lines matching \
                 up to surrounding whitespace also count, keeping the file's indentation). Returns a git-style \
                 unified diff; with dryRun the file is left unchanged. Only works within allowed directories.",
                write(true, false),
            ),
            Self::CreateDirectory => (
                "Create Directory",
                "Create a directory, with any missing parents; succeeds if it already exists. Only works within \
                 allowed directories that are writable.",
                write(false, true),
            ),
            Self::ListDirectory => (
                "List Directory",
                "List a directory's entries, sorted by name, each prefixed with [DIR] or [FILE]. Only works within \
                 allowed directories.",
                read,
            ),
            Self::ListDirectoryWithSizes => (
                "List Directory with Sizes",
                "List a directory's entries with [DIR]/[FILE] prefixes and file sizes, sorted by name or by size \
                 (largest first), followed by totals. Only works within allowed directories.",
                read,
            ),
            Self::DirectoryTree => (
                "Directory Tree",
                "A recursive tree of a directory as JSON (2-space indented): each entry has 'name' and 'type' \
                 (file or directory), and directories have 'children'. Symbolic links are not followed. \
                 excludePatterns are globs relative to the path. Only works within allowed directories.",
                read,
            ),
            Self::MoveFile => (
                "Move File",
                "Move or rename a file or directory. Fails if the destination exists. Source and destination must \
                 both be within allowed directories that are writable.",
                write(true, false),
            ),
            Self::SearchFiles => (
                "Search Files",
                "Recursively find files and directories whose path relative to 'path' matches a glob pattern: \
                 '*.ext' matches in 'path' itself, '**/*.ext' at any depth. Returns full paths. Symbolic links are \
                 not followed. Only searches within allowed directories.",
                read,
            ),
            Self::GetFileInfo => (
                "Get File Info",
                "Metadata of a file or directory: size, creation, modification and access times, type and \
                 permissions, without reading its content. Only works within allowed directories.",
                read,
            ),
            Self::ListAllowedDirectories => (
                "List Allowed Directories",
                "The directories this server may access (subdirectories included), marked read-only where writes \
                 are refused. Relative paths are accepted when there is exactly one.",
                read,
            ),
        }
    }
}

/// A tool that changes the filesystem.
fn write(destructive: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations {
        read_only_hint: Some(false),
        destructive_hint: Some(destructive),
        idempotent_hint: Some(idempotent),
        open_world_hint: Some(false),
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
pub(crate) struct NoArguments {}

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

    async fn tools(&self) -> Vec<ToolSpec> {
        Tool::ALL.into_iter().map(Tool::spec).collect()
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let tool = Tool::from_name(tool).ok_or_else(|| ToolError::NotFound(format!("tool '{tool}'")))?;
        let client_roots = Self::client_roots(context).await?;
        let (configured, limits, context) = (self.roots.clone(), self.limits, context.clone());
        tokio::task::spawn_blocking(move || {
            Session::open(&configured, client_roots, limits, context).call(tool, arguments)
        })
        .await
        .map_err(|error| ToolError::Internal(format!("fs task failed: {error}")))?
    }
}
