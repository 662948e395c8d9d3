//! `pinline key …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{Cli, Needs, display};
use crate::crypto::SecretKey;
use crate::error::{Error, Result};
use crate::keys::{self, KeyKind, KeySource};

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Create whichever key files are missing (mode 0600).
    Init,
    /// Re-encrypt every Support PIN under a new key. The audit key is not
    /// touched, so the chain stays verifiable.
    Rotate {
        /// Where to write the new key when the current one comes from
        /// PINLINE_PIN_KEY (which you then update).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(super) fn run(cli: &Cli, cmd: &KeyCommand) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Init => init(cli),
        KeyCommand::Rotate { out } => rotate(cli, out.as_ref()),
    }
}

fn init(cli: &Cli) -> Result<ExitCode> {
    let files = cli.key_files();
    for kind in [KeyKind::Pin, KeyKind::Audit] {
        let path = files.path(kind);
        if std::env::var_os(kind.variable()).is_some() {
            println!(
                "{} comes from {}; no file needed",
                kind.what(),
                kind.variable()
            );
        } else if path.exists() {
            println!("{} exists: {}", kind.what(), display(path));
        } else {
            keys::create_file(path, &SecretKey::generate())?;
            println!("created {}: {}", kind.what(), display(path));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate(cli: &Cli, out: Option<&PathBuf>) -> Result<ExitCode> {
    let db = cli.existing_db()?;
    // Held until the new key is in place, so no server starts meanwhile
    // with the old one.
    let _alone = cli.hold_database(
        "stop it before rotating the Support PIN key, which it cannot reread, and start it again after",
    )?;
    let files = cli.key_files();
    let expected = crate::registry::recorded_key_id(&db, KeyKind::Pin)?;
    let current = keys::load(KeyKind::Pin, &files, expected.as_deref())?;
    let registry = cli.registry_on(db, Needs::BothKeys)?;
    let new_key = SecretKey::generate();
    let target = match (&current.source, out) {
        (KeySource::Env, None) => {
            return Err(Error::Invalid(
                "the Support PIN key comes from PINLINE_PIN_KEY: give --out FILE for the new key"
                    .into(),
            ));
        }
        (_, Some(out)) => Target::Out(out.clone()),
        (KeySource::File(path), None) => Target::KeyFile(path.clone()),
    };
    // The new key is on disk before the database depends on it.
    let count = registry.rotate_pin_key(&new_key, || match &target {
        Target::Out(path) => Ok(keys::create_file(path, &new_key)?),
        Target::KeyFile(path) => Ok(keys::stage(path, &new_key)?),
    })?;
    if let Target::KeyFile(path) = &target {
        keys::commit_staged(path)?;
    }
    println!(
        "re-encrypted {count} Support PINs under key {}",
        new_key.id(KeyKind::Pin.purpose())
    );
    if let Target::Out(path) = &target {
        println!("new key written to {}; use it from now on", display(path));
    }
    Ok(ExitCode::SUCCESS)
}

enum Target {
    Out(PathBuf),
    KeyFile(PathBuf),
}
