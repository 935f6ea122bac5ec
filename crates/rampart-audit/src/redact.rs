//! Redaction: secrets out of arguments, details and log lines before they are written.
//!
//! Three nets, widest last: object keys that name a secret (`password`, `x-api-key`,
//! `access_token`, ...), values shaped like well-known credentials (Rampart API tokens,
//! bearer/basic credentials, JWTs, GitHub/AWS/Slack/`sk-` keys, PEM private keys, URL
//! passwords, `password=...` pairs), and the exact secret values the server is configured
//! with. Redaction errs toward hiding: a harmless value that looks like a secret is
//! replaced too.

use std::{borrow::Cow, fmt, sync::LazyLock};

use regex::{Captures, Regex};
use serde_json::Value;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Configured secrets shorter than this many characters are ignored: replacing every
/// `abc` in every argument would hide more than it protects.
pub const MIN_SECRET_CHARS: usize = 4;

/// Object keys naming a secret, lower case without separators. A key matches when its
/// separator-free lower-case form ends with one, or when its first words (split at `-`,
/// `_`, `.`, spaces and camelCase humps) spell one, a number at its end aside:
/// `x-api-key`, `db_password`, `accessToken`, `password_hash`, `csrftoken`, `token_2`, but
/// not `max_tokens` or `tokenizer`.
const KEY_TERMS: &[&str] = &[
    "authorization",
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "secretkey",
    "cookie",
    "credential",
    "credentials",
    // Plurals, where unambiguous (`tokens` is not: `max_tokens` counts them).
    "passwords",
    "passphrases",
    "secrets",
    "apikeys",
    "privatekeys",
    "accesskeys",
    "secretkeys",
    "cookies",
];

/// Keys that name a secret only when they are the whole key (`auth`, but not `author`).
const EXACT_KEYS: &[&str] = &["auth", "pass", "pwd"];

/// Credential shapes, one alternation so that a string is scanned once. Named groups mark
/// the matches whose replacement keeps a prefix (`Bearer `, `password=`, the URL up to
/// its password); every other match is replaced whole.
const PATTERNS: &[&str] = &[
    // PEM private keys (RFC 7468), to the END line or, if cut off, to the end of the text.
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\z)",
    // Authorization header values (RFC 6750 bearer, RFC 7617 basic).
    r"(?P<scheme>(?i-u:(?-u:\b)(?:bearer|basic))[ \t]+)(?P<credential>[A-Za-z0-9._~+/=-]{8,})",
    // JSON Web Tokens (RFC 7519): base64url header `{"...` . payload . signature.
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    // Rampart API tokens: rpt_ + base62.
    r"(?-u:\b)rpt_[A-Za-z0-9]{16,}",
    // GitHub: personal, OAuth, user-to-server, server-to-server, refresh; fine-grained.
    r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{20,}",
    r"(?-u:\b)github_pat_[A-Za-z0-9_]{20,}",
    // AWS access key ids (long-term AKIA, temporary ASIA).
    r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
    // Slack tokens.
    r"(?-u:\b)xox[abprs]-[A-Za-z0-9-]{10,}",
    // OpenAI/Anthropic-style `sk-...`, Stripe-style `sk_live_...`.
    r"(?-u:\b)sk-[A-Za-z0-9_-]{16,}",
    r"(?-u:\b)[sr]k_(?:live|test)_[A-Za-z0-9]{10,}",
    // The password in a URL's userinfo (RFC 3986 §3.2.1): scheme://user:PASSWORD@host.
    r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^/ \t\r\n:@]*:)(?P<url_password>[^/ \t\r\n@]+)@",
    // `password=...`, `token: ...`, `"api_key":"..."` in free text and query strings. A
    // colon needs a space or quotes around it, so that `token:ci` (a principal id) stays.
    r#"(?P<pair>(?i-u:(?-u:\b)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token|client[_-]?secret|auth[_-]?token))(?:["']?[ \t]*=[ \t]*["']?|["']?[ \t]*:[ \t]+["']?|["']:["']))(?P<pair_value>[^ \t\r\n&,;"']+)"#,
];

/// The compiled [`PATTERNS`]. Compiled once; a failure (which a test rules out) makes
/// [`Redactor::redact_str`] hide every string rather than none.
static PATTERN: LazyLock<Result<Regex, regex::Error>> = LazyLock::new(|| Regex::new(&PATTERNS.join("|")));

/// Removes secrets from JSON values and free text. Cheap to share (`Arc`) and to call
/// from many tasks; holds the configured secret values, so its `Debug` prints only how
/// many there are.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Configured secret values, longest first so that a secret containing another is
    /// replaced whole.
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor").field("secrets", &self.secrets.len()).finish()
    }
}

impl Redactor {
    /// A redactor that also replaces each of `secrets` (exact, case-sensitive substrings)
    /// wherever it occurs. Empty values and values shorter than [`MIN_SECRET_CHARS`]
    /// characters are ignored; duplicates are dropped.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> =
            secrets.into_iter().map(Into::into).filter(|secret| secret.chars().count() >= MIN_SECRET_CHARS).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// A copy of `value` with secrets replaced by [`REDACTED`], recursively:
    /// - an object member whose key names a secret (see the module docs) gets the string
    ///   `"[REDACTED]"`, whatever its value, except `null` and booleans, which are kept;
    /// - every other string, and every object key, goes through [`Self::redact_str`];
    /// - a number whose decimal form contains a configured secret becomes `"[REDACTED]"`.
    pub fn redact(&self, value: &Value) -> Value {
        let mut value = value.clone();
        self.redact_in_place(&mut value);
        value
    }

