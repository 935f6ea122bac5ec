//! The code that runs between `fork` and `exec`: the only `unsafe` of Rampart.
//!
//! Why a `pre_exec` hook rather than re-executing the server binary as a helper: the hook
//! keeps the sandbox a library (no hidden command in `rampart`'s CLI, nothing for a test
//! binary to wire up, no second parse of arguments that could be spoofed), and everything
//! that needs memory allocation — the Landlock ruleset, the seccomp BPF programs, the
//! uid/gid map lines, the environment — is prepared by the parent beforehand, so the
//! children only make system calls, which is what async-signal safety demands after
//! `fork` in a multi-threaded process.
//!
//! The shape of a run (`std` forks C1 and calls [`ChildSetup::enter`] in it):
//!
//! ```text
//! server ── C1 reaper: setsid; (std: setgroups/setgid/setuid to the sandbox user);
//!            │         unshare(user, pid, net, ipc, mount); uid/gid maps; tmpfs over
//!            │         /run, /tmp, …, the scratch directory bound back; rlimits; fork
//!            └─ C2 init: pid 1 of the new PID namespace, leader of its own process
//!                 │      group, PDEATHSIG=SIGKILL; reaps orphans; fork
//!                 └─ C3 program: pid 2; PDEATHSIG=SIGKILL; no_new_privs; Landlock;
//!                                seccomp; exec
//! ```
//!
//! C1 stays outside the new PID namespace (unshare moves only its children in), so C2 is
//! the namespace's init: when C2 exits or is killed the kernel kills every process left
//! in the namespace, whatever process group or session they made for themselves. The
//! program is not pid 1 itself because an init ignores the signals it sends itself
//! (`kill $$`). C2 exits as soon as the program does and hands its wait status to C1
//! through a pipe; C1 then exits as the program did, so the server sees the program's own
//! status. The server ends a run by sending SIGTERM to C1, which SIGKILLs C2's process
//! group and so the namespace; if C1 itself dies (SIGKILL, or its `alarm` backstop when
//! the server is gone), C2 dies of its parent-death signal, and the namespace with it.
//! Without namespaces the shape is the same; only the process group then ends the tree.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};

use seccompiler::BpfProgram;

/// Signals the reaper (C1) waits for: its child's exit, and requests to stop. Blocked in
/// C1 and C2, unblocked in C3 before exec.
const REAPER_SIGNALS: [libc::c_int; 5] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGALRM];

/// The size of the kernel's signal set (`_NSIG / 8`), which `rt_sigtimedwait` wants.
const KERNEL_SIGSET_SIZE: libc::size_t = 8;

/// One resource limit to set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rlimit {
    pub(crate) resource: libc::__rlimit_resource_t,
    pub(crate) soft: libc::rlim_t,
    pub(crate) hard: libc::rlim_t,
}

/// The uid and gid map lines written for the new user namespace (`"65534 65534 1\n"`).
#[derive(Debug, Clone)]
pub(crate) struct IdMaps {
    pub(crate) uid_map: Vec<u8>,
    pub(crate) gid_map: Vec<u8>,
}

/// What the run's mount namespace looks like: directories hidden behind an empty tmpfs
/// (where the host's UNIX sockets live), and what is mounted back inside them.
#[derive(Debug, Default)]
pub(crate) struct MountPlan {
    /// Directories to cover with an empty tmpfs.
    pub(crate) hide: Vec<CString>,
    /// Paths inside them to bind back (the scratch directory, …); at most
    /// [`MAX_REBINDS`].
    pub(crate) rebind: Vec<Rebind>,
    /// The working directory to enter again once the mounts are made.
    pub(crate) cwd: Option<CString>,
}

/// The most paths a plan binds back.
pub(crate) const MAX_REBINDS: usize = 4;

/// One path bound back, at its own place, inside a hidden directory.
#[derive(Debug)]
pub(crate) struct Rebind {
    /// The path.
    pub(crate) path: CString,
    /// Directories to make first inside the empty tmpfs, outermost first.
    pub(crate) directories: Vec<CString>,
    /// Whether `path` is a file (an empty file is made to mount on).
    pub(crate) file: bool,
}

