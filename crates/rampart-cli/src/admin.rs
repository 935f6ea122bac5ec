//! `token`, `audit` and `policy`: administration on the local store, whether or not a
//! server is running.

use std::time::Duration;

use anyhow::{Context, bail};
use jiff::Timestamp;
use rampart_audit::{AuditRecord, read_jsonl};
use rampart_config::{Config, LoadOptions, load};
use rampart_core::CallError;
use rampart_policy::{Access, Request};
use rampart_server::{
    AuditSource, CreatedToken, LocalAdmin, TokenInfo, build_policy, open_store, parse_duration, record_from_row,
};
use rampart_store::AuditQuery;
use serde_json::json;

use crate::{
    args::{AuditCommand, ConfigArgs, PolicyCommand, TokenCommand},
    output::{Data, Printer, Report, Status, View},
};

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

pub(crate) async fn token(command: TokenCommand) -> anyhow::Result<Report> {
    match command {
        TokenCommand::Create { name, roles, expires, config: args } => {
            let arguments = json!({"name": name, "roles": roles, "expires_in": expires});
            let created = admin_tool(&args, "admin_token_create", arguments).await?;
            created_report(created, "created")
        }
        TokenCommand::List { config: args } => {
            let listed = admin_tool(&args, "admin_token_list", json!({})).await?;
            let list: Vec<TokenInfo> = serde_json::from_value(listed["tokens"].clone())?;
            let never = || "never".to_owned();
            let rows = list
                .iter()
                .map(|t| {
                    [
                        t.id.clone(),
                        t.name.clone(),
                        t.roles.join(","),
                        t.status.to_string(),
                        t.created_at.clone(),
                        t.expires_at.clone().unwrap_or_else(never),
                        t.last_used_at.clone().unwrap_or_else(never),
                    ]
                })
                .collect();
            let view = View::table(["ID", "NAME", "ROLES", "STATUS", "CREATED", "EXPIRES", "LAST USED"], rows);
            Ok(Report::new(serde_json::to_value(&list)?, view))
        }
        TokenCommand::Revoke { id, config: args } => {
            let revoked = admin_tool(&args, "admin_token_revoke", json!({"id": id})).await?;
            let info: TokenInfo = serde_json::from_value(revoked.clone())?;
            let note = format!("revoked token '{}' ({})", info.name, info.id);
            Ok(Report { data: Data::Pretty(revoked), ..Report::note(note) })
        }
        TokenCommand::Rotate { id, config: args } => {
            let rotated = admin_tool(&args, "admin_token_rotate", json!({"id": id})).await?;
            created_report(rotated, "rotated")
        }
    }
}

/// A new secret: on stdout alone (for `$(…)`), what it is on stderr.
fn created_report(created: serde_json::Value, verb: &str) -> anyhow::Result<Report> {
    let token: CreatedToken = serde_json::from_value(created.clone())?;
    let expires = token.info.expires_at.as_deref().unwrap_or("never");
    let note = format!(
        "{verb} token '{}' ({}), roles {}, expires {expires}. It is shown only now:",
        token.info.name,
        token.info.id,
        token.info.roles.join(",")
    );
    Ok(Report::new(created, View::Text(token.token)).with_note(note))
}

fn audit_source(config: &Config) -> anyhow::Result<AuditSource> {
    Ok(match &config.audit.file {
        Some(path) => AuditSource::File(path.clone()),
        None => AuditSource::Store(open_store(config)?),
    })
}

/// The hash chains of the log: the default one (`""`), and in a cluster's PostgreSQL
/// store each replica's own.
async fn chains(source: &AuditSource) -> anyhow::Result<Vec<String>> {
    Ok(rampart_server::audit_chains(source).await?)
}

async fn records(source: &AuditSource, query: &AuditQuery) -> anyhow::Result<Vec<AuditRecord>> {
    match source {
        AuditSource::Store(store) => {
            let mut query = query.clone();
            // Several chains (replicas'): merged by time, each in its own order.
            query.by_time = query.chain.is_none() && chains(source).await?.len() > 1;
            let rows = store.audit_records(&query).await?;
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
                .filter(|r| query.decision.as_ref().is_none_or(|d| d == r.event.decision.as_str()))
                .filter(|r| query.outcome.as_ref().is_none_or(|o| o == r.event.outcome.as_str()))
                .filter(|r| r.event.time.as_millisecond() >= since)
                .filter(|r| query.until_ms.is_none_or(|until| r.event.time.as_millisecond() <= until))
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

/// Audit records: JSON lines for scripts, one line each for people.
fn records_report(records: &[AuditRecord]) -> anyhow::Result<Report> {
    let data = records.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?;
    let mut text = String::new();
    for record in records {
        {
            let e = &record.event;
            text.push_str(&format!(
                "{:>6} {} {:<18} {:<16} {:<22} {:<5} {:<10} {:>8.1}ms{}\n",
                record.seq,
                e.time.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
                e.principal,
                e.method,
                e.tool.as_deref().unwrap_or("-"),
                e.decision.as_str(),
                e.outcome.as_str(),
                e.duration_ms(),
                e.detail.as_deref().map(|d| format!("  {d}")).unwrap_or_default()
            ));
        }
    }
    Ok(Report::lines(data, View::Text(text)))
}

fn time_ms(flag: &str, text: &str) -> anyhow::Result<i64> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time.as_millisecond());
    }
    let ago = parse_duration(text).with_context(|| format!("--{flag} '{text}': use RFC 3339 or a duration like 1h"))?;
    Ok(Timestamp::now().as_millisecond() - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))
}

