//! The checkpoint signing key: `DATA/keys/checkpoint.key` (the Go-compatible
//! `PRIVATE+KEY+...` string, mode 0600) and its public verifier key
//! `DATA/keys/checkpoint.vkey` (mode 0644, meant to be published).
//!
//! The key name, which is also the checkpoint origin, embeds the ledger id, so a
//! verifier key pins one ledger: a checkpoint of another ledger (or a key reused
//! for one) cannot pass for this one's.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mebyo_store::EmbeddedStore;
use mebyo_store::format::Id128;
use mebyo_store::log::FileHeader;
use mebyo_tlog::{NoteSigner, NoteVerifier};

pub const KEY_FILE: &str = "checkpoint.key";
pub const VKEY_FILE: &str = "checkpoint.vkey";
/// Key files are one line; anything longer is not ours.
const KEY_FILE_BYTES_MAX: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0}: no ledger here yet; the checkpoint key is named after the ledger id, so create the ledger first"
    )]
    NoLedger(PathBuf),
    #[error("{path}: cannot read the ledger header: {reason}")]
    Header { path: PathBuf, reason: String },
    #[error("{0} is readable by group or others; a signing key must be mode 0600")]
    TooOpen(PathBuf),
    #[error("{path} is not a valid key: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{0} does not match checkpoint.key; refusing to overwrite a published verifier key")]
    VkeyMismatch(PathBuf),
    #[error("{0}: no verifier key (run `mebyo audit checkpoint` once, or pass --vkey)")]
    NoVkey(PathBuf),
}

pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    keys_dir(data_dir).join(KEY_FILE)
}

pub fn vkey_path(data_dir: &Path) -> PathBuf {
    keys_dir(data_dir).join(VKEY_FILE)
}

/// The checkpoint origin (and key name) of the ledger with this id.
pub fn checkpoint_origin(ledger_id: &Id128) -> String {
    format!("mebyo-ledger/{}", hex::encode(ledger_id))
}

/// The id of the ledger in `data_dir`, from its header (read-only).
pub fn ledger_id(data_dir: &Path) -> Result<Id128, KeyError> {
    let path = EmbeddedStore::log_path(&data_dir.join("ledger"));
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::NoLedger(data_dir.to_path_buf()));
        }
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    FileHeader::read_from(&file)
        .map(|h| h.ledger_id)
        .map_err(|e| KeyError::Header {
            path,
            reason: e.to_string(),
        })
}

/// Returns the checkpoint signer and its verifier key string, creating the key
/// on first use. `mebyo init` calls this right after creating the ledger, so the
/// verifier key exists (and can be published) before the first checkpoint.
///
/// Creation uses `create_new`, so two processes racing here cannot end up with
/// different keys: the loser reads the winner's.
pub fn ensure_checkpoint_key(data_dir: &Path) -> Result<(NoteSigner, String), KeyError> {
    let dir = keys_dir(data_dir);
    let key = key_path(data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    if !key.exists() {
        let origin = checkpoint_origin(&ledger_id(data_dir)?);
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io(&dir))?;
        }
        let signer =
            NoteSigner::generate(&origin, &mut rand::rng()).map_err(|e| KeyError::Malformed {
                path: key.clone(),
                reason: e.to_string(),
            })?;
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
        {
            Ok(mut f) => {
                let mut line = signer.to_skey();
                line.push('\n');
                f.write_all(line.as_bytes()).map_err(io(&key))?;
                f.sync_all().map_err(io(&key))?;
                fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(&dir))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&key)(e)),
        }
    }
    let signer = load_signer(data_dir)?;
    let vkey = signer.verifier().to_vkey();
    write_vkey(data_dir, &vkey)?;
    Ok((signer, vkey))
}

/// Writes the public verifier key if it is missing; refuses to replace a
/// different one (a published key silently changing would break every auditor).
fn write_vkey(data_dir: &Path, vkey: &str) -> Result<(), KeyError> {
    let path = vkey_path(data_dir);
    match read_small(&path) {
        Ok(existing) if existing.trim_end() == vkey => return Ok(()),
        Ok(_) => return Err(KeyError::VkeyMismatch(path)),
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    let tmp = path.with_extension("vkey.tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(format!("{vkey}\n").as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    // The mode given at open is masked by the umask; the key is public by design.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}

fn read_small(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut s = String::new();
    fs::File::open(path)
        .map_err(io)?
        .take(KEY_FILE_BYTES_MAX)
        .read_to_string(&mut s)
        .map_err(io)?;
    Ok(s)
}

/// Loads the signer, refusing a key file that others can read.
pub fn load_signer(data_dir: &Path) -> Result<NoteSigner, KeyError> {
    let path = key_path(data_dir);
    let meta = fs::metadata(&path).map_err(|source| KeyError::Io {
        path: path.clone(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyError::TooOpen(path));
    }
    let s = read_small(&path)?;
    NoteSigner::from_skey(s.trim_end()).map_err(|e| KeyError::Malformed {
        path,
        reason: e.to_string(),
    })
}

/// Reads a verifier key file (`<name>+<id>+<key>`, one line).
pub fn load_vkey(path: &Path) -> Result<NoteVerifier, KeyError> {
    let s = match read_small(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::NoVkey(path.to_path_buf()));
        }
        r => r?,
    };
    NoteVerifier::from_vkey(s.trim()).map_err(|e| KeyError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(dir: &Path) {
        EmbeddedStore::create(&dir.join("ledger"), [7; 16], 0).unwrap();
    }

    #[test]
    fn key_is_created_once_private_and_its_vkey_public() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            ensure_checkpoint_key(tmp.path()),
            Err(KeyError::NoLedger(_))
        ));
        ledger(tmp.path());
        let (s1, v1) = ensure_checkpoint_key(tmp.path()).unwrap();
        let (s2, v2) = ensure_checkpoint_key(tmp.path()).unwrap();
        assert_eq!(v1, v2);
        assert_eq!(s1.key_id(), s2.key_id());
        assert_eq!(s1.name(), checkpoint_origin(&[7; 16]));
        let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(key_path(tmp.path())), 0o600);
        assert_eq!(mode(vkey_path(tmp.path())), 0o644);
        assert_eq!(load_vkey(&vkey_path(tmp.path())).unwrap().to_vkey(), v1);
        // A key file others can read is refused rather than used.
        fs::set_permissions(key_path(tmp.path()), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load_signer(tmp.path()), Err(KeyError::TooOpen(_))));
        // A replaced public key is not silently overwritten.
        fs::set_permissions(key_path(tmp.path()), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(vkey_path(tmp.path()), "other+01020304+AQ==\n").unwrap();
        assert!(matches!(
            ensure_checkpoint_key(tmp.path()),
            Err(KeyError::VkeyMismatch(_))
        ));
    }
}
