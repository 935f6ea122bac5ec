//! One call's work, on a blocking thread: the effective roots (narrowed by the client's),
//! and each tool as locate → resolve → authorize → open → act, in that order.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use cap_std::fs::{Metadata, PermissionsExt};
use rampart_core::{Access, CallContext, Content, ResourceContents, ToolOutput};

use crate::config::RootMode;
use crate::confined::{self, EntryKind, FsError, Resolved};
use crate::edit::{self, Edit};
use crate::roots::{self, Located, Root};
use crate::toolbox::{
    BlobResource, DirectoryTreeArguments, EditFileArguments, ListDirectoryWithSizesArguments, MediaBlock, MediaResult,
    MoveFileArguments, PathArguments, ReadMultipleFilesArguments, ReadTextFileArguments, SearchFilesArguments, SortBy,
    WriteFileArguments,
};
use crate::walk::{Patterns, Walk};

/// The size caps of `[fs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_read_bytes: u64,
    pub(crate) max_list_entries: usize,
}

/// One call: the roots in effect, the caps, and the caller.
pub(crate) struct Session {
    roots: Vec<Arc<Root>>,
    /// Why `roots` is empty, when it is.
    narrowed_from: Option<Vec<PathBuf>>,
    limits: Limits,
    context: CallContext,
}

impl Session {
    /// The session for a call: the configured roots, narrowed by the client's roots when
    /// the client names some. A client without roots, or with an empty list (what clients
    /// built on rmcp answer by default), leaves the configured roots as they are, as in
    /// the reference server; a list that overlaps none of them leaves nothing.
    pub(crate) fn open(
        configured: &[Arc<Root>],
        client: Option<Vec<PathBuf>>,
        limits: Limits,
        context: CallContext,
    ) -> Self {
        let client = client.filter(|client| !client.is_empty());
        let roots = match &client {
            None => configured.to_vec(),
            Some(client) => {
                let narrowed = roots::narrow(configured, client);
                tracing::debug!(?client, effective = %roots::allowed(&narrowed), "fs roots narrowed by the client's");
                narrowed
            }
        };
        Self { roots, narrowed_from: client, limits, context }
    }

    fn locate(&self, path: &str) -> Result<Located, FsError> {
        if self.roots.is_empty() {
            let client = self.narrowed_from.as_deref().unwrap_or_default();
            let client: Vec<String> = client.iter().map(|p| p.display().to_string()).collect();
            return Err(FsError::Failed(format!(
                "no allowed directories: the client's roots ({}) do not overlap the server's",
                client.join(", ")
            )));
        }
        roots::locate(&self.roots, path)
    }

    /// Locates, resolves (following links inside the root) and authorizes `path`.
    fn existing(&self, path: &str, access: Access) -> Result<Resolved, FsError> {
        let resolved = confined::resolve(&self.locate(path)?)?;
        resolved.authorize(&self.context, access)?;
        Ok(resolved)
    }

    /// Opens the regular file at `resolved` for reading.
    fn open_file(resolved: &Resolved) -> Result<(cap_std::fs::File, Metadata), FsError> {
        if resolved.rel.as_os_str().is_empty() {
            return Err(FsError::NotRegular { path: resolved.absolute(), kind: "a directory" });
        }
        let (dir, name) = resolved.open_parent()?;
        confined::open_regular(&dir, &name, resolved)
    }

    /// The whole file as bytes, within `limit`.
    fn read_bytes(resolved: &Resolved, limit: u64) -> Result<Vec<u8>, FsError> {
        let (file, metadata) = Self::open_file(resolved)?;
        confined::read_capped(file, metadata.len(), limit, resolved)
    }

    pub(crate) fn read_text_file(&self, arguments: ReadTextFileArguments) -> Result<String, FsError> {
        let head = arguments.head.filter(|n| *n > 0);
        let tail = arguments.tail.filter(|n| *n > 0);
        if head.is_some() && tail.is_some() {
            return Err(FsError::Failed("Cannot specify both head and tail parameters simultaneously".into()));
        }
        let resolved = self.existing(&arguments.path, Access::Read)?;
        let limit = self.limits.max_read_bytes;
        let lines = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        match (head, tail) {
            (Some(n), _) => confined::read_head(Self::open_file(&resolved)?.0, lines(n), limit, &resolved),
            (None, Some(n)) => {
                let (file, metadata) = Self::open_file(&resolved)?;
                confined::read_tail(file, metadata.len(), lines(n), limit, &resolved)
            }
            (None, None) => Ok(String::from_utf8_lossy(&Self::read_bytes(&resolved, limit)?).into_owned()),
        }
    }