/// Everything the children need, prepared by the parent so that they allocate nothing.
#[derive(Debug, Default)]
pub(crate) struct ChildSetup {
    /// `CLONE_NEW*` flags for `unshare`, with the maps to write; `None`: no namespaces.
    pub(crate) namespaces: Option<(libc::c_int, IdMaps)>,
    /// With `CLONE_NEWNS` in the flags: the mounts to make.
    pub(crate) mounts: MountPlan,
    pub(crate) rlimits: Vec<Rlimit>,
    /// A Landlock ruleset to enforce (its fd is close-on-exec).
    pub(crate) landlock: Option<OwnedFd>,
    /// Seccomp filters, installed in order (the kernel runs all; the strictest wins).
    pub(crate) seccomp: Vec<BpfProgram>,
    /// Seconds after which the reaper kills the run even if the server is gone; 0: never.
    pub(crate) backstop_s: libc::c_uint,
}

/// `Err(errno)` when a libc call returned -1.
fn check(result: libc::c_long) -> io::Result<()> {
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `prctl(option, argument, 0, 0, 0)`, every argument passed as the `unsigned long` the
/// kernel reads.
fn prctl(option: libc::c_int, argument: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only (none of the options used take pointers).
    check(unsafe { libc::prctl(option, argument, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) }.into())
}

/// A fork without libc: no atfork handlers, no libc locks, which is what async-signal
/// safety needs in a child of a multi-threaded process. With only SIGCHLD and no stack,
/// `clone` behaves exactly as `fork`. Returns 0 in the child, the child's pid in the parent.
fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: a fork-like clone; both sides go on with their own copy of this memory, and
    // the child only makes system calls until it execs or exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    check(pid)?;
    Ok(pid as libc::pid_t)
}

impl ChildSetup {
    /// Runs in C1, the child `std` forked, before it execs. Returns only in C3 (which
    /// then execs the program) or with an error (which `std` reports to the server).
    ///
    /// Only async-signal-safe system calls: no allocation, no locks. `io::Error`s made
    /// from an errno do not allocate.
    pub(crate) fn enter(&self) -> io::Result<()> {
        // The server's handlers for these (tokio's) would write to the server's own signal
        // pipe, still open here: an early signal must not look like one to the server.
        for signal in REAPER_SIGNALS {
            // SAFETY: resets a disposition; no handler of ours is involved.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        // SAFETY: setsid has no memory effects; C1 is not a group leader after fork.
        check(unsafe { libc::setsid() }.into())?;
        if let Some((flags, maps)) = &self.namespaces {
            enter_namespaces(*flags, maps)?;
            if flags & libc::CLONE_NEWNS != 0 {
                mount_plan(&self.mounts)?;
            }
        }
        // The pipe on which C2 hands the program's wait status to C1.
        let mut status_pipe = [0; 2];
        // SAFETY: `status_pipe` has room for the two descriptors.
        check(unsafe { libc::pipe2(status_pipe.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) }.into())?;
        let [status_read, status_write] = status_pipe;
        // After every descriptor is made: the server's own may already use the numbers
        // below a low RLIMIT_NOFILE.
        for limit in &self.rlimits {
            let value = libc::rlimit { rlim_cur: limit.soft, rlim_max: limit.hard };
            // SAFETY: `value` is a valid rlimit for the duration of the call.
            check(unsafe { libc::setrlimit(limit.resource, &value) }.into())?;
        }
        let signals = reaper_signal_set();
        // Blocked before the fork so that no SIGCHLD can be lost: C1 takes them with
        // rt_sigtimedwait; C3 unblocks them before exec.
        // SAFETY: `signals` is an initialised set; the old mask is not wanted.
        check(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) }.into())?;
        match fork()? {
            0 => {
                close(status_read);
                self.init(status_write)
            }
            init => reap(init, status_read, &signals, self.backstop_s),
        }
    }

    /// C2: the init of the PID namespace. Forks the program and waits for it.
    fn init(&self, status_write: libc::c_int) -> io::Result<()> {
        prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)?;
        // SAFETY: setpgid on ourselves; no memory effects.
        check(unsafe { libc::setpgid(0, 0) }.into())?;
        match fork()? {
            0 => {
                close(status_write);
                self.confine()
            }
            program => init_loop(program, status_write),
        }
    }

    /// C3, just before exec: tie its life to C2's, restore the signal mask, then
    /// no_new_privs, Landlock and seccomp, in that order (the seccomp filter denies
    /// nothing the steps before it need).
    fn confine(&self) -> io::Result<()> {
        prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)?;
        let empty = empty_signal_set();
        // SAFETY: `empty` is an initialised set; the old mask is not wanted.
        check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) }.into())?;
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1)?;
        if let Some(ruleset) = &self.landlock {
            // SAFETY: landlock_restrict_self takes a ruleset fd (open: owned by `self`) and flags.
            check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) })?;
        }
        for program in &self.seccomp {
            // Safe code: prctl and seccomp(2) on a borrowed program, no allocation.
            seccompiler::apply_filter(program).map_err(|error| match error {
                seccompiler::Error::Prctl(error) | seccompiler::Error::Seccomp(error) => error,
                _ => io::Error::from_raw_os_error(libc::EINVAL),
            })?;
        }
        close_on_exec_from(3);
        Ok(())
    }
}

