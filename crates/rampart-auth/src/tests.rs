//! Credential checks, one table per scheme.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;

use super::*;

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[test]
fn bearer_key_table() {
    let auth = Authenticator::new(Some("s3cret-key"), None).unwrap();
    let cases: &[(Option<&str>, Result<PrincipalKind, AuthError>)] = &[
        (Some("Bearer s3cret-key"), Ok(PrincipalKind::StaticKey)),
        (Some("bearer s3cret-key"), Ok(PrincipalKind::StaticKey)),
        (Some("Bearer s3cret-kez"), Err(AuthError::Invalid)),
        (Some("Bearer s3cret-key "), Ok(PrincipalKind::StaticKey)),
        (Some("Bearer s3cret-keyy"), Err(AuthError::Invalid)),
        (Some("Bearer "), Err(AuthError::Malformed)),
        (Some("Token s3cret-key"), Err(AuthError::Malformed)),
        (Some("s3cret-key"), Err(AuthError::Malformed)),
        (None, Err(AuthError::Missing)),
        (Some(&basic("a", "s3cret-key")), Err(AuthError::Invalid)),
    ];
    for (header, expected) in cases {
        let got = auth.authenticate(*header).map(|p| p.kind);
        assert_eq!(&got, expected, "header {header:?}");
    }
}

#[test]
fn basic_table() {
    let hash = hash_password("correct horse").unwrap();
    let auth = Authenticator::new(None, Some(("alice", &hash))).unwrap();
    let cases = [
        (basic("alice", "correct horse"), Ok("basic:alice".to_string())),
        (basic("alice", "correct horse"), Ok("basic:alice".to_string())), // cached path
        (basic("alice", "wrong"), Err(AuthError::Invalid)),
        (basic("bob", "correct horse"), Err(AuthError::Invalid)),
        ("Basic !!!notbase64".to_string(), Err(AuthError::Malformed)),
        (format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("nocolon")), Err(AuthError::Malformed)),
        ("Bearer anything".to_string(), Err(AuthError::Invalid)),
    ];
    for (header, expected) in cases {
        assert_eq!(auth.authenticate(Some(&header)).map(|p| p.id), expected, "header {header}");
    }
}

#[test]
fn bad_hash_is_refused_at_start() {
    let error = Authenticator::new(None, Some(("alice", "plaintext"))).unwrap_err();
    assert!(error.to_string().contains("password_hash"));
}

#[test]
fn challenge_names_the_configured_schemes() {
    let hash = hash_password("x").unwrap();
    assert_eq!(Authenticator::new(Some("k"), None).unwrap().challenge(), r#"Bearer realm="rampart""#);
    assert!(Authenticator::new(None, Some(("a", &hash))).unwrap().challenge().starts_with("Basic"));
    assert!(!Authenticator::new(None, None).unwrap().is_enabled());
}

#[test]
fn debug_never_shows_the_key() {
    let auth = Authenticator::new(Some("s3cret-key"), None).unwrap();
    assert!(!format!("{auth:?}").contains("s3cret"));
}
