//! `token`, `audit` and `policy`: administration on the local store, whether or not a
//! server is running.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use jiff::Timestamp;
use rampart_audit::{AuditRecord, read_jsonl};
use rampart_config::{Config, LoadOptions, load};
use rampart_core::CallError;
use rampart_policy::{Access, Request};
use rampart_server::{CreatedToken, LocalAdmin, TokenInfo, build_policy, open_store, parse_duration, record_from_row};
use rampart_store::{AuditQuery, Store};
use serde_json::json;

use crate::args::{AuditCommand, ConfigArgs, PolicyCommand, TokenCommand};

fn config(args: &ConfigArgs) -> anyhow::Result<Config> {
    Ok(load(LoadOptions { config_path: args.config.clone(), overrides: Vec::new(), dotenv: true, env: None })?.config)
}

/// Runs one `rampart token` command: the `admin` tool `tool` with `arguments`, through the
/// pipeline as the local operator (authorized, recorded before its result is returned).
/// Returns the tool's structured result; a refusal, a denial or a tool error is an error
/// (exit 2) and shows nothing of a result.
async fn admin_tool(args: &ConfigArgs, tool: &str, arguments: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let admin = LocalAdmin::open(&config(args)?).await?;
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    let result = admin.call(tool, arguments).await;
    admin.close().await;
    let output = result.map_err(|error| match error {
        CallError::UnknownTool(_) => anyhow::anyhow!(
            "the local operator may not call '{tool}': its roles ([stdio] roles) do not grant it ({error})"
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    let text = output.to_text();
    if output.is_error {
        bail!("{text}");
    }
    output.structured_content.with_context(|| format!("'{tool}' returned no structured result: {text}"))
}

pub(crate) async fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, roles, expires, config: args } => {
            let arguments = json!({"name": name, "roles": roles, "expires_in": expires});
            let created = admin_tool(&args, "admin_token_create", arguments).await?;
            print_created(&serde_json::from_value(created)?, args.json, "created")?;
        }
        TokenCommand::List { config: args } => {
            let listed = admin_tool(&args, "admin_token_list", json!({})).await?;
            let list: Vec<TokenInfo> = serde_json::from_value(listed["tokens"].clone())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<17} {:<20} {:<16} {:<8} {:<25} {:<25} LAST USED",
                    "ID", "NAME", "ROLES", "STATUS", "CREATED", "EXPIRES"
                );
                for t in list {
                    println!(
                        "{:<17} {:<20} {:<16} {:<8} {:<25} {:<25} {}",
                        t.id,
                        t.name,
                        t.roles.join(","),
                        t.status,
                        t.created_at,
                        t.expires_at.as_deref().unwrap_or("never"),
                        t.last_used_at.as_deref().unwrap_or("never")
                    );
                }
            }
        }
        TokenCommand::Revoke { id, config: args } => {
            let revoked: TokenInfo =
                serde_json::from_value(admin_tool(&args, "admin_token_revoke", json!({"id": id})).await?)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&revoked)?);
            } else {
                eprintln!("revoked token '{}' ({})", revoked.name, revoked.id);
            }
        }
        TokenCommand::Rotate { id, config: args } => {
            let rotated = admin_tool(&args, "admin_token_rotate", json!({"id": id})).await?;
            print_created(&serde_json::from_value(rotated)?, args.json, "rotated")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_created(created: &CreatedToken, json: bool, verb: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(created)?);
    } else {
        let expires = created.info.expires_at.as_deref().unwrap_or("never");
        eprintln!(
            "{verb} token '{}' ({}), roles {}, expires {expires}. It is shown only now:",
            created.info.name,
            created.info.id,
            created.info.roles.join(",")
        );
        println!("{}", created.token);
    }
    Ok(())
}

/// Where the audit log is: a JSON-lines file or the store.
pub(crate) enum AuditSource {
    File(std::path::PathBuf),
    Store(Store),
}

fn audit_source(config: &Config) -> anyhow::Result<AuditSource> {
    Ok(match &config.audit.file {
        Some(path) => AuditSource::File(path.clone()),
        None => AuditSource::Store(open_store(config)?),
    })
}

async fn records(source: &AuditSource, query: &AuditQuery) -> anyhow::Result<Vec<AuditRecord>> {
    match source {
        AuditSource::Store(store) => {
            let rows = store.audit_records(query).await?;
            let mut records = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
            if query.newest_first {
                records.reverse();
            }
            Ok(records)
        }
        AuditSource::File(path) => {
            let all = if path.exists() { read_jsonl(path)? } else { Vec::new() };
            let since = query.since_ms.unwrap_or(i64::MIN);
            let mut matching: Vec<AuditRecord> = all
                .into_iter()
                .filter(|r| query.principal.as_ref().is_none_or(|p| *p == r.event.principal))
                .filter(|r| query.tool.as_ref().is_none_or(|t| Some(t) == r.event.tool.as_ref()))
                .filter(|r| r.event.time.as_millisecond() >= since)
                .filter(|r| query.after_seq.is_none_or(|after| i64::try_from(r.seq).unwrap_or(i64::MAX) > after))
                .collect();
            let limit = usize::try_from(query.limit.max(0)).unwrap_or(usize::MAX);
            if query.newest_first && matching.len() > limit {
                matching.drain(..matching.len() - limit);
            } else {
                matching.truncate(limit);
            }
            Ok(matching)
        }
    }
}