/// Makes the new user (and PID, network, IPC) namespaces and maps the current uid and gid
/// to themselves inside, so the program is neither root there nor unmapped.
fn enter_namespaces(flags: libc::c_int, maps: &IdMaps) -> io::Result<()> {
    // Changing uid (std did, before this hook) clears the dumpable flag, which makes
    // /proc/self/* root-owned and the map files unwritable by us; set it for the writes.
    prctl(libc::PR_SET_DUMPABLE, 1)?;
    // SAFETY: unshare with flags only; C1 is single-threaded, as CLONE_NEWUSER requires.
    check(unsafe { libc::unshare(flags) }.into())?;
    write_file(c"/proc/self/setgroups", b"deny")?;
    write_file(c"/proc/self/uid_map", &maps.uid_map)?;
    write_file(c"/proc/self/gid_map", &maps.gid_map)?;
    prctl(libc::PR_SET_DUMPABLE, 0)
}

/// Makes the mounts of `plan` in the new mount namespace: private propagation (nothing
/// reaches the host), empty tmpfs over the hidden directories, the binds back, and the
/// working directory entered again through them.
///
/// What is bound back is opened before it is hidden, in this namespace (a bind mount's
/// source must belong to the caller's mount namespace, so the parent cannot open it),
/// and named by its `/proc/self/fd` link.
fn mount_plan(plan: &MountPlan) -> io::Result<()> {
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: NUL-terminated strings and null pointers, as mount(2) accepts.
    check(unsafe { libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) }.into())?;
    let mut sources = [-1; MAX_REBINDS];
    for (rebind, source) in plan.rebind.iter().zip(sources.iter_mut()) {
        let directory = if rebind.file { 0 } else { libc::O_DIRECTORY };
        // SAFETY: a NUL-terminated path.
        *source = unsafe { libc::open(rebind.path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | directory) };
        check((*source).into())?;
    }
    for directory in &plan.hide {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // SAFETY: NUL-terminated strings, as mount(2) expects.
        let mounted = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                directory.as_ptr(),
                c"tmpfs".as_ptr(),
                flags,
                c"size=64k,mode=755".as_ptr().cast(),
            )
        };
        check(mounted.into())?;
    }
    for (rebind, source) in plan.rebind.iter().zip(sources) {
        bind_back(rebind, source)?;
    }
    if let Some(cwd) = &plan.cwd {
        // SAFETY: a NUL-terminated path.
        check(unsafe { libc::chdir(cwd.as_ptr()) }.into())?;
    }
    Ok(())
}

