//! The attacks the sandbox must stop, each against real sandboxed processes: writes and
//! reads outside the scratch directory, the server's environment, TCP and UDP out, fork
//! bombs, memory hogs, CPU loops, huge outputs and files, children that try to outlive
//! the call (background, `setsid`, double fork), signals aimed at the server or at other
//! processes of the sandbox's user, ptrace, io_uring, namespaces, mounts, and privilege
//! regained through setuid binaries. Each test checks the outcome (nothing written or
//! leaked, nothing left running) and, where it can, a positive control in the same run,
//! so that a broken sandbox or a broken test cannot pass by accident.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use rampart_core::{ToolError, Toolbox};
use rampart_exec::Layer;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{Fixture, SECRET, kill_all, marker, processes_with, scratch_of, survivors_after};

/// Everything under `dir`, with contents.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let contents = std::fs::read(&path).unwrap_or_default();
        found.push((path, contents));
    }
    found.sort();
    found
}

#[tokio::test]
async fn writes_outside_scratch_are_refused() {
    let f = Fixture::new();
    if !f.enforces(Layer::Landlock, "writes_outside_scratch_are_refused") {
        return;
    }
    let before = snapshot(&f.outside);
    let outside = f.outside.display();
    // Unique names in the shared, world-writable /tmp and /dev/shm.
    let escape = format!("rampart-exec-escape-{}", uuid::Uuid::new_v4().simple());
    let system = [std::path::Path::new("/tmp").join(&escape), std::path::Path::new("/dev/shm").join(&escape)];
    // `outside` is mode 0777 and the secret 0666: only the sandbox keeps the program out.
    let script = format!(
        "echo inside > ./inside.txt && echo wrote-inside; \
         echo pwned > {outside}/new.txt; echo pwned >> {outside}/secret.txt; \
         mkdir {outside}/dir; ln -s /etc/passwd {outside}/link; mv ./inside.txt {outside}/moved.txt; \
         echo pwned > {tmp}; echo pwned > {shm}; \
         echo pwned > {base}/new.txt; rm -f {outside}/secret.txt; true",
        base = f.base.display(),
        tmp = system[0].display(),
        shm = system[1].display(),
    );
    let result = f.sh(&script).await;
    let leaked: Vec<_> = system.iter().filter(|path| path.exists()).collect();
    for path in &leaked {
        std::fs::remove_file(path).unwrap();
    }
    assert!(result.stdout.contains("wrote-inside"), "positive control: scratch must be writable: {result:?}");
    assert_eq!(snapshot(&f.outside), before, "something changed outside scratch: {result:?}");
    assert!(!f.base.join("new.txt").exists());
    assert!(leaked.is_empty(), "wrote to a world-writable system directory: {leaked:?}");
    assert!(result.stderr.contains("ermission denied"), "refusals should be visible: {result:?}");
}

#[tokio::test]
async fn secrets_outside_allowed_paths_are_unreadable() {
    let f = Fixture::new();
    if !f.enforces(Layer::Landlock, "secrets_outside_allowed_paths_are_unreadable") {
        return;
    }
    let secret = f.outside.join("secret.txt");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let outside = f.outside.display();
    let script = format!(
        "cat /etc/passwd > /dev/null && echo read-system-file; \
         cat {outside}/secret.txt; ls {outside}; ls /root; cat /root/.bashrc; cat /etc/shadow; \
         cat /proc/1/environ; cat /proc/$PPID/environ; cat /proc/self/environ; ls /home; \
         head -c 100 /dev/vda; cat /sys/kernel/security/lsm; true"
    );
    let result = f.sh(&script).await;
    assert!(result.stdout.contains("read-system-file"), "positive control: /etc/passwd is readable: {result:?}");
    let all = format!("{}{}", result.stdout, result.stderr);
    assert!(!all.contains(SECRET), "the secret leaked: {all}");
    assert!(!result.stdout.lines().any(|l| l.trim() == "secret.txt"), "the outside directory was listed: {all}");
    assert!(!all.contains("CARGO"), "an environment leaked through /proc: {all}");
    assert!(!all.contains(".bashrc\n") && !all.contains("root:$") && !all.contains("root:*"), "{all}");
}

