//! The Ed25519 keys of signed checkpoints: [`CheckpointSigner`] (the server's private key,
//! generated on first use) and [`CheckpointPublicKey`] (what a verifier needs), and their
//! PEM files.
//!
//! # Files
//! - The signing key: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`; RFC 5958 with the
//!   Ed25519 algorithm identifier of RFC 8410), created with mode 0600 and never
//!   rewritten. It must live outside the audit store: whoever can read it can sign
//!   checkpoints for a rewritten log.
//! - The public key: SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`, RFC 8410),
//!   written beside the signing key as [`public_key_path`] (`audit-signing-key.pem` →
//!   `audit-signing-key.pub.pem`), mode 0644. Hand it to whoever verifies the log.
//!
//! # Key id
//! The first 16 lower-case hex digits (8 bytes) of the SHA-256 of the public key's 32
//! bytes (its RFC 8032 §5.1.5 encoding). It names the key in a checkpoint; the signature,
//! not the id, is what proves who signed.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

use ed25519_dalek::{
    Signature, Signer, SigningKey, VerifyingKey,
    pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
};
use sha2::{Digest, Sha256};

/// Hex digits of a key id.
const KEY_ID_HEX_DIGITS: usize = 16;

/// Why a key could not be generated, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file operation failed.
    #[error("audit signing key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The file is not a PEM Ed25519 key of the expected kind.
    #[error("audit signing key {path}: not an Ed25519 {kind} in PEM: {message}")]
    Format {
        /// The key file.
        path: PathBuf,
        /// `private key (PKCS#8)` or `public key (SubjectPublicKeyInfo)`.
        kind: &'static str,
        /// What the decoder said.
        message: String,
    },
}

/// The server's private key for checkpoints.
pub struct CheckpointSigner {
    key: SigningKey,
    public: CheckpointPublicKey,
}

impl std::fmt::Debug for CheckpointSigner {
    /// The key id only: never the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner").field("key_id", &self.public.key_id).finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A new random key, from the operating system's random source (`getrandom`).
    pub fn generate() -> Self {
        Self::from_key(SigningKey::generate(&mut rand_core::OsRng))
    }

    fn from_key(key: SigningKey) -> Self {
        let public = CheckpointPublicKey::from_key(key.verifying_key());
        Self { key, public }
    }

    /// Reads the PKCS#8 PEM key at `path` (blocking). Warns (tracing) when the file is
    /// readable by other users.
    ///
    /// # Errors
    /// [`KeyError::Io`] when it cannot be read, [`KeyError::Format`] when it is not an
    /// Ed25519 private key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(io_error(path))?;
        warn_if_readable_by_others(path);
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|error| KeyError::Format {
            path: path.to_path_buf(),
            kind: "private key (PKCS#8)",
            message: error.to_string(),
        })?;
        Ok(Self::from_key(key))
    }

    /// Reads the key at `path`, or, when there is no file there, generates one and writes
    /// it (mode 0600, its directory created) with its public key beside it
    /// ([`public_key_path`]). Returns the key and whether it was generated now. Blocking.
    ///
    /// Safe against another process doing the same at once (a server and a `rampart token`
    /// command): the key is written to a temporary file and linked into place only if no
    /// key is there yet; whoever loses the race reads the winner's key. A missing public
    /// key file is written again from the private key.
    ///
    /// # Errors
    /// [`KeyError`] naming the file.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), KeyError> {
        let generated = match std::fs::exists(path).map_err(io_error(path))? {
            true => false,
            false => Self::generate().install(path)?,
        };
        let signer = Self::load(path)?;
        let public = public_key_path(path);
        if !std::fs::exists(&public).map_err(io_error(&public))? {
            write_new(&public, signer.public.to_pem().as_bytes(), 0o644)?;
        }
        Ok((signer, generated))
    }

    /// Writes this key to `path` unless a key is there already; returns whether it did.
    fn install(&self, path: &Path) -> Result<bool, KeyError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let pem = self.key.to_pkcs8_pem(LineEnding::LF).map_err(|error| KeyError::Format {
            path: path.to_path_buf(),
            kind: "private key (PKCS#8)",
            message: error.to_string(),
        })?;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".tmp-{}", std::process::id()));
        let temporary = PathBuf::from(temporary);
        write_new(&temporary, pem.as_bytes(), 0o600)?;
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                sync_directory(path);
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(io_error(path)(error)),
        }
    }

    /// The public half.
    pub fn public_key(&self) -> &CheckpointPublicKey {
        &self.public
    }

    /// The key id (see the module docs).
    pub fn key_id(&self) -> &str {
        &self.public.key_id
    }

    /// The Ed25519 signature (RFC 8032 §5.1.6, pure Ed25519) of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

/// The public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointPublicKey {
    key: VerifyingKey,
    key_id: String,
}

impl CheckpointPublicKey {
    fn from_key(key: VerifyingKey) -> Self {
        let digest = format!("{:x}", Sha256::digest(key.as_bytes()));
        Self { key, key_id: digest[..KEY_ID_HEX_DIGITS].to_owned() }
    }

    /// Reads a SubjectPublicKeyInfo PEM file (blocking).
    ///
    /// # Errors
    /// [`KeyError::Io`] when it cannot be read, [`KeyError::Format`] when it is not an
    /// Ed25519 public key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(io_error(path))?;
        Self::from_pem(&pem).map_err(|message| KeyError::Format {
            path: path.to_path_buf(),
            kind: "public key (SubjectPublicKeyInfo)",
            message,
        })
    }

    /// Parses a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// # Errors
    /// What the decoder said.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        VerifyingKey::from_public_key_pem(pem.trim()).map(Self::from_key).map_err(|error| error.to_string())
    }

    /// The SubjectPublicKeyInfo PEM, ending in a newline.
    pub fn to_pem(&self) -> String {
        // Encoding 32 bytes into a fixed structure cannot fail; an empty string would not
        // parse back, loudly.
        self.key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The key id (see the module docs).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `signature` is this key's signature of `message`, under RFC 8032's
    /// verification with the stricter checks of `verify_strict` (no small-order keys or
    /// malleable signatures).
    pub(crate) fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.key.verify_strict(message, signature).is_ok()
    }
}

/// Where the public key of the signing key at `signing_key` is written: `.pem` replaced by
/// `.pub.pem` (`audit-signing-key.pem` → `audit-signing-key.pub.pem`), or `.pub.pem`
/// appended to a name without `.pem`.
pub fn public_key_path(signing_key: &Path) -> PathBuf {
    let name = signing_key.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".pem").unwrap_or(&name);
    signing_key.with_file_name(format!("{stem}.pub.pem"))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_path_buf(), source }
}

/// Creates `path` (it must not exist) with `mode` and `bytes`, flushed to disk.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file: File = options.open(path).map_err(io_error(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error(path))
}

/// Makes a new directory entry durable (best effort: a key that is lost in a crash right
/// after its creation is generated again).
fn sync_directory(path: &Path) {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|dir| dir.sync_all());
    }
}

/// The key is created 0600; one that was copied or restored may be more open than that.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "audit signing key is accessible to other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests;
