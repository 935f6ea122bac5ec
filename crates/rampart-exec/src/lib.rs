//! Rampart's `exec` toolbox: `run_command` for allowlisted programs (run directly, argv,
//! never through a shell) and `run_script` for configured interpreters, every run in a
//! layered sandbox with no root daemon.
//!
//! ```toml
//! [exec]
//! programs = { git = "/usr/bin/git", ls = "/bin/ls" }      # name -> absolute path
//! interpreters = { python3 = "/usr/bin/python3", bash = "/bin/bash" }
//! require = ["landlock", "seccomp", "namespaces"]         # the default: all
//! network = false
//! env = { LANG = "C.UTF-8" }
//! timeout_s = 30
//! max_output_bytes = 1048576
//! limits = { cpu_s = 10, memory_mb = 512, file_size_mb = 64, open_files = 256, processes = 64 }
//! scratch_root = "/tmp/rampart-scratch"
//! scratch_idle_s = 3600
//! read_only_paths = []
//! ```
//!
//! The layers of a run, outermost first (each in its module; the README's threat model
//! says what each stops and what it does not):
//!
//! - a new session and process group, and a reaper process that ends the whole tree
//!   (`spawn`);
//! - as `nobody` (65534) when the server is root, in new user, PID, network (unless
//!   `network = true`), IPC and mount namespaces, the last hiding `/run`, `/tmp`,
//!   `/var/tmp` and `/dev/shm` (the host's UNIX sockets) behind empty tmpfs (`spawn`,
//!   `sandbox`);
//! - rlimits on CPU time, address space, file size, open files and processes (`sandbox`);
//! - `no_new_privs`, then Landlock: system directories read-only, the scratch directory
//!   read-write, nothing else, no TCP without network (`confine`);
//! - a seccomp filter: no sockets but `AF_UNIX` without network, no ptrace, io_uring,
//!   namespaces, mounts, bpf, keyrings, kexec, modules (`filter`);
//! - an environment of `PATH`, `HOME`/`TMPDIR` (the scratch directory), `LANG` and the
//!   configured variables only; a wall-clock timeout; output capped per stream (`run`).
//!
//! The policy is asked (`Request::Command` with the program's or the language's name)
//! before anything runs. The scratch directory of an MCP session persists between its
//! calls and is deleted by [`ExecToolbox::end_session`] or after `scratch_idle_s` idle
//! (`scratch`). [`ExecToolbox::check_sandbox`] reports which layers the machine enforces
//! (a [`SandboxReport`] of each [`Layer`]); [`ExecToolbox::new`] (from an [`ExecConfig`])
//! and [`ExecToolbox::from_config`] (the `[exec]` table as JSON) refuse to start, with an
//! [`ExecConfigError`] naming the key, when a layer of `require` is missing.

mod config;
mod confine;
mod filter;
mod run;
mod sandbox;
mod scratch;
// The one module of Rampart allowed `unsafe` (the workspace denies it): the sandbox must
// make system calls between fork and exec (setsid, unshare, prctl, setrlimit, Landlock,
// seccomp), which std offers only through the unsafe `pre_exec` hook. Each block has a
// `// SAFETY:` comment; every other module, of this crate too, stays `unsafe`-free.
#[expect(unsafe_code, reason = "system calls between fork and exec through the pre_exec hook")]
mod spawn;
mod toolbox;

pub use config::{
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_SCRATCH_IDLE_S, DEFAULT_SCRATCH_ROOT, DEFAULT_TIMEOUT_S, ExecConfig,
    ExecConfigError, PRIVILEGE_TOOLS, ResourceLimits,
};
pub use sandbox::{Layer, SandboxReport, UNPRIVILEGED_ID};
pub use toolbox::ExecToolbox;
