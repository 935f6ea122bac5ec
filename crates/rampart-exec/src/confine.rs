//! The Landlock layer: which paths a run may touch, as a ruleset built by the parent (it
//! opens every path) and enforced by the child just before exec.
//!
//! - The system directories (`/usr`, `/lib*`, `/bin`, `/sbin`), a few files of `/etc`
//!   that programs need to start (the loader's cache, `passwd`/`group`, time zone,
//!   name-service and certificate files, Python's site configuration), the configured
//!   programs and `exec.read_only_paths`: read and execute.
//! - `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`: read and write.
//! - The run's scratch directory: everything.
//! - Nothing else: not `/home`, `/root`, `/tmp`, `/proc`, `/sys`, other sessions' scratch
//!   directories, the rest of `/etc` or `/dev`.
//!
//! With Landlock ABI 4 and no network, TCP `bind` and `connect` are handled with no rule,
//! so refused; with ABI 6, the run is scoped: it cannot signal processes outside its own
//! domain (the server, its reaper) nor connect to abstract UNIX sockets made outside it.
//! Rights the kernel does not know are dropped (Landlock's best-effort mode): the ABI is
//! in the sandbox report, and `exec.require = ["landlock"]` refuses kernels without any.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetError, Scope,
};

/// The ABI whose rights are asked for; the kernel's own, when older, wins.
const TARGET_ABI: ABI = ABI::V9;

/// Read-only, executable system directories.
const SYSTEM_DIRECTORIES: [&str; 7] = ["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"];

/// What of `/etc` a program may read.
const ETC_ENTRIES: [&str; 20] = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/mime.types",
    "/etc/locale.alias",
    "/etc/inputrc",
    "/etc/alternatives",
];

/// Devices a program may read and write.
const DEVICES: [&str; 5] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// The paths of every run, gathered once when the toolbox starts.
#[derive(Debug, Clone)]
pub(crate) struct PathRules {
    read_only: Vec<PathBuf>,
    devices: Vec<PathBuf>,
    network: bool,
}

impl PathRules {
    /// The system paths, Python's `/etc/python*` directories, `extra` (configured programs
    /// and read-only paths); only those that exist.
    pub(crate) fn new(extra: impl IntoIterator<Item = PathBuf>, network: bool) -> Self {
        let mut read_only: Vec<PathBuf> = SYSTEM_DIRECTORIES.iter().chain(&ETC_ENTRIES).map(PathBuf::from).collect();
        if let Ok(entries) = std::fs::read_dir("/etc") {
            let python = entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("python"));
            read_only.extend(python.map(|e| e.path()));
        }
        read_only.extend(extra);
        read_only.retain(|path| path.exists());
        read_only.sort();
        read_only.dedup();
        let devices = DEVICES.iter().map(PathBuf::from).filter(|path| path.exists()).collect();
        Self { read_only, devices, network }
    }

    /// The ruleset for a run whose scratch directory is `scratch`; `None` when the kernel
    /// has no Landlock.
    pub(crate) fn ruleset(&self, scratch: &Path) -> Result<Option<OwnedFd>, RulesetError> {
        let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(TARGET_ABI))?;
        if !self.network {
            ruleset = ruleset.handle_access(AccessNet::from_all(TARGET_ABI))?;
        }
        let mut created = ruleset.scope(Scope::from_all(TARGET_ABI))?.create()?;
        let read = AccessFs::from_read(TARGET_ABI);
        for path in &self.read_only {
            created = add(created, path, read)?;
        }
        let device = AccessFs::ReadFile | AccessFs::WriteFile;
        for path in &self.devices {
            created = add(created, path, device)?;
        }
        created = add(created, scratch, AccessFs::from_all(TARGET_ABI))?;
        Ok(created.into())
    }
}

/// Adds a rule for `path` (skipped if it vanished since start-up); rights that do not
/// apply to a file are dropped for files.
fn add(
    created: landlock::RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
) -> Result<landlock::RulesetCreated, RulesetError> {
    match PathFd::new(path) {
        Ok(fd) => created.add_rule(PathBeneath::new(fd, access)),
        Err(_) => Ok(created),
    }
}

/// The Landlock ABI of the running kernel: the number the kernel reports, or `None`
/// without Landlock. Found by enforcing a harmless ruleset (no exec) on a short-lived
/// thread of our own, the one way the landlock crate reports the kernel's ABI; the
/// thread ends at once and nothing else of the process is restricted.
pub(crate) fn kernel_abi() -> Option<i32> {
    let probe = std::thread::spawn(|| {
        let status = Ruleset::default().handle_access(AccessFs::Execute).ok()?.create().ok()?.restrict_self().ok()?;
        match status.landlock {
            landlock::LandlockStatus::Available { effective_abi, kernel_abi } => {
                Some(kernel_abi.unwrap_or(effective_abi as i32))
            }
            _ => None,
        }
    });
    probe.join().ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cover_only_existing_paths() {
        let rules = PathRules::new([PathBuf::from("/nonexistent/tool")], false);
        assert!(rules.read_only.iter().all(|p| p.exists()));
        assert!(rules.read_only.contains(&PathBuf::from("/usr")));
        assert!(!rules.read_only.iter().any(|p| p.starts_with("/home") || p.starts_with("/root")));
    }
}
