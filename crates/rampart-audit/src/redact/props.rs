//! Property tests of the redactor (issue #19): arbitrary JSON with secrets planted at any
//! depth never shows them after redaction, and nothing panics.
//!
//! - A member whose key names a secret (the documented shapes: a term alone, after other
//!   words, before other words, with a number after it; plurals but `tokens`; any case,
//!   any separator, camelCase) has its value hidden whole, whatever that value (a string, a number, an
//!   object or array full of other things).
//! - A configured secret is hidden wherever it appears: inside a longer string, in a key,
//!   in the digits of a number.
//! - A credential of a documented shape (Rampart/GitHub/Slack/`sk-` tokens, AWS key ids,
//!   JWTs, bearer credentials, URL passwords, `password=` pairs) is hidden in free text.
//! - [`Redactor::redact`] and [`Redactor::redact_in_place`] agree, and redacting twice
//!   changes nothing more.
//!
//! Secrets are drawn from lower-case letters and digits, so that none can be spelled by
//! the `[REDACTED]` marker. `PROPTEST_CASES` sets the number of cases (default 256);
//! `bench/fuzz.sh` runs them long.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::{
    prelude::*,
    sample::{Index, select},
    test_runner::{Config as ProptestConfig, TestCaseError, TestRunner},
};
use serde_json::{Map, Value};

use super::*;

fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    let cases = config.cases;
    if let Err(failure) = TestRunner::new(config).run(&strategy, test) {
        panic!("{failure}");
    }
    println!("proptest: {cases} cases"); // counted by bench/fuzz.sh
}

/// Any JSON, with keys and strings from all of Unicode.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::vec(("\\PC{0,10}", inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A secret value: lower-case letters and digits, long enough to be recognisable.
fn secret() -> impl Strategy<Value = String> {
    "[a-z0-9]{12,20}".prop_map(|s| format!("s3c{s}"))
}

