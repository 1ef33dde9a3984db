//! The signing key of the embedded default, kept beside its SQLite file.
//!
//! Without configured `auth.signing_keys`, a key made at start-up would die with the process
//! and every token issued before a restart (the demo headers, `dishpatch token`) would answer
//! 401. On SQLite the data lives in one file on one machine, so the key is made once and kept
//! next to it (`<database file>.signing-key`, readable by its owner only); the server and the
//! `token` command both use it. Replicas over PostgreSQL share no file: they need configured
//! keys.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::config::{DatabaseUrl, Secret, SigningKey};

/// The `kid` of the kept key.
const KID: &str = "kept";

/// The keys to sign with: `configured` when there are any; else, for a SQLite file, the key
/// kept beside it (made on first use); else none, and the caller falls back to a key per
/// process.
pub fn signing_keys(
    configured: &[SigningKey],
    database: &DatabaseUrl,
) -> anyhow::Result<Vec<SigningKey>> {
    if !configured.is_empty() {
        return Ok(configured.to_vec());
    }
    let Some(path) = beside_database(database, ".signing-key") else {
        return Ok(Vec::new());
    };
    let secret = read_or_create(&path)
        .with_context(|| format!("keeping the signing key in {}", path.display()))?;
    Ok(vec![SigningKey {
        kid: KID.into(),
        secret: Secret::new(secret),
    }])
}

/// `<file><suffix>` for a `sqlite://<file>` URL (`.signing-key` for the kept key); none for
/// in-memory SQLite and PostgreSQL.
pub(crate) fn beside_database(database: &DatabaseUrl, suffix: &str) -> Option<PathBuf> {
    let url = database.expose();
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    if file.is_empty() || file == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    let mut name = Path::new(file).as_os_str().to_owned();
    name.push(suffix);
    Some(PathBuf::from(name))
}

fn read_or_create(path: &Path) -> anyhow::Result<String> {
    let secret = super::secrets::random_secret();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "made a signing key for this database's tokens");
            Ok(secret)
        }
        // Made by an earlier run (or a racing one, which wrote it before we read it back
        // below unless it is still writing: then the length check refuses it).
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let kept = std::fs::read_to_string(path)?.trim().to_owned();
            anyhow::ensure!(
                kept.len() >= 32,
                "the file is shorter than a key (32 bytes); delete it to make a new one"
            );
            Ok(kept)
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(path: &Path) -> DatabaseUrl {
        DatabaseUrl(format!("sqlite://{}?mode=rwc", path.display()))
    }

    #[test]
    fn a_sqlite_database_keeps_one_key_readable_only_by_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite(&dir.path().join("d.db"));
        let first = signing_keys(&[], &url).unwrap();
        let again = signing_keys(&[], &url).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].secret, again[0].secret);
        let key_file = dir.path().join("d.db.signing-key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = signing_keys(&[], &sqlite(&dir.path().join("e.db"))).unwrap();
        assert_ne!(first[0].secret, other[0].secret);
    }

    #[test]
    fn configured_keys_win_and_other_databases_keep_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite(&dir.path().join("d.db"));
        let configured = vec![SigningKey {
            kid: "k".into(),
            secret: Secret::new("x".repeat(32)),
        }];
        assert_eq!(signing_keys(&configured, &url).unwrap()[0].kid, "k");
        assert!(!dir.path().join("d.db.signing-key").exists());
        for url in [
            "postgres://app@db/dishpatch",
            "sqlite::memory:",
            "sqlite://x.db?mode=memory",
        ] {
            assert!(
                signing_keys(&[], &DatabaseUrl(url.into()))
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[test]
    fn a_truncated_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.db.signing-key"), "short").unwrap();
        let error = signing_keys(&[], &sqlite(&dir.path().join("d.db"))).unwrap_err();
        assert!(
            format!("{error:#}").contains("shorter than a key"),
            "{error:#}"
        );
    }
}
