//! Keeping the credential out of everything a call returns: the secret's forms (the raw
//! value, and for Basic the `user:secret` pair and its base64) are replaced by `***` in
//! error texts, header values and bodies, including a secret cut in two by truncation.

use serde_json::Value;

/// What replaces a secret.
pub(crate) const MASK: &str = "***";

/// The secret forms of one call's credential; empty when the API has none.
#[derive(Default)]
pub(crate) struct Secrets {
    forms: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} forms)", self.forms.len())
    }
}

impl Secrets {
    /// The forms of `secret` to hide, longest first so that a longer form is replaced
    /// whole before a shorter one inside it.
    pub(crate) fn new(mut forms: Vec<String>) -> Self {
        forms.retain(|form| !form.is_empty());
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        forms.dedup();
        Self { forms }
    }

    /// `text` with every form replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for form in &self.forms {
            if text.contains(form.as_str()) {
                text = text.replace(form.as_str(), MASK);
            }
        }
        text
    }

    /// [`Secrets::redact`] for a text that was cut at its end: also drops a trailing
    /// beginning of a form (at least two characters), which would otherwise leak a prefix.
    pub(crate) fn redact_truncated(&self, text: &str) -> String {
        let mut text = self.redact(text);
        for form in &self.forms {
            let cut =
                (2..form.len()).rev().find(|&length| form.is_char_boundary(length) && text.ends_with(&form[..length]));
            if let Some(length) = cut {
                text.truncate(text.len() - length);
                text.push_str(MASK);
            }
        }
        text
    }

    /// `value` with every string (and object key) redacted.
    pub(crate) fn redact_json(&self, value: Value) -> Value {
        if self.forms.is_empty() {
            return value;
        }
        match value {
            Value::String(text) => Value::String(self.redact(&text)),
            Value::Array(items) => Value::Array(items.into_iter().map(|item| self.redact_json(item)).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(key, item)| (self.redact(&key), self.redact_json(item))).collect())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_form_is_hidden() {
        let secrets = Secrets::new(vec!["s3cr3t-token".into(), "user:s3cr3t-token".into(), String::new()]);
        assert_eq!(secrets.redact("Bearer s3cr3t-token, user:s3cr3t-token"), "Bearer ***, ***");
        assert_eq!(secrets.redact_truncated("echo: s3cr3t-to"), "echo: ***");
        assert_eq!(secrets.redact_truncated("ends with s"), "ends with s");
        assert_eq!(
            secrets.redact_json(json!({"s3cr3t-token": ["x s3cr3t-token"], "n": 1})),
            json!({"***": ["x ***"], "n": 1})
        );
        assert_eq!(Secrets::default().redact("s3cr3t-token"), "s3cr3t-token");
    }
}
