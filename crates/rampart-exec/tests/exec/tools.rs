//! What `run_command` and `run_script` do for a well-behaved caller: argv passed verbatim
//! (never a shell), stdin, the working directory, exit codes and signals, non-zero exits
//! as `isError` results with their output, timeouts a call may shorten but not lengthen,
//! output lines streamed while a long run goes on, and the scratch directory that
//! persists across the calls of one session and goes away with it.

use std::time::{Duration, Instant};

use rampart_core::{ToolError, Toolbox};
use serde_json::json;

use crate::common::{Fixture, TestGuard, result, scratch_of, text};

#[tokio::test]
async fn the_tools_are_listed_with_schemas_and_annotations() {
    let f = Fixture::new();
    let tools = f.toolbox.tools().await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["run_command", "run_script"]);
    let run = &tools[0];
    let properties = run.input_schema["properties"].as_object().unwrap();
    for key in ["program", "args", "cwd", "stdin", "timeout_s"] {
        assert!(properties.contains_key(key), "{key} missing from {properties:?}");
    }
    assert!(run.description.contains("echo"), "the description names the allowed programs: {}", run.description);
    assert!(tools[1].description.contains("python3"), "{}", tools[1].description);
    assert_eq!(run.annotations.read_only_hint, Some(false));
    assert!(run.output_schema.is_some());
    assert_eq!(f.toolbox.name(), "exec");
}

#[tokio::test]
async fn arguments_reach_the_program_verbatim_without_a_shell() {
    let f = Fixture::new();
    let args = ["$(id)", "; echo pwned", "`id`", "*", "a b", "--", "&& rm -rf ~", "|cat", "$HOME", "'\"", "\\n"];
    let result = f.run("echo", &args).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.stdout, format!("{}\n", args.join(" ")));
}

#[tokio::test]
async fn only_allowlisted_program_names_run() {
    let f = Fixture::new();
    for program in ["bash", "/bin/sh", "sh ", "../sh", "sudo", "su", "python3 -c", "", "SH", "/usr/bin/python3"] {
        let error = f.call("run_command", json!({ "program": program, "args": [] })).await.unwrap_err();
        assert!(matches!(error, ToolError::InvalidArguments(_)), "{program:?}: {error:?}");
        assert!(error.to_string().contains("not an allowed program"), "{program:?}: {error}");
    }
    assert!(f.guard.asked.lock().unwrap().is_empty(), "nothing unknown reaches the policy");
}

