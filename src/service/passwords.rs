//! Password hashing with argon2id at the OWASP-recommended parameters
//! (19 MiB of memory, 2 passes, 1 lane), off the async runtime.

use std::sync::OnceLock;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::AppResult;

fn hasher() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a new password (PHC string format, salt included).
pub async fn hash(password: &Password) -> AppResult<String> {
    let password = password.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await
    .context("password hashing task failed")??;
    Ok(hashed)
}

/// Check a password against a stored hash. A malformed hash counts as a mismatch.
pub async fn verify(password: &Password, stored_hash: &str) -> AppResult<bool> {
    let password = password.clone();
    let stored = stored_hash.to_string();
    let ok = tokio::task::spawn_blocking(move || match PasswordHash::new(&stored) {
        Ok(parsed) => hasher()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    })
    .await
    .context("password verification task failed")?;
    Ok(ok)
}

/// Spend the same time as a real check when there is no user to check
/// against, so response time does not tell which user names exist.
pub async fn verify_dummy(password: &Password) -> AppResult<()> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = match DUMMY.get() {
        Some(h) => h.clone(),
        None => {
            let h = hash(&Password::attempt("not a real password".into())?).await?;
            DUMMY.get_or_init(|| h).clone()
        }
    };
    verify(password, &dummy).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let pw = Password::new("a long enough password".into()).unwrap();
        let h = hash(&pw).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&pw, &h).await.unwrap());
        let wrong = Password::attempt("another password".into()).unwrap();
        assert!(!verify(&wrong, &h).await.unwrap());
        assert!(!verify(&pw, "not a hash").await.unwrap());
    }
}