    pub(crate) fn read_media_file(&self, arguments: PathArguments) -> Result<ToolOutput, FsError> {
        let resolved = self.existing(&arguments.path, Access::Read)?;
        let bytes = Self::read_bytes(&resolved, self.limits.max_read_bytes)?;
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mime_type = media_type(&resolved.rel).to_owned();
        let (block, content) = if mime_type.starts_with("image/") {
            (MediaBlock::Image { data: data.clone(), mime_type: mime_type.clone() }, Content::Image { data, mime_type })
        } else if mime_type.starts_with("audio/") {
            (MediaBlock::Audio { data: data.clone(), mime_type: mime_type.clone() }, Content::Audio { data, mime_type })
        } else {
            let uri = file_uri(&resolved);
            let block = BlobResource { uri: uri.clone(), mime_type: mime_type.clone(), blob: data.clone() };
            let resource = ResourceContents::Blob { uri, mime_type: Some(mime_type), blob: data };
            (MediaBlock::Resource { resource: block }, Content::Resource { resource })
        };
        let structured = serde_json::to_value(MediaResult { content: vec![block] })
            .map_err(|error| FsError::Failed(format!("serializing result: {error}")))?;
        Ok(ToolOutput { content: vec![content], structured_content: Some(structured), is_error: false })
    }

    pub(crate) fn read_multiple_files(&self, arguments: ReadMultipleFilesArguments) -> Result<String, FsError> {
        if arguments.paths.is_empty() {
            return Err(FsError::Failed("At least one file path must be provided".into()));
        }
        let limit = self.limits.max_read_bytes;
        let mut total = 0u64;
        let results: Vec<String> = arguments
            .paths
            .iter()
            .map(|path| {
                if total >= limit {
                    return format!(
                        "{path}: Error - skipped: the files before it used up the combined read limit of {limit} \
                         bytes (fs.max_read_bytes)"
                    );
                }
                // The files of one call share one budget of `max_read_bytes`.
                let remaining = limit - total;
                let read =
                    self.existing(path, Access::Read).and_then(|resolved| Self::read_bytes(&resolved, remaining));
                match read {
                    Ok(bytes) => {
                        total += bytes.len() as u64;
                        format!("{path}:\n{}\n", String::from_utf8_lossy(&bytes))
                    }
                    Err(error) => format!("{path}: Error - {error}"),
                }
            })
            .collect();
        Ok(results.join("\n---\n"))
    }

    pub(crate) fn write_file(&self, arguments: WriteFileArguments) -> Result<String, FsError> {
        let resolved = confined::resolve_for_write(&self.locate(&arguments.path)?)?;
        resolved.authorize(&self.context, Access::ReadWrite)?;
        let (dir, name) = resolved.open_parent()?;
        confined::write_atomic(&dir, &name, arguments.content.as_bytes(), &resolved)?;
        Ok(format!("Successfully wrote to {}", arguments.path))
    }

    pub(crate) fn edit_file(&self, arguments: EditFileArguments) -> Result<String, FsError> {
        let access = if arguments.dry_run { Access::Read } else { Access::ReadWrite };
        let resolved = self.existing(&arguments.path, access)?;
        let (dir, name) = resolved.open_parent()?;
        let (file, metadata) = confined::open_regular(&dir, &name, &resolved)?;
        let bytes = confined::read_capped(file, metadata.len(), self.limits.max_read_bytes, &resolved)?;
        let original = String::from_utf8(bytes)
            .map_err(|_| FsError::Failed(format!("{} is not UTF-8 text; it cannot be edited", resolved.absolute())))?;
        let original = edit::normalize_line_endings(&original);
        let edits: Vec<Edit> =
            arguments.edits.into_iter().map(|edit| Edit { old_text: edit.old_text, new_text: edit.new_text }).collect();
        let modified = edit::apply_edits(&original, &edits).map_err(FsError::Failed)?;
        let diff = edit::unified_diff(&original, &modified, &resolved.absolute());
        if !arguments.dry_run {
            confined::write_atomic(&dir, &name, modified.as_bytes(), &resolved)?;
        }
        Ok(edit::fenced(&diff))
    }

