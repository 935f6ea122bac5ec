//! The readable rendering of a query result that goes next to the structured content:
//! an aligned text table, cells clipped, long results shortened with a pointer to the
//! structured rows.

use serde_json::Value;

use crate::engine::ColumnInfo;

/// Rows shown in the text; the structured content has them all.
const TEXT_ROWS: usize = 200;
/// Characters shown per cell when there are several columns.
const CELL_CHARS: usize = 60;
/// Characters shown per cell of a one-column result (EXPLAIN's plan lines, SHOW values).
const SINGLE_COLUMN_CHARS: usize = 1000;

/// Renders `rows` under `columns` as an aligned table with a closing count line.
pub(crate) fn table(columns: &[ColumnInfo], rows: &[Vec<Value>], truncated: bool) -> String {
    let shown = &rows[..rows.len().min(TEXT_ROWS)];
    let width = if columns.len() == 1 { SINGLE_COLUMN_CHARS } else { CELL_CHARS };
    let header: Vec<String> = columns.iter().map(|column| clip(&column.name, width)).collect();
    let cells: Vec<Vec<String>> =
        shown.iter().map(|row| row.iter().map(|value| cell(value, width)).collect()).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|index| {
            let body = cells.iter().filter_map(|row| row.get(index)).map(|cell| cell.chars().count());
            body.chain([header[index].chars().count()]).max().unwrap_or(0)
        })
        .collect();
    let line = |values: &[String]| {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(value, width)| format!("{value:<width$}")).collect();
        padded.join(" | ").trim_end().to_owned()
    };
    let mut text = String::new();
    if !columns.is_empty() {
        text.push_str(&line(&header));
        text.push('\n');
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        text.push_str(&rule.join("-+-"));
        text.push('\n');
        for row in &cells {
            text.push_str(&line(row));
            text.push('\n');
        }
    }
    text.push_str(&summary(rows.len(), shown.len(), truncated));
    text
}

fn summary(count: usize, shown: usize, truncated: bool) -> String {
    let rows = if count == 1 { "1 row".to_owned() } else { format!("{count} rows") };
    let mut summary = format!("({rows}");
    if shown < count {
        summary.push_str(&format!("; the first {shown} shown here, all in the structured result"));
    }
    if truncated {
        summary.push_str("; truncated at the row cap or the 8 MiB result cap: add a LIMIT or a filter");
    }
    summary.push(')');
    summary
}

fn cell(value: &Value, width: usize) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(text) => clip(text, width),
        other => clip(&other.to_string(), width),
    }
}

/// One line, at most `width` characters.
fn clip(text: &str, width: usize) -> String {
    let flat = text.replace('\n', "\\n").replace('\r', "\\r").replace('\t', " ");
    if flat.chars().count() <= width {
        flat
    } else {
        let mut clipped: String = flat.chars().take(width.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn columns(names: &[&str]) -> Vec<ColumnInfo> {
        names.iter().map(|name| ColumnInfo { name: (*name).into(), type_name: "TEXT".into() }).collect()
    }

    #[test]
    fn tables_align_and_count() {
        let rows = vec![vec![json!(1), json!("alice")], vec![json!(22), Value::Null]];
        assert_eq!(
            table(&columns(&["id", "name"]), &rows, false),
            "id | name\n---+------\n1  | alice\n22 | NULL\n(2 rows)"
        );
    }

    #[test]
    fn long_cells_are_clipped_and_truncation_is_said() {
        let rows = vec![vec![json!("x".repeat(100) + "\nnext"), json!(1)]];
        let text = table(&columns(&["v", "n"]), &rows, true);
        let first_row = text.lines().nth(2).unwrap_or_default();
        assert_eq!(first_row.chars().count(), CELL_CHARS + " | 1".len());
        assert!(text.ends_with("(1 row; truncated at the row cap or the 8 MiB result cap: add a LIMIT or a filter)"));
    }
}