/// Binds the open `source` at `rebind.path`, making the mount point first.
fn bind_back(rebind: &Rebind, source: libc::c_int) -> io::Result<()> {
    for directory in &rebind.directories {
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::mkdir(directory.as_ptr(), 0o755) } == -1
            && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
        {
            return Err(io::Error::last_os_error());
        }
    }
    if rebind.file {
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path; the descriptor is closed at once.
        let fd = unsafe { libc::open(rebind.path.as_ptr(), flags, 0o644 as libc::c_uint) };
        check(fd.into())?;
        close(fd);
    }
    let mut link = [0u8; 32];
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: `fd_link` returns a NUL-terminated string in `link`; null pointers and
    // flags as mount(2) accepts.
    let bound = unsafe {
        libc::mount(
            fd_link(source, &mut link),
            rebind.path.as_ptr(),
            none,
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    };
    close(source);
    check(bound.into())
}

/// `/proc/self/fd/<fd>` as a C string in `buffer`, without allocating.
fn fd_link(fd: libc::c_int, buffer: &mut [u8; 32]) -> *const libc::c_char {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buffer[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut value = fd.unsigned_abs();
    let mut count = 0;
    loop {
        digits[count] = b'0' + (value % 10) as u8;
        count += 1;
        value /= 10;
        if value == 0 || count == digits.len() {
            break;
        }
    }
    for (index, digit) in digits[..count].iter().rev().enumerate() {
        buffer[PREFIX.len() + index] = *digit;
    }
    buffer[PREFIX.len() + count] = 0;
    buffer.as_ptr().cast()
}

/// Writes `bytes` to the file at `path` with open/write/close.
fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    check(fd.into())?;
    // SAFETY: `bytes` is valid for `bytes.len()` bytes; `fd` is open.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    let result = if written == bytes.len() as isize { Ok(()) } else { Err(io::Error::last_os_error()) };
    close(fd);
    result
}

fn close(fd: libc::c_int) {
    // SAFETY: closes a descriptor this code opened; errors are of no consequence.
    unsafe { libc::close(fd) };
}

/// Closes every descriptor but `keep`, so that nothing of the server stays open in C1
/// and C2: std's error pipe must reach end of file when C3 execs, and the output pipes
/// when the program's tree is gone.
fn close_all_but(keep: libc::c_int) {
    let keep = keep as libc::c_uint;
    let ranges = [(0, keep.saturating_sub(1)), (keep + 1, libc::c_uint::MAX)];
    for (first, last) in ranges {
        if first > last || (first == 0 && keep == 0) {
            continue;
        }
        // SAFETY: close_range with integer arguments only.
        if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) } != 0 {
            // Kernels before 5.9: one close per possible descriptor.
            for fd in first..last.min(65_536) {
                close(fd as libc::c_int);
            }
        }
    }
}

fn empty_signal_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

