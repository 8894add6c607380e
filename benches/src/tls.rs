//! TLS for the `--tls` rows (feature `tls`): a certificate made at start (a CA and a
//! server certificate for 127.0.0.1, by rcgen) in a temporary directory, for the
//! memcached the benchmark starts with a TLS listener, and the client configuration that
//! trusts it.

use std::fs;
use std::path::PathBuf;

use memcache_core::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};

use crate::BenchResult;

/// The certificate files of a TLS memcached, removed on drop.
pub struct Certs {
    dir: PathBuf,
    ca_pem: String,
}

impl Certs {
    /// A new CA and a server certificate for `127.0.0.1` it signed.
    ///
    /// # Errors
    /// When rcgen fails or the files cannot be written.
    pub fn make() -> BenchResult<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &ca)?;
        let dir = std::env::temp_dir().join(format!("memcache-benches-tls-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let certs = Certs {
            dir,
            ca_pem: ca.pem(),
        };
        fs::write(certs.chain(), cert.pem())?;
        fs::write(certs.key(), key.serialize_pem())?;
        Ok(certs)
    }

    /// The server's certificate chain, PEM.
    pub fn chain(&self) -> PathBuf {
        self.dir.join("server-cert.pem")
    }

    /// The server's key, PEM.
    pub fn key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }

    /// The files for [`Memcached::start_with_tls`](crate::server::Memcached::start_with_tls).
    pub fn files(&self) -> (PathBuf, PathBuf) {
        (self.chain(), self.key())
    }

    /// A client configuration that trusts the CA, with every other TLS setting at its
    /// default.
    pub fn client_config(&self) -> TlsConfig {
        TlsConfig::new().ca_pem(&self.ca_pem)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
