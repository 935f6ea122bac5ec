//! The tool list of each server, cached under `$XDG_CACHE_HOME/rampart/tools/` so that
//! `rampart tool NAME --help` and shell completion answer without connecting again.
//!
//! Keyed by where the server is (URL, stdio command or client-file name) and by a hash of
//! the token (tool lists depend on the caller's grants). Written whole (temporary file,
//! then rename) every time a client lists the tools; `--help` trusts an entry for
//! [`FRESH_FOR`], completion for as long as it exists (it only suggests words). The shell
//! rewrites it when the server says its tools changed (`notifications/tools/list_changed`).

use std::{
    hash::{Hash, Hasher},
    path::PathBuf,
    time::{Duration, SystemTime},
};

use rampart_mcp::ToolInfo;
use serde_json::{Value, json};

use crate::args::ClientArgs;

/// How long `--help` trusts a cached list.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(600);

fn directory() -> PathBuf {
    crate::output::xdg_dir("XDG_CACHE_HOME", ".cache", "tools")
}

/// The cache file of the server `args` name; `None` when they name none.
fn file(args: &ClientArgs) -> Option<PathBuf> {
    let place = match (&args.server, &args.url, &args.stdio) {
        (Some(name), _, _) => format!("server-{name}"),
        (None, Some(url), _) => url.clone(),
        (None, None, Some(command)) => command.clone(),
        (None, None, None) => return None,
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&place, &args.token).hash(&mut hasher);
    let readable: String = place
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .take(80)
        .collect();
    Some(directory().join(format!("{readable}-{:016x}.json", hasher.finish())))
}

/// The cached tools, when there are some no older than `max_age` (`None`: any age).
pub(crate) fn load(args: &ClientArgs, max_age: Option<Duration>) -> Option<Vec<ToolInfo>> {
    let path = file(args)?;
    if let Some(max_age) = max_age {
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        if SystemTime::now().duration_since(modified).unwrap_or_default() > max_age {
            return None;
        }
    }
    let cached: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    Some(cached["tools"].as_array()?.iter().filter_map(tool_info).collect())
}

fn tool_info(raw: &Value) -> Option<ToolInfo> {
    Some(ToolInfo {
        name: raw["name"].as_str()?.to_owned(),
        title: raw["title"].as_str().map(str::to_owned),
        description: raw["description"].as_str().unwrap_or_default().to_owned(),
        raw: raw.clone(),
    })
}

/// Records `tools` for the server `args` name. A cache that cannot be written is only
/// slower, never an error.
pub(crate) fn store(args: &ClientArgs, tools: &[ToolInfo]) {
    let Some(path) = file(args) else { return };
    let Some(directory) = path.parent() else { return };
    let raw: Vec<&Value> = tools.iter().map(|t| &t.raw).collect();
    let body = json!({ "tools": raw }).to_string();
    let written = std::fs::create_dir_all(directory)
        .and_then(|()| tempfile::NamedTempFile::new_in(directory))
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, body.as_bytes())?;
            file.persist(&path).map(drop).map_err(|e| e.error)
        });
    if let Err(error) = written {
        tracing::debug!(%error, path = %path.display(), "tool cache not written");
    }
}