    /// [`Self::redact`] without the copy: only what holds a secret is rewritten (every
    /// call's arguments go through this on their way to the audit log).
    pub fn redact_in_place(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, member) in map.iter_mut() {
                    if is_secret_key(key) {
                        redact_whole(member);
                    } else {
                        self.redact_in_place(member);
                    }
                }
                let renamed: Vec<(String, String)> = map
                    .keys()
                    .filter_map(|key| match self.redact_str(key) {
                        Cow::Owned(redacted) => Some((key.clone(), redacted)),
                        Cow::Borrowed(_) => None,
                    })
                    .collect();
                for (key, redacted) in renamed {
                    if let Some(member) = map.remove(&key) {
                        map.insert(redacted, member);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_in_place(item)),
            Value::String(text) => {
                if let Cow::Owned(redacted) = self.redact_str(text) {
                    *text = redacted;
                }
            }
            Value::Number(number) => {
                if !self.secrets.is_empty() && self.contains_secret(&number.to_string()) {
                    *value = Value::from(REDACTED);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// `text` with every configured secret and every credential-shaped substring replaced
    /// by [`REDACTED`]. For a bearer/basic credential, a URL password and a
    /// `password=value` pair only the secret part is replaced (`Bearer [REDACTED]`).
    /// Borrows `text` when nothing was found.
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Ok(pattern) = &*PATTERN else {
            return Cow::Borrowed(REDACTED);
        };
        match self.replace_secrets(text) {
            // `is_match` first: it runs the regex's fastest engine, where `replace_all`
            // looks for captures; most strings (arguments like "UTC") match nothing.
            Cow::Borrowed(text) if !pattern.is_match(text) => Cow::Borrowed(text),
            Cow::Borrowed(text) => pattern.replace_all(text, replacement),
            Cow::Owned(text) if !pattern.is_match(&text) => Cow::Owned(text),
            Cow::Owned(text) => Cow::Owned(pattern.replace_all(&text, replacement).into_owned()),
        }
    }

    fn replace_secrets<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), REDACTED));
            }
        }
        text
    }

    fn contains_secret(&self, text: &str) -> bool {
        self.secrets.iter().any(|secret| text.contains(secret.as_str()))
    }
}

/// The replacement for one match of [`PATTERN`].
fn replacement(captures: &Captures<'_>) -> String {
    let group = |name: &str| captures.name(name).map_or("", |found| found.as_str());
    let kept = |prefix: &str| format!("{}{REDACTED}", group(prefix));
    if let Some(credential) = captures.name("credential") {
        // `Bearer`/`Basic` also start English sentences; a credential has a digit or
        // punctuation, or is long.
        let word = credential.as_str().chars().all(|c| c.is_ascii_alphabetic());
        if word && credential.len() < 20 {
            captures.get(0).map_or_else(String::new, |all| all.as_str().to_string())
        } else {
            kept("scheme")
        }
    } else if captures.name("url").is_some() {
        format!("{}@", kept("url"))
    } else if captures.name("pair").is_some() {
        kept("pair")
    } else {
        REDACTED.to_string()
    }
}

/// The value of a member whose key names a secret: `null` and booleans carry none.
fn redact_whole(value: &mut Value) {
    if !matches!(value, Value::Null | Value::Bool(_)) {
        *value = Value::from(REDACTED);
    }
}

/// Whether an object key names a secret. Case, `-`, `_`, `.` and camelCase do not
/// matter; the key matches when it ends with, or its leading words spell, one of
/// `authorization`, `password`, `passwd`, `passphrase`, `secret`, `token`, `api key`,
/// `private key`, `access key`, `secret key`, `cookie`, `credential(s)` (or a plural of
/// one, except `tokens`); or when it is exactly `auth`, `pass` or `pwd`; a number at the
/// end is ignored. So `x-api-key`, `db_password`, `accessToken`, `Set-Cookie`,
/// `password_hash`, `password2`, `api_keys` match; `max_tokens`, `tokenizer`, `author` do
/// not.
pub fn is_secret_key(key: &str) -> bool {
    // A number after the term does not make it another word: `password2`, `token_2`.
    let key = key.trim_end_matches(|c: char| c.is_ascii_digit() || !c.is_alphanumeric());
    let (joined, word_ends) = split_words(key);
    if EXACT_KEYS.contains(&joined.as_str()) || KEY_TERMS.iter().any(|term| joined.ends_with(term)) {
        return true;
    }
    word_ends.iter().any(|&end| joined.get(..end).is_some_and(|leading| KEY_TERMS.contains(&leading)))
}

/// `key` as lower-case words, split at non-alphanumeric characters and camelCase humps
/// (`XApiKey` → `x`, `api`, `key`; `APIKey` → `api`, `key`), returned joined (`xapikey`)
/// with the byte offset where each word ends (`[1, 4, 7]`).
fn split_words(key: &str) -> (String, Vec<usize>) {
    let chars: Vec<char> = key.chars().collect();
    let mut joined = String::with_capacity(key.len());
    let mut ends = Vec::new();
    let end_word = |joined: &String, ends: &mut Vec<usize>| {
        if ends.last().copied().unwrap_or(0) < joined.len() {
            ends.push(joined.len());
        }
    };
    for (index, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            end_word(&joined, &mut ends);
            continue;
        }
        let previous = index.checked_sub(1).and_then(|i| chars.get(i));
        let next = chars.get(index + 1);
        let hump = c.is_uppercase()
            && previous.is_some_and(|p| {
                p.is_lowercase() || p.is_numeric() || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if hump {
            end_word(&joined, &mut ends);
        }
        joined.extend(c.to_lowercase());
    }
    end_word(&joined, &mut ends);
    (joined, ends)
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