/// A key naming a secret, in the shapes the module documents.
fn secret_key() -> impl Strategy<Value = String> {
    let term = select(
        &[
            "password",
            "passwd",
            "passphrase",
            "secret",
            "token",
            "api key",
            "private key",
            "access key",
            "secret key",
            "cookie",
            "credential",
            "credentials",
            "authorization",
            "passwords",
            "secrets",
            "api keys",
            "cookies",
        ][..],
    );
    let word = select(&["db", "x", "my", "client", "refresh", "github", "aws", "new", "old", "user"][..]);
    let shape = 0..4u8;
    let case = 0..4u8;
    let separator = select(&["_", "-", ".", " ", ""][..]);
    (term, word, shape, case, separator, 1..100u32).prop_map(|(term, word, shape, case, separator, number)| {
        let words: Vec<String> = match shape {
            0 => vec![term.into()],
            1 => vec![word.into(), term.into()],
            2 => vec![term.into(), word.into()],
            _ => vec![term.into(), number.to_string()],
        };
        let words: Vec<&str> = words.iter().flat_map(|w| w.split(' ')).collect();
        // A word after the term needs a separator: `tokenizer` is not a token.
        let separator = if shape == 2 && separator.is_empty() { "-" } else { separator };
        match case {
            // camelCase: humps separate the words.
            0 => words.iter().enumerate().map(|(i, w)| if i == 0 { w.to_string() } else { capitalized(w) }).collect(),
            1 => words.join(separator).to_uppercase(),
            _ => words.join(separator),
        }
    })
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// What a secret-named member may hold: the secret as it is, in a number, or buried.
fn secret_value(secret: &str, number: u64) -> impl Strategy<Value = Value> + use<> {
    let secret = secret.to_owned();
    prop_oneof![
        Just(Value::from(secret.clone())),
        Just(Value::from(number)),
        any_json().prop_map(move |other| serde_json::json!({ "value": secret.clone(), "other": other })),
    ]
}

/// Puts `member` into `value` at a place `at` picks, at any depth (wrapping a leaf).
fn plant(value: &mut Value, key: String, member: Value, at: &[Index]) {
    match value {
        Value::Object(map) if !map.is_empty() && at.len() > 1 => {
            let index = at[0].index(map.len());
            let child = map.values_mut().nth(index);
            if let Some(child) = child {
                return plant(child, key, member, &at[1..]);
            }
        }
        Value::Array(items) if !items.is_empty() && at.len() > 1 => {
            let index = at[0].index(items.len());
            return plant(&mut items[index], key, member, &at[1..]);
        }
        _ => {}
    }
    match value {
        Value::Object(map) => {
            map.insert(key, member);
        }
        other => {
            let mut map = Map::new();
            map.insert("wrapped".into(), other.take());
            map.insert(key, member);
            *other = Value::Object(map);
        }
    }
}

/// Checks that `redacted` shows none of `secrets`, and that both entry points agree.
fn check_hidden(redactor: &Redactor, input: &Value, secrets: &[String]) -> Result<Value, TestCaseError> {
    let redacted = redactor.redact(input);
    let mut in_place = input.clone();
    redactor.redact_in_place(&mut in_place);
    prop_assert_eq!(&in_place, &redacted);
    let text = redacted.to_string();
    for secret in secrets {
        prop_assert!(!text.contains(secret.as_str()), "{secret:?} shows in {text}\n  input {input}");
    }
    prop_assert_eq!(redactor.redact(&redacted), redacted.clone(), "redacting again changed more");
    Ok(redacted)
}

#[test]
fn values_under_secret_keys_never_show() {
    let planted = (
        any_json(),
        prop::collection::vec(
            (secret_key(), secret(), 1_000_000_000u64.., prop::collection::vec(any::<Index>(), 0..6)),
            1..4,
        ),
    );
    let case = planted.prop_flat_map(|(value, plants)| {
        let values: Vec<_> = plants.iter().map(|(_, secret, number, _)| secret_value(secret, *number)).collect();
        (Just(value), Just(plants), values)
    });
    run(case, |(mut value, plants, members)| {
        let mut secrets = Vec::new();
        for ((key, secret, number, at), member) in plants.into_iter().zip(members) {
            prop_assert!(is_secret_key(&key), "{key:?} is not taken for a secret key");
            plant(&mut value, key, member, &at);
            secrets.extend([secret, number.to_string()]);
        }
        check_hidden(&Redactor::default(), &value, &secrets).map(drop)
    });
}

#[test]
fn configured_secrets_never_show_in_strings_keys_or_numbers() {
    let digits = "[1-9][0-9]{5,9}";
    let case =
        (any_json(), secret(), digits, "\\PC{0,6}", "\\PC{0,6}", prop::collection::vec(any::<Index>(), 0..6), 0..3u8);
    run(case, |(mut value, secret, digits, before, after, at, place)| {
        let redactor = Redactor::new([secret.clone(), digits.clone()]);
        match place {
            0 => plant(&mut value, "note".into(), Value::from(format!("{before}{secret}{after}")), &at),
            1 => plant(&mut value, format!("{before}{secret}{after}"), Value::from(1), &at),
            _ => plant(&mut value, "n".into(), Value::from(format!("7{digits}3").parse::<u64>().unwrap_or(7)), &at),
        }
        check_hidden(&redactor, &value, &[secret, digits]).map(drop)
    });
}

/// A credential of a documented shape, and the part of it that must not show.
fn credential() -> impl Strategy<Value = (String, String)> {
    let base62 = "[A-Za-z0-9]{20,30}";
    prop_oneof![
        base62.prop_map(|s| (format!("rpt_{s}"), s)),
        base62.prop_map(|s| (format!("ghp_{s}"), s)),
        base62.prop_map(|s| (format!("github_pat_{s}"), s)),
        "[A-Z0-9]{16}".prop_map(|s| (format!("AKIA{s}"), s)),
        "[a-zA-Z0-9]{12,20}".prop_map(|s| (format!("xoxb-{s}"), s)),
        base62.prop_map(|s| (format!("sk-{s}"), s)),
        base62.prop_map(|s| (format!("sk_live_{s}"), s)),
        ("[A-Za-z0-9]{10,20}", "[A-Za-z0-9]{10,20}", "[A-Za-z0-9_-]{10,30}")
            .prop_map(|(h, p, s)| (format!("eyJ{h}.{p}.{s}"), format!("{p}.{s}"))),
        "[a-z]{6}[0-9][A-Za-z0-9._~+/-]{8,20}".prop_map(|s| (format!("Bearer {s}"), s)),
        "[a-z0-9]{8,16}".prop_map(|s| (format!("postgres://app:{s}@db.internal/app"), s)),
        "[a-z0-9]{8,16}".prop_map(|s| (format!("password={s}"), s)),
        "[a-z0-9]{8,16}".prop_map(|s| (format!("api_key: {s}"), s)),
    ]
}

#[test]
fn credentials_in_free_text_never_show() {
    let around = "[ a-z,.;()]{0,12}";
    let case = (any_json(), credential(), around, around, prop::collection::vec(any::<Index>(), 0..6));
    run(case, |(mut value, (text, hidden), before, after, at)| {
        let line = format!("{before} {text} {after}");
        let redacted = Redactor::default().redact_str(&line).into_owned();
        prop_assert!(!redacted.contains(hidden.as_str()), "{hidden:?} shows in {redacted:?}");
        plant(&mut value, "message".into(), Value::from(line), &at);
        check_hidden(&Redactor::default(), &value, &[hidden]).map(drop)
    });
}

#[test]
fn any_json_and_any_text_redact_without_panicking() {
    let redactor = Redactor::new(["configured-secret", "1234"]);
    run((any_json(), "\\PC{0,64}", ".{0,64}"), |(value, key, text)| {
        let _ = redactor.redact(&value);
        let _ = is_secret_key(&key);
        let _ = redactor.redact_str(&text);
        let _ = redactor.redact_str(&key);
        Ok(())
    });
}
