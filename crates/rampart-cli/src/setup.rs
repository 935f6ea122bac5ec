//! `serve`, `init`, `config check`, `hash-password`.

use std::{io::Read, process::ExitCode};

use anyhow::{Context, bail};
use rampart_config::{ENV_VARS, EXAMPLE_CONFIG, LoadOptions, Loaded, LogFormat, load};
use serde_json::json;

use crate::{
    args::{BusArg, ConfigCheckArgs, InitArgs, LogFormatArg, ProfileArg, ServeArgs, TransportArg},
    output::{Report, View},
};

/// The environment variables, for `rampart serve --help`.
pub(crate) fn environment_help() -> String {
    let mut help = String::from("Environment variables:\n");
    for var in ENV_VARS {
        help.push_str(&format!("  {:<26} {}\n", var.name, var.doc));
    }
    help
}

fn flag_overrides(args: &ServeArgs) -> Vec<(&'static str, serde_json::Value)> {
    let mut overrides = Vec::new();
    if let Some(transport) = args.transport {
        let name = match transport {
            TransportArg::Http => "http",
            TransportArg::Stdio => "stdio",
            TransportArg::Dbus => "dbus",
        };
        overrides.push(("server.transport", json!(name)));
    }
    if let Some(bus) = args.bus {
        overrides.push(("dbus.bus", json!(if bus == BusArg::System { "system" } else { "session" })));
    }
    if let Some(listen) = args.listen {
        overrides.push(("server.listen", json!(listen.to_string())));
    }
    if args.stateless {
        overrides.push(("server.stateless", json!(true)));
    }
    if let Some(profile) = args.profile {
        let name = match profile {
            ProfileArg::Default => "default",
            ProfileArg::Conformance => "conformance",
        };
        overrides.push(("server.profile", json!(name)));
    }
    if let Some(key) = &args.auth_key {
        overrides.push(("auth.key", json!(key)));
    }
    if args.insecure_no_auth {
        overrides.push(("server.insecure_no_auth", json!(true)));
    }
    if !args.allowed_hosts.is_empty() {
        overrides.push(("server.allowed_hosts", json!(args.allowed_hosts)));
    }
    if !args.allowed_origins.is_empty() {
        overrides.push(("server.allowed_origins", json!(args.allowed_origins)));
    }
    if let Some(log) = &args.log {
        overrides.push(("log.level", json!(log)));
    }
    if let Some(format) = args.log_format {
        let name = match format {
            LogFormatArg::Text => "text",
            LogFormatArg::Json => "json",
        };
        overrides.push(("log.format", json!(name)));
    }
    if let Some(address) = args.metrics_listen {
        overrides.push(("server.metrics_listen", json!(address.to_string())));
    }
    overrides
}

/// Starts logging to stderr. rmcp's debug output dumps whole requests, arguments and
/// all, and its `info` logs every notification an upstream sends and its whole
/// `initialize` answer, so it is capped at `warn` unless the filter names `rmcp`
/// explicitly (e.g. `debug,rmcp=debug`): a plain `--log debug` must not write callers'
/// secrets to the log.
fn init_logging(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = if filter.contains("rmcp") { filter.to_owned() } else { format!("{filter},rmcp=warn") };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("log.level '{filter}' is not a valid filter"))?;
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
    Ok(())
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let overrides = flag_overrides(&args);
    let options = LoadOptions { config_path: args.config, overrides, dotenv: true, env: None };
    let Loaded { config, file } = load(options.clone())?;
    init_logging(&config.log.level, config.log.format)?;
    if let Some(file) = &file {
        tracing::info!(file = %file.display(), "configuration loaded");
    }
    rampart_server::serve(config, options, crate::added_toolboxes()).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn init(args: &InitArgs) -> anyhow::Result<Report> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(&args.path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} already exists; pass --force to overwrite it", args.path.display())
        }
        Err(error) => return Err(error).with_context(|| format!("cannot create {}", args.path.display())),
    };
    file.write_all(EXAMPLE_CONFIG.as_bytes()).and_then(|()| file.sync_all())?;
    Ok(Report::note(format!(
        "wrote {}; check it with `rampart config check --config {}`",
        args.path.display(),
        args.path.display()
    )))
}

pub(crate) fn config_check(args: &ConfigCheckArgs) -> anyhow::Result<Report> {
    let Loaded { config, file } =
        load(LoadOptions { config_path: args.config.clone(), overrides: Vec::new(), dotenv: true, env: None })?;
    let warnings = rampart_server::validate(&config, &crate::added_toolboxes())?;
    if args.strict && !warnings.is_empty() {
        let list: String = warnings.iter().map(|w| format!("\n  warning: {w}")).collect();
        bail!("{} warning(s), and --strict treats them as errors:{list}", warnings.len());
    }
    let mut config = config;
    rampart_gateway::config::mask_secrets(&mut config.upstreams);
    let mut report = Report::new(serde_json::to_value(&config)?, View::Text(toml::to_string(&config)?));
    for warning in &warnings {
        report = report.with_note(format!("warning: {warning}"));
    }
    Ok(report.with_note(match &file {
        Some(file) => format!("configuration OK ({})", file.display()),
        None => "configuration OK (no file: defaults, environment)".to_owned(),
    }))
}

pub(crate) fn hash_password() -> anyhow::Result<Report> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on stdin; try: printf '%s' 'my password' | rampart hash-password");
    }
    let hash = rampart_auth::hash_password(password).map_err(anyhow::Error::msg)?;
    Ok(Report::new(json!({ "hash": hash }), View::Text(hash)))
}