fn print_records(records: &[AuditRecord], json: bool) -> anyhow::Result<()> {
    for record in records {
        if json {
            println!("{}", serde_json::to_string(record)?);
        } else {
            let e = &record.event;
            println!(
                "{:>6} {} {:<18} {:<16} {:<22} {:<5} {:<10} {:>8.1}ms{}",
                record.seq,
                e.time.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
                e.principal,
                e.method,
                e.tool.as_deref().unwrap_or("-"),
                e.decision.as_str(),
                e.outcome.as_str(),
                e.duration_ms(),
                e.detail.as_deref().map(|d| format!("  {d}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn since_ms(text: &str) -> anyhow::Result<i64> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time.as_millisecond());
    }
    let ago = parse_duration(text).with_context(|| format!("--since '{text}': use RFC 3339 or a duration like 1h"))?;
    Ok(Timestamp::now().as_millisecond() - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) async fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Tail { lines, follow, config: args } => {
            let source = audit_source(&config(&args)?)?;
            let tail = records(&source, &AuditQuery { limit: lines, newest_first: true, ..Default::default() }).await?;
            print_records(&tail, args.json)?;
            let mut last = tail.last().map_or(0, |r| i64::try_from(r.seq).unwrap_or(i64::MAX));
            if follow {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let new =
                        records(&source, &AuditQuery { after_seq: Some(last), limit: 1000, ..Default::default() })
                            .await?;
                    print_records(&new, args.json)?;
                    if let Some(record) = new.last() {
                        last = i64::try_from(record.seq).unwrap_or(i64::MAX);
                    }
                }
            }
        }
        AuditCommand::Search { principal, tool, since, limit, config: args } => {
            let source = audit_source(&config(&args)?)?;
            let since_ms = since.as_deref().map(since_ms).transpose()?;
            let query = AuditQuery { principal, tool, since_ms, limit, ..Default::default() };
            print_records(&records(&source, &query).await?, args.json)?;
        }
        AuditCommand::Verify { checkpoints, public_key, config: args } => {
            let config = config(&args)?;
            let source = audit_source(&config)?;
            return crate::verify::verify(&config, &source, checkpoints, public_key, args.json).await;
        }
        AuditCommand::Checkpoint { config: args } => {
            let config = config(&args)?;
            return crate::verify::checkpoint(&config, &audit_source(&config)?, args.json).await;
        }
        AuditCommand::PublicKey { config: args } => return crate::verify::public_key(&config(&args)?, args.json),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_resource(text: &str) -> anyhow::Result<Request<'static>> {
    let access = |a: &str| match a {
        "read" => Ok(Access::Read),
        "write" | "read-write" => Ok(Access::ReadWrite),
        other => bail!("access '{other}': use read or write"),
    };
    if let Some(uri) = text.strip_prefix("resource:") {
        return Ok(Request::resource(uri.to_owned()));
    }
    let parts: Vec<&str> = text.splitn(3, ':').collect();
    Ok(match parts.as_slice() {
        ["prompt", name] => Request::prompt((*name).to_owned()),
        ["fs", a, path] => Request::fs((*path).to_owned(), access(a)?),
        ["command", name] => Request::command((*name).to_owned()),
        ["db", a, name] => Request::database((*name).to_owned(), access(a)?),
        ["http", name] => Request::http_api((*name).to_owned()),
        _ => bail!(
            "--resource '{text}': use resource:URI, prompt:NAME, fs:read:/path, fs:write:/path, command:NAME, \
             db:read:NAME, db:write:NAME or http:NAME"
        ),
    })
}

pub(crate) async fn policy(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    let PolicyCommand::Explain { token_name, roles, tool, resource, config: args } = command;
    let config = config(&args)?;
    let policy = build_policy(&config)?;
    let (principal, roles) = match token_name {
        Some(name) => {
            let row = open_store(&config)?.token(&name).await?.with_context(|| format!("no token named '{name}'"))?;
            (format!("token:{}", row.name), row.roles)
        }
        None if !roles.is_empty() => (format!("roles {}", roles.join(",")), roles),
        None => bail!("say whose decision to explain: --token-name NAME or --role ROLE"),
    };
    let request = match (tool, resource) {
        (Some(tool), None) => Request::tool(tool),
        (None, Some(resource)) => parse_resource(&resource)?,
        _ => bail!("give exactly one of --tool TOOL or --resource RESOURCE"),
    };
    let explanation = policy.explain(&roles, &request);
    let allowed = explanation.decision.is_allowed();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "principal": principal, "explanation": explanation }))?);
    } else {
        println!("principal: {principal}");
        print!("{explanation}");
    }
    Ok(if allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `rampart sandbox check`: which exec sandbox layers this machine enforces.
pub(crate) fn sandbox_check(json: bool) -> anyhow::Result<ExitCode> {
    let report = rampart_exec::ExecToolbox::check_sandbox();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(if report.missing(&rampart_exec::Layer::ALL).is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
