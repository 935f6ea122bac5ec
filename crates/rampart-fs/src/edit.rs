//! `edit_file`'s text work, with the reference filesystem server's semantics: each edit
//! replaces the first exact occurrence of `oldText`, or else the first run of lines equal
//! to it up to surrounding whitespace (keeping the file's indentation); the result is
//! shown as a git-style unified diff.

use std::fmt::Write as _;

use similar::TextDiff;

/// One replacement.
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    pub(crate) old_text: String,
    pub(crate) new_text: String,
}

/// `text` with `\r\n` turned into `\n`.
pub(crate) fn normalize_line_endings(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// Applies `edits` in order to `content` (already with `\n` line endings).
///
/// # Errors
/// The message naming the first edit whose `oldText` matches nothing.
pub(crate) fn apply_edits(content: &str, edits: &[Edit]) -> Result<String, String> {
    let mut modified = content.to_owned();
    for edit in edits {
        let old = normalize_line_endings(&edit.old_text);
        let new = normalize_line_endings(&edit.new_text);
        if let Some(at) = modified.find(&old) {
            modified.replace_range(at..at + old.len(), &new);
            continue;
        }
        modified = replace_lines_loosely(&modified, &old, &new)
            .ok_or_else(|| format!("Could not find exact match for edit:\n{}", edit.old_text))?;
    }
    Ok(modified)
}

/// Replaces the first run of lines of `content` that equals `old` line by line after
/// trimming, re-indenting `new` like the matched lines.
fn replace_lines_loosely(content: &str, old: &str, new: &str) -> Option<String> {
    let old_lines: Vec<&str> = old.split('\n').collect();
    let mut lines: Vec<String> = content.split('\n').map(str::to_owned).collect();
    let last_start = lines.len().checked_sub(old_lines.len())?;
    let start = (0..=last_start).find(|&i| old_lines.iter().zip(&lines[i..]).all(|(o, c)| o.trim() == c.trim()))?;
    let indent = leading_whitespace(&lines[start]).to_owned();
    let replacement: Vec<String> = new
        .split('\n')
        .enumerate()
        .map(|(j, line)| {
            if j == 0 {
                return format!("{indent}{}", line.trim_start());
            }
            let old_indent = old_lines.get(j).map_or("", |l| leading_whitespace(l));
            let new_indent = leading_whitespace(line);
            if old_indent.is_empty() || new_indent.is_empty() {
                return line.to_owned();
            }
            let extra = new_indent.chars().count().saturating_sub(old_indent.chars().count());
            format!("{indent}{}{}", " ".repeat(extra), line.trim_start())
        })
        .collect();
    lines.splice(start..start + old_lines.len(), replacement);
    Some(lines.join("\n"))
}

fn leading_whitespace(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// A unified diff of `original` → `modified` in the shape of jsdiff's
/// `createTwoFilesPatch(path, path, …, "original", "modified")`, which agents know from
/// the reference server.
pub(crate) fn unified_diff(original: &str, modified: &str, path: &str) -> String {
    let mut out = format!(
        "Index: {path}\n===================================================================\n--- {path}\toriginal\n+++ {path}\tmodified\n"
    );
    let diff = TextDiff::from_lines(original, modified);
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let _ = write!(out, "{hunk}");
    }
    out
}

/// `diff` in a Markdown ```` ```diff ```` block, with a fence longer than any run of
/// backticks inside it.
pub(crate) fn fenced(diff: &str) -> String {
    let mut fence = "```".to_owned();
    while diff.contains(&fence) {
        fence.push('`');
    }
    format!("{fence}diff\n{diff}{fence}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(old: &str, new: &str) -> Edit {
        Edit { old_text: old.into(), new_text: new.into() }
    }

    #[test]
    fn edits_replace_exact_text_first_then_lines_up_to_whitespace() {
        let cases: &[(&str, Vec<Edit>, Result<&str, &str>)] = &[
            ("a\nb\nc\n", vec![edit("b", "B")], Ok("a\nB\nc\n")),
            ("x x x", vec![edit("x", "y")], Ok("y x x")),
            ("a\nb\n", vec![edit("a", "1"), edit("1\nb", "2")], Ok("2\n")),
            // As in the reference server: the first line takes the file's indentation, the
            // others keep their indentation relative to oldText's.
            (
                "  if x {\n    y();\n  }\n",
                vec![edit("if x {\n  y();\n}", "if z {\n    w();\n}")],
                Ok("  if z {\n    w();\n}\n"),
            ),
            ("a\n", vec![edit("missing", "z")], Err("Could not find exact match for edit:\nmissing")),
            ("a\r\nb\r\n", vec![edit("a\r\nb", "c")], Ok("c\n")),
        ];
        for (content, edits, expected) in cases {
            let content = normalize_line_endings(content);
            let actual = apply_edits(&content, edits);
            assert_eq!(actual.as_deref().map_err(String::as_str), *expected, "editing {content:?}");
        }
    }

    #[test]
    fn the_diff_has_git_style_headers_and_hunks() {
        let diff = unified_diff("a\nb\nc\n", "a\nB\nc\n", "/r/f.txt");
        assert_eq!(
            diff,
            "Index: /r/f.txt\n===================================================================\n\
             --- /r/f.txt\toriginal\n+++ /r/f.txt\tmodified\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        assert_eq!(fenced("x ``` y\n"), "````diff\nx ``` y\n````\n\n");
    }
}
