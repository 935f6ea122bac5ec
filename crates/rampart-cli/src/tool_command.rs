//! `rampart tool NAME --flag value …`: a command for every tool of the connected server,
//! built at run time (clap's builder API) from the tool's input JSON Schema — snake_case
//! properties as kebab-case flags, types checked before anything is sent, enum values
//! listed, required arguments required, descriptions and defaults in `--help`.

use clap::{Arg, ArgAction, ArgMatches, Command, builder::PossibleValuesParser};
use rampart_mcp::ToolInfo;
use serde_json::{Map, Number, Value};

/// The kebab-case form of a name: `get_current_time` → `get-current-time`,
/// `messageType` → `message-type`.
pub(crate) fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c == '_' {
            out.push('-');
        } else if c.is_uppercase() {
            if previous_lower {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    out
}

/// The tool called `name` as given or in kebab-case.
pub(crate) fn find<'a>(tools: &'a [ToolInfo], name: &str) -> Option<&'a ToolInfo> {
    tools.iter().find(|t| t.name == name).or_else(|| tools.iter().find(|t| kebab(&t.name) == kebab(name)))
}

/// What a property takes, read from its schema.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    /// Repeated flag; each value of the item kind.
    Array(Box<Kind>),
    /// Any other shape: a JSON value.
    Json,
}

fn kind_of(schema: &Value) -> Kind {
    let declared = match &schema["type"] {
        Value::String(t) => Some(t.as_str()),
        // `["string", "null"]` (an optional field): the non-null one.
        Value::Array(types) => types.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    };
    match declared {
        Some("string") => Kind::String,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("array") => Kind::Array(Box::new(kind_of(&schema["items"]))),
        None if schema.get("enum").is_some() => Kind::String,
        _ => Kind::Json,
    }
}

pub(crate) fn enum_values(schema: &Value) -> Option<Vec<String>> {
    let values = schema.get("enum").or_else(|| schema["items"].get("enum"))?.as_array()?;
    let values: Vec<String> = values.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    (!values.is_empty()).then_some(values)
}

/// `key=value` words (the shell's form, as in `rampart call`) as the tool's flags:
/// `timezone=UTC` → `--timezone UTC`, so that both forms are checked by the same clap
/// command. Words already flags (`--x`) pass through; `key:=JSON` is `key=JSON`.
///
/// # Errors
/// A word that is neither `key=value` nor a flag, or a key that is not an argument of
/// the tool (naming the ones it has).
pub(crate) fn pairs_to_flags(tool: &ToolInfo, words: &[String]) -> anyhow::Result<Vec<String>> {
    let properties = tool.raw["inputSchema"]["properties"].as_object();
    let mut flags = Vec::new();
    for word in words {
        if word.starts_with('-') {
            flags.push(word.clone());
            continue;
        }
        let Some((key, value)) = word.split_once('=') else {
            anyhow::bail!("'{word}' is not key=value; `help {}` lists the arguments", tool.name);
        };
        let key = key.strip_suffix(':').unwrap_or(key);
        let Some((name, schema)) =
            properties.and_then(|p| p.iter().find(|(name, _)| *name == key || kebab(name) == kebab(key)))
        else {
            let known: Vec<&String> = properties.map(|p| p.keys().collect()).unwrap_or_default();
            anyhow::bail!("'{}' has no argument '{key}' (it has: {known:?})", tool.name);
        };
        if kind_of(schema) == Kind::Boolean {
            flags.push(format!("--{}={value}", kebab(name)));
        } else {
            flags.push(format!("--{}", kebab(name)));
            flags.push(value.to_owned());
        }
    }
    Ok(flags)
}