#[tokio::test]
async fn the_policy_is_asked_before_anything_runs() {
    let f = Fixture::new().guard(TestGuard::denying(&["sh", "python3"]));
    let session = "policy";
    let error = f
        .call_in(Some(session), "run_command", json!({ "program": "sh", "args": ["-c", "touch ran"] }))
        .await
        .unwrap_err();
    assert!(matches!(error, ToolError::Denied(_)), "{error:?}");
    let error = f
        .call_in(Some(session), "run_script", json!({ "language": "python3", "code": "open('ran','w')" }))
        .await
        .unwrap_err();
    assert!(matches!(error, ToolError::Denied(_)), "{error:?}");
    let listing = f.run_in(Some(session), "ls", &["-a"]).await;
    assert!(!listing.stdout.contains("ran"), "a denied command ran: {listing:?}");
    let asked = f.guard.asked.lock().unwrap().clone();
    let names: Vec<String> = asked
        .iter()
        .filter_map(|r| match r {
            rampart_core::Request::Command { name } => Some(name.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["sh", "python3", "ls"]);
}

#[tokio::test]
async fn stdin_is_passed_and_closed() {
    let f = Fixture::new();
    let output = f.call("run_command", json!({ "program": "cat", "args": [], "stdin": "line one\nline two\n" })).await;
    let result = result(&output.unwrap());
    assert_eq!(result.stdout, "line one\nline two\n");
    // Without stdin the program reads end of file at once instead of hanging.
    let result = f.run("cat", &[]).await;
    assert_eq!((result.exit_code, result.stdout.as_str()), (Some(0), ""));
}

#[tokio::test]
async fn a_non_zero_exit_is_an_error_result_with_the_output() {
    let f = Fixture::new();
    let output = f.call("run_command", json!({ "program": "sh", "args": ["-c", "echo out; echo err >&2; exit 3"] }));
    let output = output.await.unwrap();
    assert!(output.is_error, "{output:?}");
    let run = result(&output);
    assert_eq!(
        (run.exit_code, run.signal, run.stdout.as_str(), run.stderr.as_str()),
        (Some(3), None, "out\n", "err\n")
    );
    let shown = text(&output);
    assert!(shown.contains("exit code 3") && shown.contains("out") && shown.contains("err"), "{shown}");
    let output = f.call("run_command", json!({ "program": "sh", "args": ["-c", "kill -TERM $$"] })).await.unwrap();
    let run = result(&output);
    assert!(output.is_error);
    assert_eq!((run.exit_code, run.signal), (None, Some(15)), "{run:?}");
    assert!(text(&output).contains("SIGTERM"), "{}", text(&output));
}

#[tokio::test]
async fn success_reports_code_duration_and_no_truncation() {
    let f = Fixture::new();
    let output = f.call("run_command", json!({ "program": "echo", "args": ["hello"] })).await.unwrap();
    assert!(!output.is_error);
    let run = result(&output);
    assert_eq!((run.exit_code, run.signal, run.timed_out), (Some(0), None, false));
    assert!(!run.stdout_truncated && !run.stderr_truncated);
    assert!(run.duration_ms < 10_000);
    assert!(text(&output).contains("hello"));
}

#[tokio::test]
async fn a_call_may_shorten_the_timeout_but_not_lengthen_it() {
    let f = Fixture::with(|config| config["timeout_s"] = json!(5));
    let error = f.call("run_command", json!({ "program": "sleep", "args": ["1"], "timeout_s": 6 })).await;
    let error = error.unwrap_err();
    assert!(error.to_string().contains("exec.timeout_s"), "{error}");
    let started = Instant::now();
    let output = f.call("run_command", json!({ "program": "sleep", "args": ["30"] })).await.unwrap();
    let run = result(&output);
    assert!(run.timed_out && output.is_error, "{run:?}");
    assert!(text(&output).contains("timed out after 5 s"), "{}", text(&output));
    assert!(started.elapsed() < Duration::from_secs(12));
}

#[tokio::test]
async fn the_working_directory_stays_inside_scratch() {
    let f = Fixture::new();
    let session = "cwd";
    let scratch = scratch_of(&f, session).await;
    f.run_in(Some(session), "sh", &["-c", "mkdir -p sub/deeper"]).await;
    let output = f
        .call_in(Some(session), "run_command", json!({ "program": "pwd", "args": [], "cwd": "sub/deeper" }))
        .await
        .unwrap();
    assert_eq!(result(&output).stdout.trim(), scratch.join("sub/deeper").display().to_string());
    let absolute = scratch.join("sub").display().to_string();
    let output =
        f.call_in(Some(session), "run_command", json!({ "program": "pwd", "args": [], "cwd": absolute })).await;
    assert_eq!(result(&output.unwrap()).stdout.trim(), scratch.join("sub").display().to_string());
    for cwd in ["..", "../..", "sub/../../..", "/etc", "/tmp", "missing", f.outside.to_str().unwrap()] {
        let error = f.call_in(Some(session), "run_command", json!({ "program": "pwd", "args": [], "cwd": cwd })).await;
        assert!(error.is_err(), "cwd {cwd:?} accepted: {error:?}");
    }
    // A link planted in scratch that leads out is refused too.
    f.run_in(Some(session), "sh", &["-c", "ln -s /etc out"]).await;
    let error = f.call_in(Some(session), "run_command", json!({ "program": "pwd", "args": [], "cwd": "out" })).await;
    assert!(error.is_err(), "{error:?}");
}

#[tokio::test]
async fn run_script_runs_code_through_the_interpreter() {
    let f = Fixture::new();
    let output = f.call("run_script", json!({ "language": "python3", "code": "print(6 * 7)" })).await.unwrap();
    assert_eq!(result(&output).stdout, "42\n");
    let output = f.call(
        "run_script",
        json!({ "language": "bash", "code": "echo \"${BASH_VERSION%%.*}\" | grep -q . && echo bash ok" }),
    );
    assert_eq!(result(&output.await.unwrap()).stdout, "bash ok\n");
    let output = f.call("run_script", json!({ "language": "sh", "code": "exit 4" })).await.unwrap();
    assert!(output.is_error);
    assert_eq!(result(&output).exit_code, Some(4));
    let error = f.call("run_script", json!({ "language": "ruby", "code": "puts 1" })).await.unwrap_err();
    assert!(error.to_string().contains("not a configured interpreter"), "{error}");
    assert_eq!(
        f.guard.asked.lock().unwrap().iter().filter(|r| matches!(r, rampart_core::Request::Command { .. })).count(),
        3
    );
}

#[tokio::test]
async fn run_script_leaves_no_script_file_behind() {
    let f = Fixture::new();
    let session = "scripts";
    f.call_in(Some(session), "run_script", json!({ "language": "sh", "code": "echo hi" })).await.unwrap();
    let listing = f.run_in(Some(session), "ls", &["-A"]).await;
    assert_eq!(listing.stdout, "", "{listing:?}");
}

#[tokio::test]
async fn long_runs_stream_output_lines() {
    let f = Fixture::new();
    let started = Instant::now();
    let output = f
        .call("run_command", json!({ "program": "sh", "args": ["-c", "echo first-line; sleep 2; echo second-line"] }))
        .await
        .unwrap();
    let finished = Instant::now();
    assert_eq!(result(&output).stdout, "first-line\nsecond-line\n");
    let progress = f.peer.progress.lock().unwrap().clone();
    let logs = f.peer.logs.lock().unwrap().clone();
    let early = |notes: &[crate::common::Notification]| {
        notes.iter().any(|n| n.text.contains("first-line") && n.at < finished - Duration::from_millis(500))
    };
    assert!(early(&progress), "no progress with the first line before the end: {progress:?}");
    assert!(early(&logs), "no log with the first line before the end: {logs:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn scratch_persists_within_a_session_and_goes_with_it() {
    let f = Fixture::new();
    let scratch = scratch_of(&f, "alpha").await;
    assert!(scratch.starts_with(&f.scratch_root), "{}", scratch.display());
    f.run_in(Some("alpha"), "sh", &["-c", "echo kept > note.txt"]).await;
    let again = f.run_in(Some("alpha"), "cat", &["note.txt"]).await;
    assert_eq!(again.stdout, "kept\n");
    // Another session has its own, empty scratch.
    let other = f.run_in(Some("beta"), "ls", &["-A"]).await;
    assert_eq!(other.stdout, "");
    assert_ne!(scratch_of(&f, "beta").await, scratch);
    f.toolbox.end_session("alpha");
    assert!(!scratch.exists(), "end_session left {}", scratch.display());
    // The session id may come back: it starts empty.
    let fresh = f.run_in(Some("alpha"), "ls", &["-A"]).await;
    assert_eq!(fresh.stdout, "");
    f.toolbox.end_session("never-seen");
    // At shutdown every session goes.
    let gamma = scratch_of(&f, "gamma").await;
    let beta = scratch_of(&f, "beta").await;
    f.toolbox.end_all_sessions();
    assert!(!gamma.exists() && !beta.exists());
}

#[tokio::test]
async fn without_a_session_each_call_gets_a_fresh_scratch_that_is_removed() {
    let f = Fixture::new();
    let first = f.run("sh", &["-c", "pwd; echo x > left.txt"]).await;
    let second = f.run("sh", &["-c", "pwd; ls -A"]).await;
    let (first_dir, second_dir) = (first.stdout.lines().next().unwrap(), second.stdout.lines().next().unwrap());
    assert_ne!(first_dir, second_dir);
    assert!(!second.stdout.contains("left.txt"));
    assert!(!std::path::Path::new(first_dir).exists(), "{first_dir} was not removed");
    let left: Vec<_> = std::fs::read_dir(&f.scratch_root).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn idle_session_scratch_expires() {
    let f = Fixture::with(|config| config["scratch_idle_s"] = json!(1));
    let scratch = scratch_of(&f, "idle").await;
    assert!(scratch.exists());
    let used = f.run_in(Some("busy"), "sh", &["-c", "sleep 2.5; echo done"]);
    let wait = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The background sweep (every second with this idle time) may have been first.
        assert!(f.toolbox.expire_idle() <= 1);
        assert!(!scratch.exists(), "{} outlived its idle time", scratch.display());
    };
    let (busy, ()) = tokio::join!(used, wait);
    // A session with a call running is never idle, however long the call.
    assert_eq!(busy.stdout, "done\n", "{busy:?}");
    assert_eq!(f.run_in(Some("busy"), "ls", &["-A"]).await.exit_code, Some(0));
}

#[tokio::test]
async fn ending_a_session_cancels_its_running_calls() {
    let f = Fixture::new();
    let scratch = scratch_of(&f, "ending").await;
    let call = f.call_in(Some("ending"), "run_command", json!({ "program": "sleep", "args": ["30"] }));
    let end = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        f.toolbox.end_session("ending");
    };
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(call, end);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(outcome, Err(ToolError::Cancelled)), "{outcome:?}");
    assert!(!scratch.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_runs_do_not_interfere() {
    // Each run has its own user namespace, so the process limit is per run, not shared by
    // every run of the sandbox's user.
    let f = std::sync::Arc::new(Fixture::with(|config| config["limits"]["processes"] = json!(8)));
    for _ in 0..3 {
        let runs: Vec<_> = (0..12)
            .map(|i| {
                let f = f.clone();
                tokio::spawn(async move { f.run("sh", &["-c", &format!("echo {i} | cat | cat")]).await })
            })
            .collect();
        for (i, run) in runs.into_iter().enumerate() {
            let result = run.await.unwrap();
            assert_eq!(result.stdout, format!("{i}\n"), "{result:?}");
        }
    }
}
