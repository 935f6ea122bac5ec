//! The request path an agent gives, checked and joined under the API's base URL.
//!
//! The path is checked in the form the API's server will see (percent-decoded once), so
//! that the glob allowlist and the server agree on what is asked for: no `.` or `..`
//! segments (`%2e%2e` included), no encoded `/` or `\`, no double encoding (`%25`), no
//! empty segments, no query or fragment, and nothing that could change the authority
//! (`//evil.com`, `@evil.com`). The URL is then built by setting the path of the base URL,
//! never by concatenating strings, and checked to still have the base's origin and prefix.

use serde_json::{Map, Value};
use url::Url;

/// Checks `path` and returns it percent-decoded (what the globs match).
///
/// # Errors
/// Why the path is refused, in words.
pub(crate) fn decoded(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("the path must start with '/'".into());
    }
    if path.starts_with("//") {
        return Err("the path may not start with '//' (that would name another host)".into());
    }
    if let Some(bad) = path.chars().find(|c| c.is_control() || matches!(c, ' ' | '\\' | '?' | '#')) {
        return Err(format!("the path may not contain {bad:?}: pass query parameters in `query`"));
    }
    let decoded = percent_decode(path)?;
    if let Some(bad) = decoded.chars().find(|c| c.is_control() || matches!(c, '\\' | '%')) {
        return Err(format!("the path encodes {bad:?}, which is not accepted (no double encoding)"));
    }
    if encoded_slash(path) {
        return Err("the path may not encode '/' (%2F)".into());
    }
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => return Err(format!("the path may not contain a '{segment}' segment")),
            "" if index + 1 < segments.len() => return Err("the path may not contain an empty segment ('//')".into()),
            _ => {}
        }
    }
    Ok(decoded)
}

fn encoded_slash(path: &str) -> bool {
    path.to_ascii_lowercase().contains("%2f")
}

/// Decodes `%XX` sequences once; the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
            let byte = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok());
            let byte = byte.ok_or_else(|| "the path has a malformed percent-encoding".to_owned())?;
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the path does not decode to UTF-8".to_owned())
}

/// `base` with `path` appended to its path and `query` as its query string.
///
/// # Errors
/// Why the URL cannot be built: a bad query value, or a result that left the base URL
/// (which the checks in [`decoded`] should make impossible).
pub(crate) fn join(base: &Url, path: &str, query: Option<&Map<String, Value>>) -> Result<Url, String> {
    let prefix = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url.set_fragment(None);
    if let Some(query) = query.filter(|query| !query.is_empty()) {
        let mut pairs = url.query_pairs_mut();
        for (key, value) in query {
            for item in query_values(key, value)? {
                pairs.append_pair(key, &item);
            }
        }
    }
    let same_base = url.origin() == base.origin() && url.path().starts_with(prefix) && url.username().is_empty();
    if !same_base {
        return Err("the path would leave the API's base URL".into());
    }
    Ok(url)
}

fn query_values(key: &str, value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Number(number) => Ok(vec![number.to_string()]),
        Value::Bool(flag) => Ok(vec![flag.to_string()]),
        Value::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Array(_) | Value::Object(_) => {
                        return Err(format!("query parameter '{key}': nested arrays and objects are not accepted"));
                    }
                    other => values.extend(query_values(key, other)?),
                }
            }
            Ok(values)
        }
        Value::Object(_) => Err(format!("query parameter '{key}': use a string, number, boolean or array")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn refused_paths() {
        for (path, expected) in [
            ("repos", "must start with '/'"),
            ("", "must start with '/'"),
            ("@evil.com/x", "must start with '/'"),
            ("//evil.com/x", "may not start with '//'"),
            ("/repos/../admin", "'..' segment"),
            ("/repos/%2e%2e/admin", "'..' segment"),
            ("/repos/%2E%2e/admin", "'..' segment"),
            ("/repos/.%2e/admin", "'..' segment"),
            ("/repos/./x", "'.' segment"),
            ("/..", "'..' segment"),
            ("/repos/a%2fb", "may not encode '/'"),
            ("/repos/a%2F..%2Fadmin", "may not encode '/'"),
            ("/repos/a%5c..", "encodes '\\\\'"),
            ("/repos\\..\\admin", "may not contain '\\\\'"),
            ("/repos/%252e%252e/admin", "encodes '%'"),
            ("/repos/%00", "encodes '\\0'"),
            ("/repos/%zz", "malformed percent-encoding"),
            ("/repos/%ff", "does not decode to UTF-8"),
            ("/repos?admin=1", "may not contain '?'"),
            ("/repos#x", "may not contain '#'"),
            ("/repos/a b", "may not contain ' '"),
            ("/repos//admin", "empty segment"),
            ("/a\n/b", "may not contain '\\n'"),
        ] {
            let error = decoded(path).expect_err(path);
            assert!(error.contains(expected), "{path}: {error}");
        }
    }

    #[test]
    fn accepted_paths_decode_once() {
        assert_eq!(decoded("/repos/rust-lang/rust").unwrap(), "/repos/rust-lang/rust");
        assert_eq!(decoded("/repos/").unwrap(), "/repos/");
        assert_eq!(decoded("/").unwrap(), "/");
        assert_eq!(decoded("/search/caf%C3%A9").unwrap(), "/search/café");
        assert_eq!(decoded("/@evil.com").unwrap(), "/@evil.com");
        assert_eq!(decoded("/a..b/.x").unwrap(), "/a..b/.x");
    }

    #[test]
    fn join_keeps_the_base() {
        let base = Url::parse("https://api.example.com/v1/").unwrap();
        let url = join(
            &base,
            "/repos/x",
            Some(json!({"q": "a b&c", "n": 2, "tag": ["x", "y"], "skip": null}).as_object().unwrap()),
        );
        assert_eq!(url.unwrap().as_str(), "https://api.example.com/v1/repos/x?q=a+b%26c&n=2&tag=x&tag=y");
        let url = join(&base, "/@evil.com/x", None).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v1/@evil.com/x");
        let bare = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(join(&bare, "/user", None).unwrap().as_str(), "http://127.0.0.1:8080/user");
        assert!(join(&base, "/x", Some(json!({"q": {"a": 1}}).as_object().unwrap())).is_err());
    }
}
