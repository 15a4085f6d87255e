//! Password hashing with Argon2id (PHC strings); the clear password is never stored.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::AuthError;

/// Hashes `password` with Argon2id and a fresh random salt.
pub fn hash(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::PasswordHash(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Argon2 takes tens of milliseconds and ~19 MiB per call: the request path runs it on the
/// blocking pool, at most one call per core at a time, so a burst of logins or signups queues
/// here instead of stalling the async workers or multiplying the memory.
static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from))
});

async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    let _slot = SLOTS
        .acquire()
        .await
        .map_err(|e| AuthError::PasswordHash(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AuthError::PasswordHash(e.to_string()))
}

/// [`hash`] off the async executor, under the concurrency cap.
pub async fn hash_off_thread(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    off_thread(move || hash(&password)).await?
}

/// [`verify`] off the async executor, under the concurrency cap.
pub async fn verify_off_thread(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    off_thread(move || verify(&password, &phc))
        .await
        .unwrap_or(false)
}

/// A random 20-character password (120 bits), for accounts created by the CLI.
pub fn generate() -> String {
    use argon2::password_hash::rand_core::RngCore;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    // 64 symbols: six bits per byte map onto the alphabet without bias.
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("correct horse"));
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("wrong", &phc));
        assert!(!verify("correct horse battery staple", "not-a-hash"));
    }
}