#[tokio::test]
async fn another_sessions_scratch_is_unreadable() {
    let f = Fixture::new();
    if !f.enforces(Layer::Landlock, "another_sessions_scratch_is_unreadable") {
        return;
    }
    let mine = scratch_of(&f, "alice").await;
    let wrote =
        f.run_in(Some("alice"), "sh", &["-c", &format!("echo {SECRET} > note.txt && chmod 644 note.txt")]).await;
    assert_eq!(wrote.exit_code, Some(0), "{wrote:?}");
    let path = mine.join("note.txt");
    let result =
        f.run_in(Some("mallory"), "sh", &["-c", &format!("cat {}; ls {}", path.display(), mine.display())]).await;
    assert!(!result.stdout.contains(SECRET), "{result:?}");
    assert!(!result.stdout.contains("note.txt"), "{result:?}");
}

#[tokio::test]
async fn the_servers_environment_is_not_visible() {
    // The test process stands for the server: its whole environment (cargo's variables,
    // HOME=/root, its PATH) must be absent, and only the documented variables present.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "cargo sets this for tests");
    let f = Fixture::with(|config| config["env"] = json!({ "RAMPART_EXTRA": "configured" }));
    let result = f.run("env", &[]).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    let mut names: Vec<&str> = result.stdout.lines().filter_map(|line| line.split_once('=')).map(|(k, _)| k).collect();
    names.sort_unstable();
    assert_eq!(names, ["HOME", "LANG", "PATH", "RAMPART_EXTRA", "TMPDIR"], "{}", result.stdout);
    let home = result.stdout.lines().find_map(|l| l.strip_prefix("HOME=")).unwrap();
    assert!(home.starts_with(f.scratch_root.to_str().unwrap()), "HOME is the scratch dir: {home}");
    assert!(!result.stdout.contains("CARGO"), "{}", result.stdout);
}

#[tokio::test]
async fn tcp_to_loopback_fails_without_network() {
    let f = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\ntry:\n s=socket.create_connection(('127.0.0.1',{port}),timeout=3)\n s.sendall(b'x')\n print('CONNECTED')\nexcept OSError as e:\n print('refused', e)"
    );
    let result = f.python(&code).await;
    assert!(!result.stdout.contains("CONNECTED"), "{result:?}");
    assert!(result.stdout.contains("refused"), "{result:?}");
    assert!(listener.accept().is_err(), "the listener got a connection from the sandbox");
}

#[tokio::test]
async fn udp_to_loopback_fails_without_network() {
    let f = Fixture::new();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let port = socket.local_addr().unwrap().port();
    let code = format!(
        "import socket\ntry:\n s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n s.sendto(b'leak',('127.0.0.1',{port}))\n print('SENT')\nexcept OSError as e:\n print('refused', e)"
    );
    let result = f.python(&code).await;
    assert!(!result.stdout.contains("SENT"), "{result:?}");
    let mut buffer = [0u8; 16];
    assert!(socket.recv_from(&mut buffer).is_err(), "a datagram from the sandbox arrived");
}

#[tokio::test]
async fn raw_and_netlink_sockets_are_refused_but_unix_sockets_work() {
    let f = Fixture::new();
    if !f.enforces(Layer::Seccomp, "raw_and_netlink_sockets_are_refused_but_unix_sockets_work") {
        return;
    }
    let code = concat!(
        "import socket\n",
        "kinds = [(socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_DGRAM),\n",
        "         (socket.AF_NETLINK, socket.SOCK_RAW), (socket.AF_PACKET, socket.SOCK_RAW)]\n",
        "for family, kind in kinds:\n",
        "    try:\n",
        "        socket.socket(family, kind)\n",
        "        print('OPENED', family)\n",
        "    except OSError as e:\n",
        "        print('refused', family, e.errno)\n",
        "a, b = socket.socketpair()\n",
        "a.sendall(b'ok')\n",
        "print('unix', b.recv(2).decode())\n",
    );
    let result = f.python(code).await;
    assert!(!result.stdout.contains("OPENED"), "{result:?}");
    assert!(result.stdout.contains("unix ok"), "positive control: AF_UNIX works: {result:?}");
}

