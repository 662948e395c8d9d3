//! Finding the two secret keys: from the environment, or from key files
//! beside the database.
//!
//! A key file is one line of base64, mode 0600. Replacing one (key
//! rotation) writes `FILE.new` first and renames it over `FILE` only after
//! the database has committed the re-encryption; a crash in between is
//! repaired at the next load by whichever of the two the database expects.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::{AUDIT_KEY_PURPOSE, PIN_KEY_PURPOSE, SecretKey};

/// Which of the two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Encrypts Support PINs.
    Pin,
    /// Keys the audit chain's HMAC.
    Audit,
}

impl KeyKind {
    /// The environment variable that may hold the key.
    pub fn variable(self) -> &'static str {
        match self {
            KeyKind::Pin => "PINLINE_PIN_KEY",
            KeyKind::Audit => "PINLINE_AUDIT_KEY",
        }
    }

    /// What the key is for, in messages.
    pub fn what(self) -> &'static str {
        match self {
            KeyKind::Pin => "Support PIN key",
            KeyKind::Audit => "audit key",
        }
    }

    /// The purpose string of its key ID.
    pub fn purpose(self) -> &'static str {
        match self {
            KeyKind::Pin => PIN_KEY_PURPOSE,
            KeyKind::Audit => AUDIT_KEY_PURPOSE,
        }
    }

    /// The `meta` entry recording the ID of the key the database uses.
    pub fn meta_key(self) -> &'static str {
        match self {
            KeyKind::Pin => "pin_key_id",
            KeyKind::Audit => "audit_key_id",
        }
    }
}

/// A key that could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither the variable nor the file is there.
    #[error(
        "no {what}: set {variable} (32 bytes, base64) or create {path} with `pinline key init`",
        what = kind.what(), variable = kind.variable(), path = path.display()
    )]
    Missing {
        /// Which key.
        kind: KeyKind,
        /// The key file looked for.
        path: PathBuf,
    },
    /// The variable or file does not hold a key.
    #[error("{source_name} does not hold a {what}: expected 32 bytes in base64", what = kind.what())]
    Malformed {
        /// Which key.
        kind: KeyKind,
        /// The variable or file.
        source_name: String,
    },
    /// A key was found but the database was written under another.
    #[error(
        "the {what} from {source_name} (id {found}) is not the key this database uses (id {expected})",
        what = kind.what()
    )]
    Mismatch {
        /// Which key.
        kind: KeyKind,
        /// The variable or file.
        source_name: String,
        /// ID of the key found.
        found: String,
        /// ID the database expects.
        expected: String,
    },
    /// A key file could not be read or written.
    #[error("key file {path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the key files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// The Support PIN key file.
    pub pin: PathBuf,
    /// The audit key file.
    pub audit: PathBuf,
}

impl KeyFiles {
    /// The default files beside `db`: `NAME.pin.key` and `NAME.audit.key`.
    pub fn beside(db: &Path) -> Self {
        Self {
            pin: db.with_extension("pin.key"),
            audit: db.with_extension("audit.key"),
        }
    }

    /// The file of `kind`.
    pub fn path(&self, kind: KeyKind) -> &Path {
        match kind {
            KeyKind::Pin => &self.pin,
            KeyKind::Audit => &self.audit,
        }
    }
}

/// Where a loaded key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The environment variable.
    Env,
    /// This key file.
    File(PathBuf),
}

/// A key and where it was found.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The key.
    pub key: SecretKey,
    /// Its origin.
    pub source: KeySource,
}

/// Loads the key of `kind`: the environment variable wins over the file.
/// With `expected_id` (what the database recorded), a different key is an
/// error, so a wrong key never yields garbage PINs or a "broken" chain.
pub fn load(
    kind: KeyKind,
    files: &KeyFiles,
    expected_id: Option<&str>,
) -> Result<LoadedKey, KeyError> {
    let path = files.path(kind);
    let loaded = match std::env::var(kind.variable()) {
        Ok(text) => LoadedKey {
            key: SecretKey::from_base64(&text).map_err(|_| KeyError::Malformed {
                kind,
                source_name: kind.variable().to_owned(),
            })?,
            source: KeySource::Env,
        },
        Err(_) => {
            finish_interrupted_replacement(kind, path, expected_id)?;
            if !path.exists() {
                return Err(KeyError::Missing {
                    kind,
                    path: path.to_owned(),
                });
            }
            LoadedKey {
                key: read_file(kind, path)?,
                source: KeySource::File(path.to_owned()),
            }
        }
    };
    let found = loaded.key.id(kind.purpose());
    match expected_id {
        Some(expected) if expected != found => Err(KeyError::Mismatch {
            kind,
            source_name: match &loaded.source {
                KeySource::Env => kind.variable().to_owned(),
                KeySource::File(p) => p.display().to_string(),
            },
            found,
            expected: expected.to_owned(),
        }),
        _ => Ok(loaded),
    }
}