    pub(crate) fn create_directory(&self, arguments: PathArguments) -> Result<String, FsError> {
        let (resolved, missing) = confined::resolve_for_create_dir(&self.locate(&arguments.path)?)?;
        resolved.authorize(&self.context, Access::ReadWrite)?;
        let existing_depth = resolved.rel.components().count() - missing.len();
        let ancestor =
            Resolved { root: resolved.root.clone(), rel: resolved.rel.iter().take(existing_depth).collect() };
        let base = ancestor.open_dir()?;
        confined::create_dirs(base, &missing).map_err(|error| resolved.error(error))?;
        Ok(format!("Successfully created directory {}", arguments.path))
    }

    /// Resolves, authorizes for reading and opens the directory at `path`.
    fn directory(&self, path: &str) -> Result<(Resolved, cap_std::fs::Dir), FsError> {
        let resolved = self.existing(path, Access::Read)?;
        let dir = resolved.open_dir()?;
        Ok((resolved, dir))
    }

    fn entries(&self, path: &str) -> Result<(Vec<confined::Entry>, bool), FsError> {
        let (resolved, dir) = self.directory(path)?;
        confined::list(&dir, self.limits.max_list_entries).map_err(|error| resolved.error(error))
    }

    fn truncation_note(&self, truncated: bool) -> String {
        if truncated {
            format!("\n[listing truncated after {} entries (fs.max_list_entries)]", self.limits.max_list_entries)
        } else {
            String::new()
        }
    }

    pub(crate) fn list_directory(&self, arguments: PathArguments) -> Result<String, FsError> {
        let (entries, truncated) = self.entries(&arguments.path)?;
        let lines: Vec<String> =
            entries.iter().map(|entry| format!("{} {}", tag(entry), entry.display_name())).collect();
        Ok(lines.join("\n") + &self.truncation_note(truncated))
    }

    pub(crate) fn list_directory_with_sizes(
        &self,
        arguments: ListDirectoryWithSizesArguments,
    ) -> Result<String, FsError> {
        let (mut entries, truncated) = self.entries(&arguments.path)?;
        match arguments.sort_by {
            SortBy::Name => {
                entries.sort_by_cached_key(|entry| (entry.display_name().to_lowercase(), entry.name.clone()))
            }
            SortBy::Size => entries.sort_by_key(|entry| std::cmp::Reverse(entry.size)),
        }
        let mut lines: Vec<String> = entries
            .iter()
            .map(|entry| {
                let size = if entry.kind == EntryKind::Directory { String::new() } else { format_size(entry.size) };
                format!("{} {:<30} {size:>10}", tag(entry), entry.display_name())
            })
            .collect();
        let files = entries.iter().filter(|entry| entry.kind != EntryKind::Directory);
        let total: u64 = files.clone().map(|entry| entry.size).sum();
        let directories = entries.len() - files.count();
        lines.push(String::new());
        lines.push(format!("Total: {} files, {directories} directories", entries.len() - directories));
        lines.push(format!("Combined size: {}", format_size(total)));
        Ok(lines.join("\n") + &self.truncation_note(truncated))
    }

    pub(crate) fn directory_tree(&self, arguments: DirectoryTreeArguments) -> Result<String, FsError> {
        let (resolved, dir) = self.directory(&arguments.path)?;
        let excludes = Patterns::tree_excludes(&arguments.exclude_patterns)?;
        let mut walk = Walk::new(&self.context, excludes, self.limits.max_list_entries);
        let tree = walk.tree(&resolved, &dir)?;
        if walk.truncated {
            return Err(FsError::Failed(format!(
                "the tree under {} has more than {} entries (fs.max_list_entries) or is too deep; \
                 ask for a subdirectory or add excludePatterns",
                resolved.absolute(),
                self.limits.max_list_entries
            )));
        }
        serde_json::to_string_pretty(&tree).map_err(|error| FsError::Failed(format!("serializing the tree: {error}")))
    }

