//! Key files: generated once, private, read back; the public key beside; key ids.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::test_support::ScratchDir;

#[test]
fn a_key_is_generated_once_with_its_public_key_beside_it() {
    let dir = ScratchDir::new();
    let path = dir.file("keys/audit-signing-key.pem");
    let (signer, generated) = CheckpointSigner::load_or_generate(&path).unwrap();
    assert!(generated);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let public = dir.file("keys/audit-signing-key.pub.pem");
    let public_pem = std::fs::read_to_string(&public).unwrap();
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{public_pem}");
    assert_eq!(CheckpointPublicKey::load(&public).unwrap(), *signer.public_key());

    let (again, generated) = CheckpointSigner::load_or_generate(&path).unwrap();
    assert!(!generated, "the key is kept");
    assert_eq!(again.key_id(), signer.key_id());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem, "never rewritten");
    std::fs::remove_file(&public).unwrap();
    CheckpointSigner::load_or_generate(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&public).unwrap(), public_pem, "a missing public key is written again");
    let leftovers: Vec<_> = std::fs::read_dir(dir.file("keys")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary file left: {leftovers:?}");
}

#[test]
fn two_processes_generating_at_once_end_with_one_key() {
    let dir = ScratchDir::new();
    let path = dir.file("audit-signing-key.pem");
    let first = CheckpointSigner::generate();
    let second = CheckpointSigner::generate();
    assert!(first.install(&path).unwrap());
    assert!(!second.install(&path).unwrap(), "the loser does not overwrite");
    assert_eq!(CheckpointSigner::load(&path).unwrap().key_id(), first.key_id());
}

#[test]
fn key_ids_are_16_hex_digits_of_the_public_keys_sha256() {
    let signer = CheckpointSigner::generate();
    let id = signer.key_id();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
    let expected = format!("{:x}", Sha256::digest(signer.key.verifying_key().as_bytes()));
    assert_eq!(id, &expected[..16]);
    assert_ne!(CheckpointSigner::generate().key_id(), id);
    assert!(!format!("{signer:?}").contains("key:"), "Debug shows the key id only: {signer:?}");
}

#[test]
fn bad_key_files_are_errors_naming_the_file() {
    let dir = ScratchDir::new();
    let path = dir.file("not-a-key.pem");
    std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let error = CheckpointSigner::load(&path).unwrap_err();
    assert!(matches!(error, KeyError::Format { .. }), "{error:?}");
    assert!(error.to_string().contains("not-a-key.pem"), "{error}");
    let public = CheckpointSigner::generate().public_key().to_pem();
    std::fs::write(&path, public).unwrap();
    assert!(CheckpointSigner::load(&path).is_err(), "a public key is not a signing key");
    let error = CheckpointPublicKey::load(&dir.file("missing.pub.pem")).unwrap_err();
    assert!(matches!(error, KeyError::Io { .. }) && error.to_string().contains("missing.pub.pem"), "{error}");
}

#[test]
fn the_public_key_path_is_beside_the_signing_key() {
    let cases = [
        ("/var/lib/rampart/audit-signing-key.pem", "/var/lib/rampart/audit-signing-key.pub.pem"),
        ("/etc/rampart/audit.key", "/etc/rampart/audit.key.pub.pem"),
        ("key.pem", "key.pub.pem"),
    ];
    for (key, public) in cases {
        assert_eq!(public_key_path(Path::new(key)), Path::new(public), "{key}");
    }
}