fn read_file(kind: KeyKind, path: &Path) -> Result<SecretKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let text = fs::read_to_string(path).map_err(io)?;
    let mode = fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "key file is readable by others; chmod 600 it");
    }
    SecretKey::from_base64(&text).map_err(|_| KeyError::Malformed {
        kind,
        source_name: path.display().to_string(),
    })
}

fn staged_path(path: &Path) -> PathBuf {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    PathBuf::from(staged)
}

/// A `FILE.new` left by an interrupted rotation: keep it if the database
/// committed to it, else drop it.
fn finish_interrupted_replacement(
    kind: KeyKind,
    path: &Path,
    expected_id: Option<&str>,
) -> Result<(), KeyError> {
    let staged = staged_path(path);
    if !staged.exists() {
        return Ok(());
    }
    let io = |source| KeyError::Io {
        path: staged.clone(),
        source,
    };
    let key = read_file(kind, &staged)?;
    if expected_id == Some(key.id(kind.purpose()).as_str()) {
        fs::rename(&staged, path).map_err(io)?;
        tracing::warn!(path = %path.display(), "finished an interrupted key rotation");
    } else {
        fs::remove_file(&staged).map_err(io)?;
    }
    Ok(())
}

/// Writes a new key file, refusing to overwrite one.
pub fn create_file(path: &Path, key: &SecretKey) -> Result<(), KeyError> {
    write_private(path, key).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes `key` to `FILE.new`, to be put in place by [`commit_staged`]
/// once the database no longer needs the old key.
pub fn stage(path: &Path, key: &SecretKey) -> Result<(), KeyError> {
    let staged = staged_path(path);
    // A leftover from an earlier failed attempt is of no use.
    let _ = fs::remove_file(&staged);
    create_file(&staged, key)
}

/// Moves the staged key over the key file.
pub fn commit_staged(path: &Path) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    fs::rename(staged_path(path), path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

fn write_private(path: &Path, key: &SecretKey) -> std::io::Result<()> {
    write_private_text(path, &key.to_base64())
}

/// Writes another secret (such as a demo webhook token) to a new file that
/// only its owner can read.
pub fn write_secret_file(path: &Path, secret: &str) -> Result<(), KeyError> {
    write_private_text(path, secret).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_private_text(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{text}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::beside(&dir.path().join("x.db"));
        let key = SecretKey::generate();
        create_file(&files.audit, &key).unwrap();
        let mode = fs::metadata(&files.audit).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(create_file(&files.audit, &key).is_err(), "never overwrites");
        // The environment of the test process has no PINLINE_AUDIT_KEY.
        let loaded = load(KeyKind::Audit, &files, None).unwrap();
        assert_eq!(loaded.key, key);
    }

    #[test]
    fn a_missing_key_names_the_variable_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::beside(&dir.path().join("x.db"));
        let message = load(KeyKind::Audit, &files, None).unwrap_err().to_string();
        assert!(message.contains("PINLINE_AUDIT_KEY"), "{message}");
        assert!(message.contains("x.audit.key"), "{message}");
    }

    #[test]
    fn a_key_other_than_the_expected_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::beside(&dir.path().join("x.db"));
        create_file(&files.audit, &SecretKey::generate()).unwrap();
        let err = load(KeyKind::Audit, &files, Some("0011223344556677")).unwrap_err();
        assert!(matches!(err, KeyError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn an_interrupted_rotation_resolves_to_the_key_the_database_expects() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::beside(&dir.path().join("x.db"));
        let (old, new) = (SecretKey::generate(), SecretKey::generate());
        create_file(&files.audit, &old).unwrap();
        stage(&files.audit, &new).unwrap();
        // The database did not commit: the staged key is dropped.
        let expected = old.id(KeyKind::Audit.purpose());
        let loaded = load(KeyKind::Audit, &files, Some(&expected)).unwrap();
        assert_eq!(loaded.key, old);
        assert!(!staged_path(&files.audit).exists());
        // The database committed: the staged key takes over.
        stage(&files.audit, &new).unwrap();
        let expected = new.id(KeyKind::Audit.purpose());
        let loaded = load(KeyKind::Audit, &files, Some(&expected)).unwrap();
        assert_eq!(loaded.key, new);
    }
}
