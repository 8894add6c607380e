//! Certificates for the TLS tests, made at run time with `rcgen`: a test CA that issues
//! server certificates (valid, expired, for another name) and client certificates.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::scratch::ScratchDir;

/// The names a server certificate from [`TestCa::server`] is valid for: every loopback
/// address a test server listens on, and `localhost`.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate authority for one test, with its certificate in a PEM file of its own
/// temporary directory (removed on drop).
///
/// ```no_run
/// use memcache_tests::{Memcached, TestCa};
///
/// let ca = TestCa::new("test CA");
/// let server = Memcached::builder().tls(&ca.server(&["127.0.0.1"])).start();
/// // a client trusts ca.pem() / ca.file() and connects to server.addr()
/// # let _ = server;
/// ```
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: ScratchDir,
    count: AtomicU32,
}

/// A certificate and its private key, as PEM text and as files (in the issuing CA's
/// directory: they live as long as the [`TestCa`]).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The file holding `cert_pem`.
    pub cert_file: PathBuf,
    /// The file holding `key_pem`.
    pub key_file: PathBuf,
}

impl TestCa {
    /// A new CA whose certificate's common name is `name`.
    ///
    /// # Panics
    /// If rcgen cannot make the certificate or the directory cannot be written.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("the CA certificate");
        let dir = ScratchDir::new();
        fs::write(dir.path().join("ca.pem"), issuer.pem()).expect("writing ca.pem");
        TestCa {
            issuer,
            dir,
            count: AtomicU32::new(0),
        }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The file holding [`pem`](Self::pem).
    pub fn file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate valid now for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Issued {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, false)
    }

    /// A server certificate for `names` that expired in 2001.
    pub fn expired_server(&self, names: &[&str]) -> Issued {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, true)
    }

    /// A client certificate (mutual TLS) whose common name is `name`.
    pub fn client(&self, name: &str) -> Issued {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth, false)
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, expired: bool) -> Issued {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("certificate parameters");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signing the certificate");
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let cert_file = self.dir.path().join(format!("cert-{n}.pem"));
        let key_file = self.dir.path().join(format!("key-{n}.pem"));
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_file,
            key_file,
        };
        fs::write(&issued.cert_file, &issued.cert_pem).expect("writing a certificate");
        fs::write(&issued.key_file, &issued.key_pem).expect("writing a key");
        issued
    }
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}