#[tokio::test]
async fn host_unix_sockets_are_unreachable() {
    // Pathname UNIX sockets are outside the network namespace's reach and, before
    // Landlock ABI 9, outside Landlock's: a session bus, an ssh-agent, a database socket
    // would let a program act outside the sandbox. The mount namespace hides the
    // directories they live in.
    let f = Fixture::new();
    if !f.report.namespaces && f.report.landlock_abi.is_none_or(|abi| abi < 9) {
        eprintln!("SKIPPED host_unix_sockets_are_unreachable: needs the namespaces layer or Landlock ABI 9");
        return;
    }
    let name = format!("rampart-sock-{}", uuid::Uuid::new_v4().simple());
    let mut places = vec![std::path::Path::new("/tmp").join(&name), std::path::Path::new("/dev/shm").join(&name)];
    if nix::unistd::access("/run", nix::unistd::AccessFlags::W_OK).is_ok() {
        places.push(std::path::Path::new("/run").join(&name));
    }
    let listeners: Vec<UnixListener> = places
        .iter()
        .map(|path| {
            let listener = UnixListener::bind(path).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
            listener.set_nonblocking(true).unwrap();
            listener
        })
        .collect();
    let targets: Vec<String> = places.iter().map(|p| format!("'{}'", p.display())).collect();
    let code = format!(
        "import socket\n\
for path in [{}]:\n    s = socket.socket(socket.AF_UNIX)\n    try:\n        s.connect(path)\n        print('CONNECTED', path)\n    except OSError as e:\n        print('refused', path, e)\n\
server = socket.socket(socket.AF_UNIX)\nserver.bind('own.sock')\nserver.listen()\n\
client = socket.socket(socket.AF_UNIX)\nclient.connect('own.sock')\nprint('own socket ok')\n",
        targets.join(", ")
    );
    let result = f.python(&code).await;
    for path in &places {
        let _ = std::fs::remove_file(path);
    }
    assert!(!result.stdout.contains("CONNECTED"), "{result:?}");
    assert!(result.stdout.contains("own socket ok"), "positive control: sockets in scratch work: {result:?}");
    for listener in &listeners {
        assert!(listener.accept().is_err(), "a host socket got a connection from the sandbox");
    }
}

#[tokio::test]
async fn tcp_works_when_the_network_is_allowed() {
    // The positive control of the two tests above: the same attempt succeeds with
    // `network = true`, so they fail because of the sandbox, not because of the test.
    let f = Fixture::with(|config| config["network"] = json!(true));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 1];
        stream.read_exact(&mut buffer).unwrap();
        buffer[0]
    });
    let code = format!(
        "import socket\ns=socket.create_connection(('127.0.0.1',{port}),timeout=5)\ns.sendall(b'x')\nprint('CONNECTED')"
    );
    let result = f.python(&code).await;
    assert!(result.stdout.contains("CONNECTED"), "{result:?}");
    assert_eq!(accept.join().unwrap(), b'x');
}

