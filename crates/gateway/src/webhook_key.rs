//! The webhook key (`CIQ_WEBHOOK_SECRET_KEY`): it encrypts the endpoints' signing
//! secrets, so a copy of the database alone cannot sign. Given, it is used; on the
//! embedded default (a SQLite file) it is made once beside the file
//! (`<file>.webhook-key`, readable by its owner only) and read from there afterwards;
//! on PostgreSQL it must be given — without it webhooks are off (adding an endpoint
//! says why) and everything else works.

use std::path::PathBuf;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use ciq_store::secret::{SecretBox, new_key};

/// The SQLite file a database URL names (`None`: PostgreSQL, or SQLite in memory).
fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Where the embedded default keeps its key: beside the database file.
pub fn key_file(database_url: &str) -> Option<PathBuf> {
    sqlite_file(database_url).map(|file| {
        let mut name = file.into_os_string();
        name.push(".webhook-key");
        PathBuf::from(name)
    })
}

/// The webhook key to use: `configured`, else the embedded default's file (made now
/// when missing), else an in-memory SQLite's own, else none.
pub fn resolve(
    database_url: &str,
    configured: Option<&SecretString>,
) -> anyhow::Result<Option<SecretBox>> {
    if let Some(key) = configured.filter(|k| !k.expose_secret().trim().is_empty()) {
        return SecretBox::from_base64(key)
            .map(Some)
            .context("CIQ_WEBHOOK_SECRET_KEY");
    }
    if database_url.starts_with("sqlite:") && sqlite_file(database_url).is_none() {
        // A store that ends with the process: so may its key.
        return Ok(Some(SecretBox::from_base64(&new_key())?));
    }
    let Some(path) = key_file(database_url) else {
        return Ok(None);
    };
    if !path.exists() {
        write_new_key(&path)?;
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the webhook key {}", path.display()))?;
    SecretBox::from_base64(&SecretString::from(text.trim()))
        .map(Some)
        .with_context(|| format!("the webhook key in {}", path.display()))
}

fn write_new_key(path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            writeln!(file, "{}", new_key().expose_secret())
                .with_context(|| format!("writing the webhook key {}", path.display()))?;
            tracing::info!(path = %path.display(), "made a webhook key for the embedded store");
            Ok(())
        }
        // Another process made it first: read theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => {
            Err(err).with_context(|| format!("creating the webhook key {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_keeps_its_key_beside_the_database() {
        let dir = std::env::temp_dir().join(format!("ciq-key-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("ciq.db").display());
        let first = resolve(&url, None).unwrap().expect("a key");
        let file = key_file(&url).unwrap();
        assert_eq!(file, dir.join("ciq.db.webhook-key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The same key next time: what it sealed opens.
        let id = uuid::Uuid::now_v7();
        let sealed = first.seal(id, &"whsec_x".to_owned().into());
        let again = resolve(&url, None).unwrap().unwrap();
        assert_eq!(again.open(id, &sealed).unwrap().expose_secret(), "whsec_x");
        // PostgreSQL without a configured key: none; a bad one: an error.
        assert!(
            resolve("postgres://postgres@127.0.0.1/test", None)
                .unwrap()
                .is_none()
        );
        let bad = SecretString::from("short");
        assert!(resolve(&url, Some(&bad)).is_err());
        assert!(resolve("sqlite::memory:", None).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