    pub(crate) fn move_file(&self, arguments: MoveFileArguments) -> Result<String, FsError> {
        let source = confined::resolve_parent(&self.locate(&arguments.source)?)?;
        let destination = confined::resolve_parent(&self.locate(&arguments.destination)?)?;
        source.authorize(&self.context, Access::ReadWrite)?;
        destination.authorize(&self.context, Access::ReadWrite)?;
        let (from_dir, from) = source.open_parent()?;
        let (to_dir, to) = destination.open_parent()?;
        confined::rename_noreplace(&from_dir, &from, &to_dir, &to).map_err(|error| {
            if error.kind() == std::io::ErrorKind::AlreadyExists {
                FsError::Failed(format!("{} already exists; move_file does not overwrite", destination.absolute()))
            } else {
                FsError::Failed(format!("moving {} to {}: {error}", source.absolute(), destination.absolute()))
            }
        })?;
        Ok(format!("Successfully moved {} to {}", arguments.source, arguments.destination))
    }

    pub(crate) fn search_files(&self, arguments: SearchFilesArguments) -> Result<String, FsError> {
        let (resolved, dir) = self.directory(&arguments.path)?;
        let pattern = Patterns::plain(std::slice::from_ref(&arguments.pattern))?;
        let excludes = Patterns::plain(&arguments.exclude_patterns)?;
        let mut walk = Walk::new(&self.context, excludes, self.limits.max_list_entries);
        let found = walk.search(&resolved, &dir, &pattern)?;
        let mut text = if found.is_empty() { "No matches found".to_owned() } else { found.join("\n") };
        if walk.truncated {
            text.push_str(&format!(
                "\n[search stopped after reading {} entries (fs.max_list_entries); narrow the path]",
                self.limits.max_list_entries
            ));
        }
        Ok(text)
    }

    pub(crate) fn get_file_info(&self, arguments: PathArguments) -> Result<String, FsError> {
        let resolved = self.existing(&arguments.path, Access::Read)?;
        let metadata = if resolved.rel.as_os_str().is_empty() {
            resolved.root.dir.dir_metadata()
        } else {
            let (dir, name) = resolved.open_parent()?;
            dir.symlink_metadata(&name)
        }
        .map_err(|error| resolved.error(error))?;
        let time = |time: std::io::Result<cap_std::time::SystemTime>| {
            time.ok()
                .and_then(|time| jiff::Timestamp::try_from(time.into_std()).ok())
                .and_then(|time| jiff::Timestamp::from_second(time.as_second()).ok())
                .map_or_else(|| "unknown".to_owned(), |time| time.to_string())
        };
        let lines = [
            format!("size: {}", metadata.len()),
            format!("created: {}", time(metadata.created())),
            format!("modified: {}", time(metadata.modified())),
            format!("accessed: {}", time(metadata.accessed())),
            format!("isDirectory: {}", metadata.is_dir()),
            format!("isFile: {}", metadata.is_file()),
            format!("permissions: {:03o}", metadata.permissions().mode() & 0o777),
        ];
        Ok(lines.join("\n"))
    }

    pub(crate) fn list_allowed_directories(&self) -> String {
        let lines: Vec<String> = self
            .roots
            .iter()
            .map(|root| match root.mode {
                RootMode::Read => format!("{} (read-only)", root.display()),
                RootMode::ReadWrite => root.display(),
            })
            .collect();
        format!("Allowed directories:\n{}", lines.join("\n"))
    }
}

/// `[DIR]` or `[FILE]` (links and special files are not directories).
fn tag(entry: &confined::Entry) -> &'static str {
    if entry.kind == EntryKind::Directory { "[DIR]" } else { "[FILE]" }
}

/// `0 B`, `512 B`, `1.50 KB`… as the reference server formats sizes.
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{scaled:.2} {}", UNITS[unit]) }
}

/// The MIME type the reference server gives a file extension.
fn media_type(path: &std::path::Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("bmp") => "image/bmp",
        Some("svg") => "image/svg+xml",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("ogg") => "audio/ogg",
        Some("flac") => "audio/flac",
        _ => "application/octet-stream",
    }
}

fn file_uri(resolved: &Resolved) -> String {
    url::Url::from_file_path(resolved.root.path.join(&resolved.rel))
        .map_or_else(|()| format!("file://{}", resolved.absolute()), String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_reference_server() {
        let cases =
            [(0, "0 B"), (1023, "1023 B"), (1024, "1.00 KB"), (1536, "1.50 KB"), (10 * 1024 * 1024, "10.00 MB")];
        for (bytes, expected) in cases {
            assert_eq!(format_size(bytes), expected);
        }
    }
}
