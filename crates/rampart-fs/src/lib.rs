//! Rampart's `fs` toolbox: the file tools of the reference MCP filesystem server
//! (`read_text_file`, `write_file`, `edit_file`, `directory_tree`, …), confined to the
//! roots of the `[fs]` configuration table.
//!
//! ```toml
//! [[fs.roots]]
//! path = "/srv/data"
//! mode = "read"            # or "read-write"
//! [fs]
//! max_read_bytes = 10485760
//! max_list_entries = 10000
//! ```
//!
//! Confinement is by construction, not by string checks. Each root is opened once as a
//! directory handle (cap-std's `Dir`), and every access is a lookup through that handle,
//! which the kernel keeps beneath it (`openat2` with `RESOLVE_BENEATH` on Linux): `..`,
//! absolute symlinks and links leading out fail instead of escaping, whatever races with
//! them. A path is first resolved to its real location inside the root; the policy is
//! asked about that path (`Request::Fs`, read or read-write); the object is then opened
//! from the root one component at a time without following links, so what is opened is
//! what was authorized. The `confined` module has the details, and `tests/fs/attacks.rs` the
//! attacks this is meant to stop.
//!
//! A root configured `mode = "read"` refuses writes whatever the caller's role allows. When
//! the client supports MCP Roots, its roots narrow (never widen) the configured ones for
//! each call (`roots/list` is asked on every call; an empty answer narrows nothing).
//!
//! [`FsToolbox::from_config`] builds the toolbox from the `[fs]` table as JSON (as
//! `rampart-config` keeps it), [`FsToolbox::new`] from an [`FsConfig`] ([`RootConfig`] per
//! root, [`RootMode`]); either opens every root at once and fails with an
//! [`FsConfigError`] naming the key (`fs.roots[0].path`).

mod config;
mod confined;
mod edit;
mod roots;
mod session;
mod toolbox;
mod walk;

pub use config::{DEFAULT_MAX_LIST_ENTRIES, DEFAULT_MAX_READ_BYTES, FsConfig, FsConfigError, RootConfig, RootMode};
pub use toolbox::FsToolbox;