#[tokio::test]
async fn the_process_limit_bounds_forks() {
    let f = Fixture::with(|config| config["limits"]["processes"] = json!(16));
    let mark = marker();
    // Forks sleepers until the kernel refuses, then reports how many it got.
    let code = format!(
        "import os,sys\nn=0\nfor i in range(200):\n  try:\n    pid=os.fork()\n  except OSError:\n    break\n  if pid==0:\n    os.execv('/bin/sleep',['sleep','30','{mark}'])\n  n+=1\nprint('forked',n)"
    );
    let result = f.python(&code).await;
    let forked: u32 =
        result.stdout.trim().strip_prefix("forked ").unwrap_or_else(|| panic!("{result:?}")).parse().unwrap();
    assert!(forked < 16, "forked {forked} children under a limit of 16 processes");
    let left = survivors_after(&mark, Duration::from_secs(5)).await;
    kill_all(&left);
    assert!(left.is_empty(), "sleepers outlived the command: {left:?}");
}

#[tokio::test]
async fn a_fork_bomb_ends_at_the_timeout_and_leaves_nothing() {
    let f = Fixture::with(|config| config["limits"]["processes"] = json!(24));
    let mark = marker();
    let code = format!("import os\n# {mark}\nwhile True:\n  try:\n    os.fork()\n  except OSError:\n    pass");
    let started = Instant::now();
    let result = f.python_with(&code, json!({ "timeout_s": 2 })).await;
    assert!(result.timed_out, "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    let left = survivors_after(&mark, Duration::from_secs(5)).await;
    kill_all(&left);
    assert!(left.is_empty(), "fork bomb processes survived: {left:?}");
    // The machine still forks.
    assert!(std::process::Command::new("/bin/true").status().unwrap().success());
}

#[tokio::test]
async fn a_memory_hog_hits_the_address_space_limit() {
    let f = Fixture::with(|config| config["limits"]["memory_mb"] = json!(256));
    let result = f.python("b = bytearray(1024 * 1024 * 1024)\nprint('ALLOCATED', len(b))").await;
    assert!(!result.stdout.contains("ALLOCATED"), "{result:?}");
    assert!(result.stderr.contains("MemoryError"), "{result:?}");
    assert_ne!(result.exit_code, Some(0));
}

#[tokio::test]
async fn a_cpu_loop_is_stopped_by_the_cpu_limit() {
    let f = Fixture::with(|config| config["limits"]["cpu_s"] = json!(1));
    let started = Instant::now();
    let result = f.python("while True:\n  pass").await;
    assert!(!result.timed_out, "the CPU limit, not the 30 s timeout, must stop it: {result:?}");
    // SIGXCPU at the soft limit, SIGKILL at the hard one.
    assert!(matches!(result.signal, Some(24 | 9)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_sleeper_is_stopped_by_the_wall_clock_timeout() {
    let f = Fixture::new();
    let started = Instant::now();
    let result = f.python_with("import time\ntime.sleep(100)", json!({ "timeout_s": 1 })).await;
    assert!(result.timed_out, "{result:?}");
    assert!(result.duration_ms >= 1000, "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn huge_output_is_capped_with_a_visible_mark() {
    let f = Fixture::with(|config| config["max_output_bytes"] = json!(10_000));
    let total = 5 * 1024 * 1024;
    let code = format!("import sys\nsys.stdout.write('x' * {total})\nsys.stderr.write('e' * 20000)");
    let result = f.python(&code).await;
    assert_eq!(result.exit_code, Some(0), "{}", result.stderr);
    assert!(result.stdout_truncated && result.stderr_truncated);
    let mark = format!("…[truncated {} bytes]", total - 10_000);
    assert!(result.stdout.ends_with(&mark), "{}", &result.stdout[result.stdout.len().saturating_sub(80)..]);
    assert!(result.stdout.len() <= 10_000 + 100);
    assert!(result.stderr.ends_with("…[truncated 10000 bytes]"), "{}", result.stderr.len());
}

#[tokio::test]
async fn endless_output_is_capped_and_stopped_by_the_timeout() {
    let f = Fixture::with(|config| config["max_output_bytes"] = json!(4096));
    let result =
        f.call("run_command", json!({ "program": "sh", "args": ["-c", "yes"], "timeout_s": 1 })).await.unwrap();
    let result = crate::common::result(&result);
    assert!(result.timed_out && result.stdout_truncated, "{result:?}");
    assert!(result.stdout.len() < 4096 + 100);
}

#[tokio::test]
async fn the_file_size_limit_stops_big_files() {
    let f = Fixture::with(|config| config["limits"]["file_size_mb"] = json!(1));
    let session = "files";
    let result = f.run_in(Some(session), "sh", &["-c", "head -c 5000000 /dev/zero > big; echo status $?"]).await;
    let scratch = scratch_of(&f, session).await;
    let size = std::fs::metadata(scratch.join("big")).map(|m| m.len()).unwrap_or(0);
    assert!(size <= 1024 * 1024, "wrote {size} bytes: {result:?}");
}

#[tokio::test]
async fn background_children_die_with_the_command() {
    let f = Fixture::new();
    let mark = marker();
    let script = format!("python3 -c 'import time; time.sleep(60)' {mark} > /dev/null 2>&1 & echo started");
    let result = f.sh(&script).await;
    assert!(result.stdout.contains("started"), "{result:?}");
    let left = survivors_after(&mark, Duration::from_secs(3)).await;
    kill_all(&left);
    assert!(left.is_empty(), "a background child outlived the command: {left:?}");
}

/// A double fork whose grandchild calls setsid, leaving the command's process group and
/// session, then sleeps with `mark` in its command line.
fn escaping_sleeper(mark: &str, then_sleep: bool) -> String {
    let tail = if then_sleep { "time.sleep(100)" } else { "pass" };
    format!(
        "import os,sys,time\n\
if os.fork()==0:\n  os.setsid()\n  if os.fork()==0:\n    for fd in (0,1,2): os.close(fd)\n    os.execv('/usr/bin/python3',['python3','-c','import time; time.sleep(60)','{mark}'])\n  os._exit(0)\n\
time.sleep(0.5)\nprint('escaped')\nsys.stdout.flush()\n{tail}"
    )
}

#[tokio::test]
async fn setsid_double_fork_children_die_at_the_timeout() {
    let f = Fixture::new();
    if !f.enforces(Layer::Namespaces, "setsid_double_fork_children_die_at_the_timeout") {
        return;
    }
    let mark = marker();
    let result = f.python_with(&escaping_sleeper(&mark, true), json!({ "timeout_s": 2 })).await;
    assert!(result.timed_out && result.stdout.contains("escaped"), "{result:?}");
    let left = survivors_after(&mark, Duration::from_secs(3)).await;
    kill_all(&left);
    assert!(left.is_empty(), "a setsid grandchild survived the timeout: {left:?}");
}

#[tokio::test]
async fn setsid_double_fork_children_die_when_the_command_exits() {
    let f = Fixture::new();
    if !f.enforces(Layer::Namespaces, "setsid_double_fork_children_die_when_the_command_exits") {
        return;
    }
    let mark = marker();
    let result = f.python(&escaping_sleeper(&mark, false)).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    let left = survivors_after(&mark, Duration::from_secs(3)).await;
    kill_all(&left);
    assert!(left.is_empty(), "a setsid grandchild outlived the command: {left:?}");
}

#[tokio::test]
async fn cancellation_kills_the_whole_tree() {
    let f = Fixture::new();
    let mark = marker();
    let token = CancellationToken::new();
    let context = f.context(None).with_cancellation(token.clone());
    let script =
        format!("python3 -c 'import time; time.sleep(60)' {mark} & python3 -c 'import time; time.sleep(60)' {mark}");
    let arguments = json!({ "program": "sh", "args": ["-c", script] });
    let serde_json::Value::Object(arguments) = arguments else { unreachable!() };
    let call = f.toolbox.call_tool("run_command", arguments, &context);
    let cancel = async {
        // Until both sleepers run.
        let deadline = Instant::now() + Duration::from_secs(10);
        while processes_with(&mark).len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        token.cancel();
    };
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(call, cancel);
    assert!(matches!(outcome, Err(ToolError::Cancelled)), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let left = survivors_after(&mark, Duration::from_secs(3)).await;
    kill_all(&left);
    assert!(left.is_empty(), "processes survived cancellation: {left:?}");
}

#[tokio::test]
async fn a_dropped_call_kills_the_whole_tree() {
    // The pipeline drops a call's future on cancellation and on its own timeout.
    let f = Fixture::new();
    let mark = marker();
    let script = format!("python3 -c 'import time; time.sleep(60)' {mark} & sleep 60");
    let call = f.call("run_command", json!({ "program": "sh", "args": ["-c", script] }));
    let dropped = tokio::time::timeout(Duration::from_secs(2), call).await;
    assert!(dropped.is_err(), "the call should still run: {dropped:?}");
    let left = survivors_after(&mark, Duration::from_secs(5)).await;
    kill_all(&left);
    assert!(left.is_empty(), "processes survived the dropped call: {left:?}");
}

#[tokio::test]
async fn signals_aimed_outside_the_sandbox_do_not_arrive() {
    let f = Fixture::new();
    if !f.enforces(Layer::Namespaces, "signals_aimed_outside_the_sandbox_do_not_arrive") {
        return;
    }
    // A process of the sandbox's own user outside the sandbox, and the test process itself.
    let mut victim = std::process::Command::new("/bin/sleep");
    victim.arg("30");
    if nix::unistd::geteuid().is_root() {
        victim.uid(65534).gid(65534);
    }
    let mut victim = victim.spawn().unwrap();
    let script = format!(
        "echo sent ; kill -9 {victim} ; kill -9 {me} ; kill -9 1 ; kill -9 -1 ; kill -9 $PPID ; sleep 1",
        victim = victim.id(),
        me = std::process::id()
    );
    let result = f.sh(&script).await;
    assert!(result.stdout.contains("sent"), "{result:?}");
    assert!(victim.try_wait().unwrap().is_none(), "the victim outside the sandbox was killed");
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[tokio::test]
async fn ptrace_is_denied() {
    let f = Fixture::new();
    if !f.enforces(Layer::Seccomp, "ptrace_is_denied") {
        return;
    }
    let code = "import ctypes,os,time\nlibc=ctypes.CDLL(None,use_errno=True)\n\
pid=os.fork()\nif pid==0:\n  time.sleep(5); os._exit(0)\n\
r=libc.ptrace(16,pid,0,0)\nprint('attach',r,ctypes.get_errno())\n\
r=libc.ptrace(0,0,0,0)\nprint('traceme',r,ctypes.get_errno())\nos.kill(pid,9)";
    let result = f.python(code).await;
    assert!(result.stdout.contains("attach -1 1\n"), "{result:?}");
    assert!(result.stdout.contains("traceme -1 1\n"), "{result:?}");
}

#[tokio::test]
async fn io_uring_namespaces_and_mounts_are_denied() {
    let f = Fixture::new();
    if !f.enforces(Layer::Seccomp, "io_uring_namespaces_and_mounts_are_denied") {
        return;
    }
    // io_uring_setup is 425 on x86_64 and aarch64; the others go through libc by name.
    let code = "import ctypes\nlibc=ctypes.CDLL(None,use_errno=True)\n\
p=ctypes.create_string_buffer(120)\nr=libc.syscall(425,8,p)\nprint('io_uring',r,ctypes.get_errno())\n\
r=libc.unshare(0x10000000)\nprint('unshare',r,ctypes.get_errno())\n\
r=libc.mount(b'none',b'/tmp',b'tmpfs',0,None)\nprint('mount',r,ctypes.get_errno())";
    let result = f.python(code).await;
    assert!(result.stdout.contains("io_uring -1 1\n"), "{result:?}");
    assert!(result.stdout.contains("unshare -1 1\n"), "{result:?}");
    assert!(result.stdout.contains("mount -1 1\n"), "{result:?}");
}

#[tokio::test]
async fn programs_never_run_as_root() {
    let f = Fixture::new();
    let code = "import os\nprint('uid', os.getuid(), os.geteuid(), os.getgid())\n\
try:\n  os.setuid(0); print('BECAME ROOT')\nexcept OSError as e:\n  print('setuid refused', e.errno)";
    let result = f.python(code).await;
    assert!(!result.stdout.contains("uid 0 ") && !result.stdout.contains("BECAME ROOT"), "{result:?}");
    if nix::unistd::geteuid().is_root() {
        assert!(result.stdout.contains("uid 65534 65534 65534"), "{result:?}");
    }
}

#[tokio::test]
async fn setuid_binaries_grant_nothing() {
    // The system's setuid-root `su`, and (when the tests run as root and can make one) a
    // setuid-root copy of `id` planted in the session's scratch directory.
    let f = Fixture::new();
    let su = std::path::Path::new("/usr/bin/su");
    let su_is_setuid = std::fs::metadata(su).is_ok_and(|m| m.permissions().mode() & 0o4000 != 0);
    let root = nix::unistd::geteuid().is_root();
    if !su_is_setuid && !root {
        eprintln!("SKIPPED setuid_binaries_grant_nothing: no setuid-root binary here and none can be made (not root)");
        return;
    }
    let scratch = scratch_of(&f, "suid").await;
    if root {
        let planted = scratch.join("suid-id");
        std::fs::copy("/usr/bin/id", &planted).unwrap();
        std::os::unix::fs::chown(&planted, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o4755)).unwrap();
    }
    let script = "[ -e suid-id ] && ./suid-id -u; [ -u /usr/bin/su ] && /usr/bin/su -c id root </dev/null; echo done";
    let result = f.run_in(Some("suid"), "sh", &["-c", script]).await;
    assert!(result.stdout.contains("done"), "{result:?}");
    if root {
        let uid = result.stdout.lines().next().unwrap_or_default();
        assert_eq!(uid, "65534", "the planted copy ran as the sandbox user: {result:?}");
    }
    assert!(!result.stdout.lines().any(|l| l.trim() == "0"), "the setuid bit took effect: {result:?}");
    assert!(!result.stdout.contains("uid=0"), "{result:?}");
}

/// Set in the environment of the child test process that plays a server killed mid-run.
const HELPER_MARK: &str = "EXEC_TEST_KILLED_SERVER_MARK";

#[tokio::test]
async fn a_killed_server_leaves_no_run_behind() {
    // The server is this test binary run again as a child (the helper below), killed with
    // SIGKILL while a run goes on: the reaper's own alarm ends the run `timeout_s + 10` s
    // later, with nobody left to ask it to.
    let mark = marker();
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "attacks::helper_server_killed_mid_run", "--nocapture"])
        .env(HELPER_MARK, &mark)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with(&mark).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!processes_with(&mark).is_empty(), "the helper server never started its run");
    let started = Instant::now();
    server.kill().unwrap();
    server.wait().unwrap();
    // Killed well before the run's own 4 s timeout: only the reaper can end it now.
    assert!(started.elapsed() < Duration::from_secs(3));
    let left = survivors_after(&mark, Duration::from_secs(25)).await;
    kill_all(&left);
    assert!(left.is_empty(), "the run outlived its killed server: {left:?}");
}

#[tokio::test]
async fn helper_server_killed_mid_run() {
    // Only does something as the child of `a_killed_server_leaves_no_run_behind`.
    let Ok(mark) = std::env::var(HELPER_MARK) else { return };
    let f = Fixture::new();
    let code = format!("import time\ntime.sleep(100)  # {mark}");
    let _ = f.python_with(&code, json!({ "timeout_s": 4 })).await;
    // Not reached: the parent kills this process first.
    tokio::time::sleep(Duration::from_secs(60)).await;
}
