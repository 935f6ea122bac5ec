//! The one display layer: commands return a [`Report`] (what happened, as data and as a
//! [`View`] for people), and the [`Printer`] renders it — JSON for scripts (`--json`, the
//! shell's `json on`), tables and panels for people. Nothing else in the binary writes to
//! stdout; stderr carries notes, progress and errors.
//!
//! Tables use comfy-table: wrapped to the terminal's width when stdout is one, never
//! coloured when it is not or when `NO_COLOR` is set (<https://no-color.org>).

use std::{
    fmt::Write as _,
    io::{IsTerminal, Write},
    process::ExitCode,
};

use comfy_table::{Attribute, Cell, ContentArrangement, Table, presets};
use serde_json::Value;

/// How a command ended, for the exit status (0, 1, 2, 130: see `main`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exit 0.
    Success,
    /// Exit 1: the tool reported an error (`isError`), a check failed, a decision was deny.
    Failure,
    /// Exit 2: usage (a bad flag shown with its help).
    Usage,
    /// Exit 130: interrupted by Ctrl-C, the call cancelled on the server.
    Interrupted,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        match status {
            Status::Success => Self::SUCCESS,
            Status::Failure => Self::from(1),
            Status::Usage => Self::from(2),
            Status::Interrupted => Self::from(130),
        }
    }
}

/// What `--json` prints.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    /// Nothing (the command has no data, e.g. `--help` text).
    None,
    /// One indented JSON document.
    Pretty(Value),
    /// One compact JSON object per line (records, checkpoints).
    Lines(Vec<Value>),
}

/// What people see.
#[derive(Debug, Clone)]
pub(crate) enum View {
    /// Nothing on stdout.
    Empty,
    /// Text shown as is (a newline is added when it lacks one).
    Text(String),
    /// A table: column headings, then rows of cells.
    Table { columns: Vec<String>, rows: Vec<Vec<String>> },
    /// Key/value pairs, one per line.
    Panel(Vec<(String, String)>),
    /// A `tools/call` result: structured content as a panel or table, else each content
    /// block (text as is; images, audio and resources described).
    ToolResult(Value),
    /// Several views, one after another, separated by a blank line.
    Stack(Vec<View>),
    /// A heading line, then a view right under it.
    Section(String, Box<View>),
}

impl View {
    /// A table from headings and rows of anything displayable.
    pub(crate) fn table<const N: usize>(columns: [&str; N], rows: Vec<[String; N]>) -> Self {
        Self::Table {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: rows.into_iter().map(Vec::from).collect(),
        }
    }
}

/// A command's outcome: its data, its view, notes for people and its exit status.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) data: Data,
    pub(crate) view: View,
    /// Lines for people on stderr (e.g. "wrote 3 bytes to …"); also under `--json`.
    pub(crate) notes: Vec<String>,
    pub(crate) status: Status,
    /// The view goes to stderr instead of stdout (a tool's error result).
    pub(crate) view_on_stderr: bool,
}

impl Report {
    /// A successful report: `data` for scripts, `view` for people.
    pub(crate) fn new(data: Value, view: View) -> Self {
        Self { data: Data::Pretty(data), view, notes: Vec::new(), status: Status::Success, view_on_stderr: false }
    }

    /// A view for people with nothing for `--json` (help texts, scripts, listings of a
    /// shell's own).
    pub(crate) fn view_only(view: View) -> Self {
        Self { data: Data::None, ..Self::new(Value::Null, view) }
    }

    /// Data printed as compact JSON lines under `--json` (records, checkpoints), `view`
    /// for people.
    pub(crate) fn lines(data: Vec<Value>, view: View) -> Self {
        Self { data: Data::Lines(data), ..Self::new(Value::Null, view) }
    }

    /// A report with nothing to show, only an exit status.
    pub(crate) fn status_only(status: Status) -> Self {
        Self { data: Data::None, view: View::Empty, notes: Vec::new(), status, view_on_stderr: false }
    }

    /// A report that is only a note on stderr (nothing on stdout, not even under `--json`).
    pub(crate) fn note(note: impl Into<String>) -> Self {
        Self {
            data: Data::None,
            view: View::Empty,
            notes: vec![note.into()],
            status: Status::Success,
            view_on_stderr: false,
        }
    }

    /// Adds a note for people (stderr).
    pub(crate) fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the exit status.
    pub(crate) fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// A `tools/call` result: its view on stdout, or on stderr with status 1 when the
    /// tool reported an error (`isError`).
    pub(crate) fn tool_result(result: Value) -> Self {
        let is_error = result["isError"].as_bool().unwrap_or(false);
        let mut report = Self::new(result.clone(), View::ToolResult(result));
        if is_error {
            report.status = Status::Failure;
            report.view_on_stderr = true;
        }
        report
    }
}

/// Renders reports: JSON or people's views, with or without colour, at a width.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    pub(crate) json: bool,
    /// Bold headings (a terminal, and `NO_COLOR` unset).
    pub(crate) color: bool,
    /// Wrap tables to this many columns (`None`: the terminal's, or no wrapping when
    /// stdout is not a terminal).
    pub(crate) width: Option<u16>,
}