/// What may come next after `flags` on `rampart tool NAME`: the values of an enum (or
/// boolean) flag just typed, else the flags not given yet.
pub(crate) fn completions(tool: &ToolInfo, flags: &[String]) -> Vec<String> {
    let properties = tool.raw["inputSchema"]["properties"].as_object();
    let flag_of = |name: &String| format!("--{}", kebab(name));
    if let Some(last) = flags.last()
        && let Some((_, schema)) = properties.into_iter().flatten().find(|(name, _)| flag_of(name) == *last)
        && let Some(values) = enum_values(schema)
    {
        return values;
    }
    properties.into_iter().flatten().map(|(name, _)| flag_of(name)).filter(|flag| !flags.contains(flag)).collect()
}

/// The clap command of `tool`, named `rampart tool NAME`.
pub(crate) fn command(tool: &ToolInfo) -> Command {
    let schema = &tool.raw["inputSchema"];
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let mut command = Command::new(format!("rampart tool {}", tool.name))
        .no_binary_name(true)
        .about(tool.description.lines().next().unwrap_or_default().to_owned())
        .long_about(tool.description.clone())
        .after_help("Arguments are checked against the tool's input schema before anything is sent.");
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            command = command.arg(argument(name, property, required.contains(&name.as_str())));
        }
    }
    command
}

fn argument(name: &str, schema: &Value, required: bool) -> Arg {
    let kind = kind_of(schema);
    let mut help = schema["description"].as_str().or_else(|| schema["title"].as_str()).unwrap_or_default().to_owned();
    if let Some(default) = schema.get("default") {
        help.push_str(&format!(" [default: {default}]"));
    }
    let mut arg = Arg::new(name.to_owned()).long(kebab(name)).required(required).help(help);
    arg = match &kind {
        Kind::Boolean => arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(clap::value_parser!(bool))
            .value_name("BOOL"),
        Kind::Array(item) => typed(arg.action(ArgAction::Append), item, schema).value_name(value_name(item)),
        kind => typed(arg, kind, schema).value_name(value_name(kind)),
    };
    arg
}

fn typed(arg: Arg, kind: &Kind, schema: &Value) -> Arg {
    if let Some(values) = enum_values(schema) {
        return arg.value_parser(PossibleValuesParser::new(values));
    }
    match kind {
        Kind::Integer => arg.value_parser(clap::value_parser!(i64)),
        Kind::Number => arg.value_parser(clap::value_parser!(f64)),
        Kind::Json => arg.value_parser(|text: &str| {
            serde_json::from_str::<Value>(text).map(|_| text.to_owned()).map_err(|e| format!("not JSON: {e}"))
        }),
        _ => arg,
    }
}

fn value_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::String => "TEXT",
        Kind::Integer => "INT",
        Kind::Number => "NUMBER",
        Kind::Boolean => "BOOL",
        Kind::Array(_) | Kind::Json => "JSON",
    }
}

/// The arguments object from parsed flags (only the flags given).
pub(crate) fn arguments(tool: &ToolInfo, matches: &ArgMatches) -> Map<String, Value> {
    let mut arguments = Map::new();
    let Some(properties) = tool.raw["inputSchema"]["properties"].as_object() else { return arguments };
    for (name, schema) in properties {
        let kind = kind_of(schema);
        let value = match &kind {
            Kind::Array(item) => matches
                .get_raw(name)
                .map(|values| Value::Array(values.filter_map(|v| v.to_str()).map(|v| scalar(item, v)).collect())),
            kind => matches
                .get_raw(name)
                .and_then(|mut values| values.next())
                .and_then(|v| v.to_str())
                .map(|v| scalar(kind, v)),
        };
        if let Some(value) = value {
            arguments.insert(name.clone(), value);
        }
    }
    arguments
}

