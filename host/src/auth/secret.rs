//! The HS256 secret: the configured one, or — when the operator configured
//! no JWT key at all — a random one generated on first start and kept in a
//! file only the server's user can read. There is deliberately no built-in
//! default: a secret written in the source would let anyone mint tokens.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::AuthError;
use crate::config::Config;

/// Bytes of randomness in a generated secret (hex-encoded in the file).
const SECRET_BYTES: usize = 32;

/// The HS256 secret this configuration verifies with: the configured
/// `auth.jwt_secret`; none when only an RS256 key is configured (such a
/// server accepts no HS256 token at all); otherwise the generated secret
/// from [`secret_path`], created on first use.
///
/// # Errors
/// The secret file cannot be read or created.
pub fn hs256_secret(config: &Config) -> Result<Option<String>, AuthError> {
    let auth = &config.auth;
    if let Some(secret) = auth.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
        return Ok(Some(secret.to_owned()));
    }
    if auth.has_jwt_key() {
        return Ok(None);
    }
    load_or_create(&secret_path(config)).map(Some)
}

/// Where the generated secret lives: `auth.secret_file`, or `jwt-secret`
/// beside the store file (the data directory).
pub fn secret_path(config: &Config) -> PathBuf {
    if let Some(path) = &config.auth.secret_file {
        return path.clone();
    }
    let dir = config
        .store
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    dir.join("jwt-secret")
}

fn load_or_create(path: &Path) -> Result<String, AuthError> {
    let secret_error = |e: std::io::Error| AuthError::Secret {
        path: path.to_owned(),
        message: e.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode())
                .map_err(secret_error)?;
            if mode & 0o077 != 0 {
                tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "the JWT secret file is readable by other users; chmod 600 it");
            }
            return Ok(text.trim().to_owned());
        }
        Ok(_) => {
            return Err(AuthError::Secret {
                path: path.to_owned(),
                message: "the file is empty; delete it to generate a new secret".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(secret_error(e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(secret_error)?;
    }
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Secret {
        path: path.to_owned(),
        message: format!("no randomness: {e}"),
    })?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Written aside, then linked into place: a process starting at the same
    // moment (a server and `switchboard token`) either wins the link or
    // reads the winner's complete file, never a half-written one.
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(secret.as_bytes()).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(secret_error(e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), "generated a random HS256 secret (no auth key was configured); `switchboard token` signs with it");
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(e) => Err(secret_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let mut config = Config::default();
        config.store.path = dir.path().join("db/store.redb");
        let first = hs256_secret(&config).expect("secret").expect("some");
        assert_eq!(first.len(), SECRET_BYTES * 2);
        let path = dir.path().join("db/jwt-secret");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(hs256_secret(&config).expect("again"), Some(first));
    }

    #[test]
    fn rs256_only_has_no_hs256_secret() {
        let mut config = Config::default();
        config.auth.jwt_public_key_pem = Some("pem".into());
        assert_eq!(hs256_secret(&config).expect("resolved"), None);
        config.auth.jwt_secret = Some("s".into());
        assert_eq!(
            hs256_secret(&config).expect("resolved").as_deref(),
            Some("s")
        );
    }
}
