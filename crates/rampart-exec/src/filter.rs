//! The seccomp layer: BPF programs built once, in the parent, with seccompiler, and
//! installed by the child just before exec.
//!
//! A deny list, not an allow list: the programs are arbitrary (compilers, interpreters,
//! git), so the filter removes the kernel interfaces a sandboxed program has no business
//! with and that have a history of escapes, and leaves the rest to Landlock, the
//! namespaces and the rlimits. Three programs, stacked (the kernel runs all and the
//! strictest answer wins):
//!
//! 1. `EPERM` for: sockets other than `AF_UNIX` (plus `AF_INET`, `AF_INET6` and
//!    `AF_NETLINK` when the network is allowed); ptrace and cross-process memory access;
//!    io_uring; namespace creation and entry (`unshare`, `setns`, `clone` with a
//!    `CLONE_NEW*` flag); mounts and the new mount API; kexec, reboot, kernel modules,
//!    swap, `syslog`, `acct`, quotas; bpf, perf events, userfaultfd; keyrings; file handles
//!    (`open_by_handle_at`, the "shocker" escape); terminal injection (`TIOCSTI`,
//!    `TIOCLINUX`); `chroot`, `pivot_root`. Any other architecture's system calls (i386
//!    through `int 0x80`) kill the process: seccompiler checks the architecture first.
//! 2. `ENOSYS` for `clone3`, whose flags sit behind a pointer a filter cannot read: libc
//!    then falls back to `clone`, which program 1 checks.
//! 3. On x86_64, killing the process for x32 system calls (numbers with bit 30 set),
//!    which share the x86_64 audit architecture and would otherwise slip past the deny
//!    list.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

/// Why the filters could not be built (an unsupported architecture, a seccompiler bug).
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter: {0}")]
pub(crate) struct FilterError(String);

impl From<seccompiler::Error> for FilterError {
    fn from(error: seccompiler::Error) -> Self {
        Self(error.to_string())
    }
}

impl From<seccompiler::BackendError> for FilterError {
    fn from(error: seccompiler::BackendError) -> Self {
        Self(error.to_string())
    }
}

/// System calls refused whatever their arguments.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_process_madvise,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_move_pages,
    libc::SYS_migrate_pages,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
];

/// `CLONE_NEW*` flags: a `clone` with any of them is refused.
/// (`CLONE_NEWTIME` exists only for `unshare` and `clone3`, both refused whole.)
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// The three programs described in the module docs, for this machine's architecture.
pub(crate) fn programs(network: bool) -> Result<Vec<BpfProgram>, FilterError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let mut programs = vec![deny_list(arch, network)?, clone3(arch)?];
    if cfg!(target_arch = "x86_64") {
        programs.push(no_x32());
    }
    Ok(programs)
}

fn condition(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, FilterError> {
    Ok(SeccompCondition::new(arg, len, op, value)?)
}

fn deny_list(arch: TargetArch, network: bool) -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|nr| (*nr, Vec::new())).collect();
    // socket(domain, …): refused unless the domain is allowed (one rule: all "≠" hold).
    let allowed: &[libc::c_int] =
        if network { &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK] } else { &[libc::AF_UNIX] };
    let not_allowed = allowed
        .iter()
        .map(|family| condition(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *family as u64))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_socket, vec![SeccompRule::new(not_allowed)?]);
    // clone(flags, …) with any CLONE_NEW* flag: one rule per flag (any rule matches).
    let clone = NAMESPACE_FLAGS
        .iter()
        .map(|flag| {
            let bit = *flag as u64;
            Ok(SeccompRule::new(vec![condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(bit), bit)?])?)
        })
        .collect::<Result<Vec<_>, FilterError>>()?;
    rules.insert(libc::SYS_clone, clone);
    // ioctl(fd, TIOCSTI | TIOCLINUX): typing into a terminal. The kernel reads the
    // request as 32 bits.
    let requests: [u64; 2] = [libc::TIOCSTI, libc::TIOCLINUX];
    let ioctl = requests
        .iter()
        .map(|request| Ok(SeccompRule::new(vec![condition(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *request)?])?))
        .collect::<Result<Vec<_>, FilterError>>()?;
    rules.insert(libc::SYS_ioctl, ioctl);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)?;
    Ok(filter.try_into()?)
}

fn clone3(arch: TargetArch) -> Result<BpfProgram, FilterError> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch)?;
    Ok(filter.try_into()?)
}

/// Kills the process for any system call number with the x32 bit (`__X32_SYSCALL_BIT`).
fn no_x32() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let statement = |code, k| sock_filter { code, jt: 0, jf: 0, k };
    vec![
        statement(LD_W_ABS, 0), // seccomp_data.nr
        sock_filter { code: JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
        statement(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        statement(RET_K, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_programs_build_for_this_machine() {
        for network in [false, true] {
            let programs = programs(network).unwrap();
            assert!(programs.len() >= 2);
            assert!(programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
        }
    }
}
