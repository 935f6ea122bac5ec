//! `serve`, `init`, `config check`, `hash-password`.

use std::{io::Read, process::ExitCode};

use anyhow::{Context, bail};
use opentelemetry_sdk::trace::SdkTracerProvider;
use rampart_config::{ENV_VARS, EXAMPLE_CONFIG, LoadOptions, Loaded, LogConfig, LogFormat, TelemetryConfig, load};
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

/// Starts logging to stderr, and with `[telemetry] otlp_endpoint` the export of traces;
/// returns the tracer provider to shut down when the server stops.
///
/// rmcp's debug output dumps whole requests, arguments and all, and its `info` logs every
/// notification an upstream sends and its whole `initialize` answer, so it is capped at
/// `warn` unless the filter names `rmcp` explicitly (e.g. `debug,rmcp=debug`): a plain
/// `--log debug` must not write callers' secrets to the log. The spans made for tracing
/// ([`rampart_core::TRACE_TARGET`]) stay out of the log unless the filter names them, so
/// that without an exporter they are disabled where they are made.
/// `log.level` as the log's filter: rmcp at `warn` and the trace target off unless named.
///
/// # Errors
/// When it is not a list of `TARGET=LEVEL` directives.
fn log_filter(log: &LogConfig) -> anyhow::Result<tracing_subscriber::filter::Targets> {
    let mut filter = if log.level.contains("rmcp") { log.level.clone() } else { format!("{},rmcp=warn", log.level) };
    if !log.level.contains(rampart_core::TRACE_TARGET) {
        filter.push_str(&format!(",{}=off", rampart_core::TRACE_TARGET));
    }
    // `Targets` (`target=level` directives) rather than `EnvFilter`: its span and field
    // directives need tracing-subscriber's `env-filter` feature, whose `matchers`
    // dependency turns on regex-automata's full DFAs for every small regex in the binary
    // (the policy's globs among them): ~5 % of a cold start's CPU, for syntax nobody used.
    filter.parse().with_context(|| {
        format!(
            "log.level '{}' is not a valid filter (TARGET=LEVEL directives, e.g. info,rampart_server=debug)",
            log.level
        )
    })
}

fn init_logging(log: &LogConfig, telemetry: &TelemetryConfig) -> anyhow::Result<Option<SdkTracerProvider>> {
    use tracing_subscriber::{Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};

    let filter = log_filter(log)?;
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match log.format {
        LogFormat::Text => logs.with_ansi(ansi).boxed(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).boxed(),
    };
    let Some(endpoint) = &telemetry.otlp_endpoint else {
        tracing_subscriber::registry().with(logs.with_filter(filter)).try_init()?;
        return Ok(None);
    };
    let provider = tracer_provider(endpoint, telemetry)?;
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "rampart");
    // The log as without telemetry; the traces get Rampart's trace spans and each HTTP
    // request's span, and no events (log lines stay in the log).
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.target() == rampart_core::TRACE_TARGET || rampart_server::is_traced_request_span(metadata)
        }));
    tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).try_init()?;
    // W3C `traceparent` in and out (`rampart_mcp::trace`); nothing else is propagated.
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    Ok(Some(provider))
}

/// Spans batched and POSTed to the collector's `/v1/traces` (OTLP/HTTP, protobuf) from
/// the SDK's own thread; new traces sampled at `sample_ratio`, continued ones as their
/// caller decided. The exporter also reads the standard `OTEL_EXPORTER_OTLP_HEADERS`
/// (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`) and `…_TIMEOUT` variables.
fn tracer_provider(endpoint: &str, telemetry: &TelemetryConfig) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::Sampler;

    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .with_context(|| format!("telemetry.otlp_endpoint '{endpoint}'"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(telemetry.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", rampart_core::VERSION))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(telemetry.sample_ratio))))
        .with_resource(resource)
        .build())
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let overrides = flag_overrides(&args);
    let options = LoadOptions { config_path: args.config, overrides, dotenv: true, env: None };
    let Loaded { config, file } = load(options.clone())?;
    let traces = init_logging(&config.log, &config.telemetry)?;
    if let Some(file) = &file {
        tracing::info!(file = %file.display(), "configuration loaded");
    }
    if let Some(endpoint) = &config.telemetry.otlp_endpoint {
        tracing::info!(%endpoint, "exporting traces (OTLP/HTTP)");
    }
    let served = rampart_server::serve(config, options, crate::added_toolboxes()).await;
    if let Some(provider) = traces {
        // The last spans (those of the calls that finished while the server drained among
        // them) are sent before the process exits. Blocking: off the runtime's threads.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the last traces could not be exported"),
            Err(error) => tracing::warn!(%error, "the last traces could not be exported"),
        }
    }
    served?;
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
    log_filter(&config.log)?;
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