impl Printer {
    /// The printer for this process's stdout.
    pub(crate) fn new(json: bool) -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { json, color, width: None }
    }

    /// Writes `report`: data or view on stdout (the view on stderr for a tool error),
    /// notes on stderr. A closed stdout (`| head`) is not an error.
    pub(crate) fn print(&self, report: &Report) -> ExitCode {
        let (out, err) = self.render_report(report);
        let mut stdout = std::io::stdout().lock();
        if let Err(error) = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush())
            && error.kind() != std::io::ErrorKind::BrokenPipe
        {
            eprintln!("error: cannot write the output: {error}");
            return ExitCode::from(2);
        }
        eprint!("{err}");
        report.status.into()
    }

    /// Text as it arrives (a model's answer, token by token), on stdout at once.
    pub(crate) fn stream(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    }

    /// One compact JSON value on a line of stdout (a transcript's events).
    pub(crate) fn json_line(&self, value: &Value) {
        self.stream(&format!("{value}\n"));
    }

    /// What [`Printer::print`] writes: (stdout, stderr).
    pub(crate) fn render_report(&self, report: &Report) -> (String, String) {
        let mut err: String = report.notes.iter().map(|note| format!("{note}\n")).collect();
        let out = if self.json {
            match &report.data {
                Data::None => String::new(),
                Data::Pretty(value) => format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default()),
                Data::Lines(values) => values.iter().map(|v| format!("{v}\n")).collect(),
            }
        } else if report.view_on_stderr {
            err.insert_str(0, &self.render(&report.view));
            String::new()
        } else {
            self.render(&report.view)
        };
        (out, err)
    }

    /// A view as text, ending with a newline (empty for [`View::Empty`]).
    pub(crate) fn render(&self, view: &View) -> String {
        let mut out = match view {
            View::Empty => return String::new(),
            View::Text(text) => text.clone(),
            View::Table { columns, rows } => self.table(columns, rows),
            View::Panel(pairs) => panel(pairs),
            View::ToolResult(result) => self.tool_result(result),
            View::Section(title, body) => format!("{title}\n{}", self.render(body)),
            View::Stack(views) => {
                views.iter().map(|v| self.render(v)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n")
            }
        };
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    fn table(&self, columns: &[String], rows: &[Vec<String>]) -> String {
        let mut table = Table::new();
        table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Dynamic);
        match self.width {
            Some(width) => {
                table.set_width(width);
            }
            // A terminal that reports no usable width (some pseudo-terminals say 0):
            // lines as long as they are, rather than a column per letter.
            None if table.width().is_some_and(|width| width < 40) => {
                table.set_content_arrangement(ContentArrangement::Disabled);
            }
            None => {}
        }
        let heading = |c: &String| {
            let cell = Cell::new(c);
            if self.color { cell.add_attribute(Attribute::Bold) } else { cell }
        };
        table.set_header(columns.iter().map(heading));
        for row in rows {
            table.add_row(row);
        }
        // No padding at the left edge, two spaces between columns.
        let last = columns.len().saturating_sub(1);
        for (index, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if index == last { 0 } else { 2 }));
        }
        table.lines().map(|line| format!("{}\n", line.trim_end())).collect()
    }

    fn tool_result(&self, result: &Value) -> String {
        if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
            return self.render(&structured_view(structured));
        }
        let mut out = String::new();
        for block in result["content"].as_array().into_iter().flatten() {
            out.push_str(&content_block(block));
        }
        out
    }
}

/// A `key  value` panel; keys padded to the longest.
fn panel(pairs: &[(String, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let mut lines = value.lines();
        let _ = writeln!(out, "{:<width$}  {}", format!("{key}"), lines.next().unwrap_or_default());
        for line in lines {
            let _ = writeln!(out, "{:<width$}  {line}", "");
        }
    }
    out
}

/// A JSON value as one table cell: strings bare, other scalars as JSON, nested values as
/// compact JSON.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

fn is_row(value: &Value) -> bool {
    value.as_object().is_some_and(|o| o.values().all(|v| !v.is_object() && !v.is_array()))
}

/// `key  value` pairs of `value`: nested objects as `key.inner` (a few levels), anything
/// else as one cell.
fn flatten(key: &str, value: &Value, pairs: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() && key.matches('.').count() < 3 => {
            for (inner, value) in map {
                flatten(&format!("{key}.{inner}"), value, pairs);
            }
        }
        other => pairs.push((key.to_owned(), cell(other))),
    }
}

