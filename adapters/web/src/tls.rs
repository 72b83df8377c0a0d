//! TLS for every endpoint (P4.5(3), P4.6(1)): rustls only, TLS 1.2 and 1.3 with
//! rustls' safe defaults; no plaintext listener exists. The embedded default is a
//! self-signed certificate kept in the data directory (`DATA/tls/`), created on
//! first start; deployments pass their own certificate and key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::WebError;

#[derive(Debug, Clone)]
pub enum TlsSource {
    /// `DIR/cert.pem` and `DIR/key.pem`, created self-signed (localhost, 127.0.0.1,
    /// ::1) if absent.
    SelfSigned { dir: PathBuf },
    /// PEM files from elsewhere (a real certificate).
    Pem { cert: PathBuf, key: PathBuf },
}

impl TlsSource {
    /// The self-signed default inside a data directory.
    pub fn in_data_dir(root: &Path) -> Self {
        TlsSource::SelfSigned {
            dir: root.join("tls"),
        }
    }
}

/// Certificate chain and key in PEM.
pub struct Material {
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn load(source: &TlsSource) -> Result<Material, WebError> {
    match source {
        TlsSource::Pem { cert, key } => Ok(Material {
            cert_pem: std::fs::read_to_string(cert)?,
            key_pem: std::fs::read_to_string(key)?,
        }),
        TlsSource::SelfSigned { dir } => {
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if cert.exists() && key.exists() {
                return Ok(Material {
                    cert_pem: std::fs::read_to_string(cert)?,
                    key_pem: std::fs::read_to_string(key)?,
                });
            }
            let names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ];
            let ck = rcgen::generate_simple_self_signed(names)
                .map_err(|e| WebError::Tls(format!("self-signed certificate: {e}")))?;
            let m = Material {
                cert_pem: ck.cert.pem(),
                key_pem: ck.key_pair.serialize_pem(),
            };
            std::fs::create_dir_all(dir)?;
            set_mode(dir, 0o700)?;
            // The key first, private from the start; the certificate is public.
            // Each whole or not at all (issue 19): a start killed between the key
            // and the certificate leaves a key alone, which the next start
            // replaces with a new pair; written in place with `create_new`, that
            // key (or an empty one) made every later start fail.
            mebyo_store::fsio::write_atomic_mode(&key, m.key_pem.as_bytes(), 0o600)?;
            mebyo_store::fsio::write_atomic_mode(&cert, m.cert_pem.as_bytes(), 0o644)?;
            Ok(m)
        }
    }
}

pub fn server_config(m: &Material) -> Result<Arc<rustls::ServerConfig>, WebError> {
    let certs = rustls_pemfile::certs(&mut m.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebError::Tls(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(WebError::Tls("no certificate in the PEM".into()));
    }
    let key = rustls_pemfile::private_key(&mut m.key_pem.as_bytes())
        .map_err(|e| WebError::Tls(format!("key PEM: {e}")))?
        .ok_or_else(|| WebError::Tls("no private key in the PEM".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| WebError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first start killed after the key and before the certificate (issue
    /// 19): the next start makes a new pair, private key and all, rather than
    /// failing on the key left alone.
    #[test]
    fn a_key_left_without_its_certificate_is_replaced_by_a_new_pair() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let source = TlsSource::in_data_dir(tmp.path());
        let first = load(&source).unwrap();
        let dir = tmp.path().join("tls");
        std::fs::remove_file(dir.join("cert.pem")).unwrap();
        std::fs::write(dir.join("key.pem.tmp"), "a cut write").unwrap();
        let second = load(&source).unwrap();
        assert_ne!(second.key_pem, first.key_pem);
        server_config(&second).expect("a pair that goes together");
        let key = std::fs::metadata(dir.join("key.pem")).unwrap();
        assert_eq!(key.permissions().mode() & 0o077, 0, "the key stays private");
        assert!(!dir.join("key.pem.tmp").exists());
        // And a whole pair is kept as it is.
        let third = load(&source).unwrap();
        assert_eq!(third.cert_pem, second.cert_pem);
    }
}