/// One value as its kind (clap has checked it parses).
fn scalar(kind: &Kind, text: &str) -> Value {
    match kind {
        Kind::Integer => text.parse::<i64>().map_or_else(|_| Value::String(text.into()), Value::from),
        Kind::Number => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(text.into()), Value::Number),
        Kind::Boolean => Value::Bool(text != "false"),
        Kind::Json | Kind::Array(_) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
        Kind::String => Value::String(text.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn tool() -> ToolInfo {
        let raw = json!({
            "name": "get_annotated_message",
            "description": "Shows a message.\nWith annotations.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "message_type": { "type": "string", "enum": ["error", "success", "debug"], "description": "Kind." },
                    "maxTokens": { "type": "integer" },
                    "include_image": { "type": "boolean", "default": false },
                    "count": { "type": ["integer", "null"] },
                    "ratio": { "type": "number" },
                    "tags": { "type": "array", "items": { "type": "string" } },
                    "sizes": { "type": "array", "items": { "type": "integer" } },
                    "options": { "type": "object" }
                },
                "required": ["message_type"]
            }
        });
        ToolInfo {
            name: "get_annotated_message".into(),
            title: None,
            description: "Shows a message.\nWith annotations.".into(),
            raw,
        }
    }

    fn parse(args: &[&str]) -> Result<Map<String, Value>, clap::Error> {
        let tool = tool();
        let matches = command(&tool).try_get_matches_from(args)?;
        Ok(arguments(&tool, &matches))
    }

    #[test]
    fn flags_follow_the_schema() {
        let cases: &[(&[&str], Value)] = &[
            (&["--message-type", "error"], json!({ "message_type": "error" })),
            (
                &["--message-type", "debug", "--include-image"],
                json!({ "message_type": "debug", "include_image": true }),
            ),
            (
                &["--message-type", "debug", "--include-image=false"],
                json!({ "message_type": "debug", "include_image": false }),
            ),
            (
                &["--message-type", "error", "--count", "3", "--ratio", "0.5"],
                json!({ "message_type": "error", "count": 3, "ratio": 0.5 }),
            ),
            (
                &["--message-type", "error", "--tags", "a", "--tags", "b", "--sizes", "1", "--sizes", "2"],
                json!({ "message_type": "error", "tags": ["a", "b"], "sizes": [1, 2] }),
            ),
            (
                &["--message-type", "error", "--options", "{\"x\":1}"],
                json!({ "message_type": "error", "options": { "x": 1 } }),
            ),
            (&["--message-type", "error", "--max-tokens", "7"], json!({ "message_type": "error", "maxTokens": 7 })),
        ];
        for (args, expected) in cases {
            assert_eq!(Value::Object(parse(args).unwrap()), *expected, "{args:?}");
        }
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag_and_the_choices() {
        let error = parse(&["--message-type", "bogus"]).unwrap_err().to_string();
        assert!(error.contains("--message-type") && error.contains("error, success, debug"), "{error}");
        let error = parse(&[]).unwrap_err().to_string();
        assert!(error.contains("--message-type"), "required: {error}");
        let error = parse(&["--message-type", "error", "--count", "three"]).unwrap_err().to_string();
        assert!(error.contains("--count"), "{error}");
        let error = parse(&["--message-type", "error", "--options", "{x"]).unwrap_err().to_string();
        assert!(error.contains("not JSON"), "{error}");
    }

    #[test]
    fn help_shows_descriptions_defaults_and_values() {
        let help = command(&tool()).render_long_help().to_string();
        for expected in [
            "Shows a message.",
            "--message-type <TEXT>",
            "Kind.",
            "[possible values: error, success, debug]",
            "[default: false]",
        ] {
            assert!(help.contains(expected), "{expected}: {help}");
        }
    }

    #[test]
    fn names_work_as_given_and_in_kebab_case() {
        let tools = [tool()];
        assert!(find(&tools, "get_annotated_message").is_some());
        assert!(find(&tools, "get-annotated-message").is_some());
        assert!(find(&tools, "get-annotated").is_none());
        assert_eq!(kebab("getTinyImage"), "get-tiny-image");
        assert_eq!(kebab("get_current_time"), "get-current-time");
        assert_eq!(kebab("get-sum"), "get-sum");
    }
}