/// `rampart audit …`; `tail --follow` prints with `printer` as records arrive.
pub(crate) async fn audit(command: AuditCommand, printer: &Printer) -> anyhow::Result<Report> {
    match command {
        AuditCommand::Tail { lines, follow, config: args } => {
            let source = audit_source(&config(&args)?)?;
            let tail = records(&source, &AuditQuery { limit: lines, newest_first: true, ..Default::default() }).await?;
            if !follow {
                return records_report(&tail);
            }
            printer.print(&records_report(&tail)?);
            // Each chain's last record printed (replicas' chains count seq on their own).
            let mut last: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            for chain in chains(&source).await? {
                let query =
                    AuditQuery { chain: Some(chain.clone()), limit: 1, newest_first: true, ..Default::default() };
                let head = records(&source, &query).await?;
                last.insert(chain, head.last().map_or(0, |r| i64::try_from(r.seq).unwrap_or(i64::MAX)));
            }
            // The list of chains costs a scan of the table (PostgreSQL has no skip scan):
            // read again every 10 s, for a replica that started meanwhile.
            let mut known = chains(&source).await?;
            for polls in 1_u64.. {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if polls % 20 == 0 {
                    known = chains(&source).await?;
                }
                let mut new = Vec::new();
                for chain in known.clone() {
                    let after = last.get(&chain).copied().unwrap_or(0);
                    let query = AuditQuery {
                        chain: Some(chain.clone()),
                        after_seq: Some(after),
                        limit: 1000,
                        ..Default::default()
                    };
                    let records = records(&source, &query).await?;
                    if let Some(record) = records.last() {
                        last.insert(chain, i64::try_from(record.seq).unwrap_or(i64::MAX));
                    }
                    new.extend(records);
                }
                if !new.is_empty() {
                    new.sort_by_key(|record| record.event.time);
                    printer.print(&records_report(&new)?);
                }
            }
            Ok(Report::status_only(crate::output::Status::Success))
        }
        AuditCommand::Search { principal, tool, decision, outcome, since, until, limit, config: args } => {
            let source = audit_source(&config(&args)?)?;
            let since_ms = since.as_deref().map(|text| time_ms("since", text)).transpose()?;
            let until_ms = until.as_deref().map(|text| time_ms("until", text)).transpose()?;
            let query =
                AuditQuery { principal, tool, decision, outcome, since_ms, until_ms, limit, ..Default::default() };
            records_report(&records(&source, &query).await?)
        }
        AuditCommand::Verify { checkpoints, public_key, config: args } => {
            let config = config(&args)?;
            let source = audit_source(&config)?;
            crate::verify::verify(&config, &source, checkpoints, public_key).await
        }
        AuditCommand::Checkpoint { config: args } => {
            let config = config(&args)?;
            crate::verify::checkpoint(&config, &audit_source(&config)?, args.json).await
        }
        AuditCommand::PublicKey { config: args } => crate::verify::public_key(&config(&args)?),
    }
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
    if let Some(scope) = text.strip_prefix("scope:") {
        let parts: Vec<&str> = scope.splitn(3, ':').collect();
        let [kind, a, name] = parts.as_slice() else {
            bail!("--resource '{text}': a toolbox's own scope is scope:KIND:read:NAME or scope:KIND:write:NAME")
        };
        return Ok(Request::scope((*kind).to_owned(), (*name).to_owned(), access(a)?));
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
             db:read:NAME, db:write:NAME, http:NAME or scope:KIND:read:NAME"
        ),
    })
}

pub(crate) async fn policy(command: PolicyCommand) -> anyhow::Result<Report> {
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
    let data = json!({ "principal": principal, "explanation": explanation });
    let report = Report::new(data, View::Text(format!("principal: {principal}\n{explanation}")));
    Ok(if allowed { report } else { report.with_status(Status::Failure) })
}

/// `rampart sandbox check`: which exec sandbox layers this machine enforces.
pub(crate) fn sandbox_check() -> anyhow::Result<Report> {
    let check = rampart_exec::ExecToolbox::check_sandbox();
    let report = Report::new(serde_json::to_value(&check)?, View::Text(check.to_string()));
    Ok(if check.missing(&rampart_exec::Layer::ALL).is_empty() { report } else { report.with_status(Status::Failure) })
}
