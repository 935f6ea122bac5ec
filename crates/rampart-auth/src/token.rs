//! Rampart API tokens: `rpt_` + 256 random bits in base62 (43 characters) + a 6-character
//! base62 CRC32 checksum of the random part, 53 characters in all.
//!
//! The fixed prefix lets secret scanners recognise a leaked token, and the checksum lets
//! them (and us) reject a mistyped or made-up token without a database lookup. Only the
//! SHA-256 digest of a token is ever stored; the token is shown once, at creation.

use password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "rpt_";
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Length of a token, characters.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated token.
pub struct NewToken {
    /// The token itself: show it once, never store it.
    pub secret: String,
    /// Hex SHA-256 of the token: what the store keeps.
    pub digest: String,
    /// The first 8 characters, to recognise the token in listings.
    pub display_prefix: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken").field("display_prefix", &self.display_prefix).finish_non_exhaustive()
    }
}

/// Why a string is not a well-formed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    /// It does not start with `rpt_`.
    #[error("not a Rampart token (no rpt_ prefix)")]
    Prefix,
    /// Wrong length or characters outside base62.
    #[error("malformed token")]
    Shape,
    /// The checksum does not match: mistyped, truncated or invented.
    #[error("token checksum mismatch")]
    Checksum,
}

/// Base62 of `bytes` as a big-endian number, left-padded with `0` to `width`.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in &mut number {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn checksum(body: &str) -> String {
    base62(&crc32fast::hash(body.as_bytes()).to_be_bytes(), CHECKSUM_LEN)
}

/// Hex SHA-256 of a token, as stored.
pub fn token_digest(token: &str) -> String {
    // The digest's own lower-hex formatting: one allocation (a `format!` per byte was
    // 2% of the server's CPU, on every authenticated request).
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Generates a token from 256 bits of OS randomness.
pub fn generate_token() -> NewToken {
    let mut random = [0u8; 32];
    OsRng.fill_bytes(&mut random);
    let body = base62(&random, BODY_LEN);
    let secret = format!("{TOKEN_PREFIX}{body}{}", checksum(&body));
    NewToken { digest: token_digest(&secret), display_prefix: secret[..8].to_owned(), secret }
}

/// A random identifier with `prefix`, e.g. `tok_` + 12 base62 characters (64 random bits).
pub fn generate_id(prefix: &str) -> String {
    let mut random = [0u8; 8];
    OsRng.fill_bytes(&mut random);
    format!("{prefix}{}", base62(&random, 12))
}

/// Checks a token's shape and checksum (no lookup).
///
/// # Errors
/// [`TokenFormatError`].
pub fn check_token_format(token: &str) -> Result<(), TokenFormatError> {
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or(TokenFormatError::Prefix)?;
    if token.len() != TOKEN_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenFormatError::Shape);
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    if checksum(body) == sum { Ok(()) } else { Err(TokenFormatError::Checksum) }
}

/// Whether `value` looks like a Rampart token (for redaction).
pub fn looks_like_token(value: &str) -> bool {
    check_token_format(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_lower_case_hex_sha256() {
        // Stored digests must never change form, or every issued token stops working.
        assert_eq!(token_digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_eq!(a.secret.len(), TOKEN_LEN);
        assert!(a.secret.starts_with("rpt_"));
        assert_eq!(check_token_format(&a.secret), Ok(()));
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.digest, token_digest(&a.secret));
        assert_eq!(a.digest.len(), 64);
        assert!(!format!("{a:?}").contains(&a.secret[8..]), "Debug hides the secret");
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let token = generate_token().secret;
        let mut caught = 0;
        let mut total = 0;
        for position in TOKEN_PREFIX.len()..token.len() {
            for replacement in ['0', 'a', 'Z'] {
                let mut altered: Vec<char> = token.chars().collect();
                if altered[position] == replacement {
                    continue;
                }
                altered[position] = replacement;
                let altered: String = altered.into_iter().collect();
                total += 1;
                if check_token_format(&altered).is_err() {
                    caught += 1;
                }
            }
        }
        assert_eq!(caught, total, "CRC32 catches every single-character substitution");
    }

    #[test]
    fn format_table() {
        let token = generate_token().secret;
        let cases = [
            (token.clone(), Ok(())),
            (token[..token.len() - 1].to_owned(), Err(TokenFormatError::Shape)),
            (format!("{token}x"), Err(TokenFormatError::Shape)),
            (token.replacen("rpt_", "rpx_", 1), Err(TokenFormatError::Prefix)),
            (format!("rpt_{}", "!".repeat(49)), Err(TokenFormatError::Shape)),
            (String::new(), Err(TokenFormatError::Prefix)),
        ];
        for (input, expected) in cases {
            assert_eq!(check_token_format(&input), expected, "{input}");
        }
    }

    #[test]
    fn base62_is_positional() {
        assert_eq!(base62(&[0], 3), "000");
        assert_eq!(base62(&[61], 1), "z");
        assert_eq!(base62(&[62], 2), "10");
        assert_eq!(base62(&[1, 0], 2), "48");
        assert_eq!(base62(&[0xff; 32], 43).len(), 43, "256 bits fit in 43 base62 digits");
    }

    #[test]
    fn ids_have_their_prefix() {
        let id = generate_id("tok_");
        assert!(id.starts_with("tok_") && id.len() == 16, "{id}");
    }
}