/// Structured content for people: a list of flat objects is a table, an object a panel
/// (its lists of flat objects as tables below it), anything else indented JSON.
pub(crate) fn structured_view(value: &Value) -> View {
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_row) => {
            let mut columns: Vec<String> = Vec::new();
            for item in items {
                for key in item.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !columns.contains(key) {
                        columns.push(key.clone());
                    }
                }
            }
            let rows = items.iter().map(|item| columns.iter().map(|c| cell(&item[c])).collect()).collect();
            View::Table { columns, rows }
        }
        Value::Object(map) if !map.is_empty() => {
            let mut pairs = Vec::new();
            let mut below = Vec::new();
            for (key, value) in map {
                match value {
                    Value::Array(items) if !items.is_empty() && items.iter().all(is_row) => {
                        below.push(View::Section(format!("{key}:"), Box::new(structured_view(value))));
                    }
                    other => flatten(key, other, &mut pairs),
                }
            }
            if below.is_empty() {
                View::Panel(pairs)
            } else {
                let mut views = if pairs.is_empty() { Vec::new() } else { vec![View::Panel(pairs)] };
                views.extend(below);
                View::Stack(views)
            }
        }
        other => View::Text(serde_json::to_string_pretty(other).unwrap_or_default()),
    }
}

/// One content block (MCP `ContentBlock`) for people, ending with a newline.
pub(crate) fn content_block(block: &Value) -> String {
    match block["type"].as_str() {
        Some("text") => format!("{}\n", block["text"].as_str().unwrap_or_default().trim_end_matches('\n')),
        Some(kind @ ("image" | "audio")) => {
            let bytes = block["data"].as_str().map_or(0, |d| d.len() * 3 / 4);
            format!("[{kind} {}, about {bytes} bytes]\n", block["mimeType"].as_str().unwrap_or("?"))
        }
        Some("resource") => {
            let resource = &block["resource"];
            let mut out = format!("[resource {}]\n", resource["uri"].as_str().unwrap_or("?"));
            if let Some(text) = resource["text"].as_str() {
                let _ = writeln!(out, "{}", text.trim_end_matches('\n'));
            }
            out
        }
        Some("resource_link") => {
            format!(
                "[resource link {} {}]\n",
                block["uri"].as_str().unwrap_or("?"),
                block["name"].as_str().unwrap_or("")
            )
        }
        _ => format!("{block}\n"),
    }
}

/// A line for people on stderr (what is going on, not data).
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}

/// Shows an error the one way errors are shown (`error: …` with its causes) on stderr;
/// exit status 2.
pub(crate) fn error(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::from(2)
}

/// The first line of a description.
pub(crate) fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// `$VAR` (an XDG base directory, e.g. `XDG_STATE_HOME`), else `~/FALLBACK`, joined with
/// `rampart/…`: where the client keeps its files.
pub(crate) fn xdg_dir(var: &str, fallback: &str, under: &str) -> std::path::PathBuf {
    std::env::var_os(var)
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(fallback)))
        .unwrap_or_default()
        .join("rampart")
        .join(under)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn plain() -> Printer {
        Printer { json: false, color: false, width: Some(80) }
    }

    #[test]
    fn tables_wrap_to_the_width_and_have_no_colour() {
        let view = View::table(
            ["NAME", "DESCRIPTION"],
            vec![
                [
                    "get_current_time".into(),
                    "Current time in a timezone (IANA name, e.g. Europe/Paris); the \
                  local timezone when none is given, with its UTC offset and DST flag."
                        .into(),
                ],
                ["system_health".into(), "Liveness.".into()],
            ],
        );
        let text = plain().render(&view);
        assert!(text.lines().all(|line| line.chars().count() <= 80), "{text}");
        assert!(!text.contains('\u{1b}'), "no escape codes: {text:?}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn structured_results_are_panels_and_tables() {
        let time = json!({"timezone": "Asia/Tokyo", "datetime": "2026-12-05T21:00:00+09:00", "is_dst": false,
            "source": {"timezone": "UTC", "tags": ["a", "b"]}});
        insta::assert_snapshot!("panel", plain().render(&View::ToolResult(json!({"structuredContent": time}))));
        let rows =
            json!({"database": "main", "rows": [{"id": 1, "name": "ada"}, {"id": 2, "name": null, "extra": "x"}]});
        insta::assert_snapshot!(
            "panel_and_table",
            plain().render(&View::ToolResult(json!({"structuredContent": rows})))
        );
    }

    #[test]
    fn content_blocks_are_described() {
        let result = json!({"content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "mimeType": "image/png", "data": "AAAA"},
            {"type": "resource", "resource": {"uri": "test://static-text", "text": "body"}},
            {"type": "resource_link", "uri": "file:///tmp/a", "name": "a"},
        ]});
        insta::assert_snapshot!(plain().render(&View::ToolResult(result)));
    }

    #[test]
    fn json_mode_prints_data_only_and_errors_go_to_stderr() {
        let printer = Printer { json: true, ..plain() };
        let report = Report::new(json!({"a": 1}), View::Text("people".into())).with_note("a note");
        let (out, err) = printer.render_report(&report);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!({"a": 1}));
        assert_eq!(err, "a note\n");
        let failed =
            Report::tool_result(json!({"isError": true, "content": [{"type": "text", "text": "no such file"}]}));
        let (out, err) = plain().render_report(&failed);
        assert_eq!((out.as_str(), err.as_str()), ("", "no such file\n"));
        assert_eq!(failed.status, Status::Failure);
    }
}