fn reaper_signal_set() -> libc::sigset_t {
    let mut set = empty_signal_set();
    for signal in REAPER_SIGNALS {
        // SAFETY: `set` is initialised; the signals are valid.
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    set
}

/// Marks every descriptor from `first` on close-on-exec, so nothing the server opened
/// without `O_CLOEXEC` reaches the program (std's error pipe stays usable until exec).
fn close_on_exec_from(first: libc::c_uint) {
    // SAFETY: close_range with integer arguments only.
    let marked = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if marked == 0 {
        return;
    }
    // Kernels before 5.11: one fcntl per possible descriptor.
    for fd in first..65_536 {
        // SAFETY: fcntl on a descriptor number; EBADF for closed ones is ignored.
        unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// C2's life after forking the program: reap every child (orphans of the namespace come
/// to its init) until the program exits, hand its status to C1, exit. The kernel then
/// kills whatever is left in the namespace.
fn init_loop(program: libc::pid_t, status_write: libc::c_int) -> ! {
    close_all_but(status_write);
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let reaped = unsafe { libc::waitpid(-1, &mut status, 0) };
        if reaped == program {
            let bytes = status.to_ne_bytes();
            // SAFETY: `bytes` is valid for its length; the pipe has room for 4 bytes.
            unsafe { libc::write(status_write, bytes.as_ptr().cast(), bytes.len()) };
            // SAFETY: _exit never returns and runs no destructors, as a forked child must.
            unsafe { libc::_exit(0) }
        }
        if reaped == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // SAFETY: as above.
            unsafe { libc::_exit(127) }
        }
    }
}

/// C1's life after forking C2: wait for C2 (or a request to stop, or the backstop
/// alarm), kill what is left of C2's process group, reap C2 and exit as the program did.
fn reap(init: libc::pid_t, status_read: libc::c_int, signals: &libc::sigset_t, backstop_s: libc::c_uint) -> ! {
    close_all_but(status_read);
    if backstop_s > 0 {
        // SAFETY: alarm has no memory effects; SIGALRM is blocked and taken below.
        unsafe { libc::alarm(backstop_s) };
    }
    loop {
        // SAFETY: `signals` is an initialised set; no siginfo or timeout is wanted.
        let signal = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                signals as *const libc::sigset_t,
                std::ptr::null_mut::<libc::siginfo_t>(),
                std::ptr::null::<libc::timespec>(),
                KERNEL_SIGSET_SIZE,
            )
        } as libc::c_int;
        if signal == libc::SIGCHLD && has_exited(init) {
            break;
        }
        if matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGALRM) {
            // SAFETY: kill has no memory effects; C2 is unreaped, so its pgid is not reused.
            unsafe { libc::kill(-init, libc::SIGKILL) };
        }
    }
    // Stragglers in C2's group (without a PID namespace nothing else ends them).
    // SAFETY: as above; C2 is a zombie until reaped below.
    unsafe { libc::kill(-init, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    while unsafe { libc::waitpid(init, &mut status, 0) } == -1
        && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    let mut program_status = [0u8; 4];
    // SAFETY: `program_status` has room for 4 bytes; the pipe is non-blocking.
    let read = unsafe { libc::read(status_read, program_status.as_mut_ptr().cast(), program_status.len()) };
    // C2 reports the program's status; if C2 was killed first, C2's own death is the answer.
    exit_like(if read == 4 { libc::c_int::from_ne_bytes(program_status) } else { status })
}

/// Whether `child` has exited, without reaping it.
fn has_exited(child: libc::pid_t) -> bool {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a valid, zeroed out-pointer; WNOWAIT leaves the child unreaped.
    let result = unsafe {
        libc::waitid(libc::P_PID, child as libc::id_t, info.as_mut_ptr(), libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
    };
    // SAFETY: zeroed, then filled by waitid; si_pid stays 0 if nothing exited.
    result == 0 && unsafe { info.assume_init().si_pid() } == child
}

/// Exits with the program's exit code, or dies of its signal.
fn exit_like(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let mut set = empty_signal_set();
        // SAFETY: default disposition for `signal`, then unblock and raise it on
        // ourselves: the server sees the program's signal as ours. No core: RLIMIT_CORE
        // is 0 and C1 is not dumpable.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal)
        }
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 127 };
    // SAFETY: _exit never returns and runs no destructors, as a forked child must.
    unsafe { libc::_exit(code) }
}

/// Installs `setup` as `command`'s pre-exec hook.
pub(crate) fn install(command: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec and makes only
    // async-signal-safe system calls on memory prepared before the fork (see
    // `ChildSetup::enter`); it allocates nothing and takes no lock.
    unsafe { command.pre_exec(move || setup.enter()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_links_are_spelled_without_allocating() {
        for (fd, expected) in
            [(0, c"/proc/self/fd/0"), (7, c"/proc/self/fd/7"), (1234567890, c"/proc/self/fd/1234567890")]
        {
            let mut buffer = [0u8; 32];
            let link = fd_link(fd, &mut buffer);
            // SAFETY: `fd_link` wrote a NUL-terminated string into `buffer`.
            assert_eq!(unsafe { std::ffi::CStr::from_ptr(link) }, expected);
        }
    }
}
