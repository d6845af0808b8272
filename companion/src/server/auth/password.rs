//! The operator's password: argon2id PHC strings, made and checked.

use crate::error::{Error, Result};
use argon2::password_hash::PasswordVerifier;
use argon2::Argon2;

/// Checks a password against an argon2 PHC string (its own parameters apply).
pub fn verify_password(phc: &str, password: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// An argon2id PHC string with the library's recommended parameters and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| Error::Other(format!("argon2: {e}")))
}

/// A PHC string with cheap parameters, for tests only (debug builds make the
/// recommended ones take seconds).
pub fn hash_password_cheap(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    let params = argon2::Params::new(8, 1, 1, None).map_err(|e| Error::Other(format!("argon2: {e}")))?;
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Other(format!("argon2: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let phc = hash_password_cheap("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsE"));
        assert!(!verify_password("not a phc", "x"));
    }
}
