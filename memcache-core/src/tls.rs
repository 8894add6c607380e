//! TLS settings (feature `tls`): [`TlsConfig`], what [`ClientBuilder::tls`] takes, and
//! what [`ClientBuilder::build`] makes of it (a rustls client configuration, checked once).
//!
//! [`ClientBuilder::tls`]: crate::ClientBuilder::tls
//! [`ClientBuilder::build`]: crate::ClientBuilder::build

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::{Error, IllegalInput, Result};

/// How a client speaks TLS to its servers (feature `tls`): which certificates it trusts,
/// the client certificate it shows (mutual TLS), and the name it verifies. Give it to
/// [`ClientBuilder::tls`](crate::ClientBuilder::tls), or write `memcaches://` in a URL.
///
/// - **Trusted roots.** The CAs added with [`ca_file`](Self::ca_file) or
///   [`ca_pem`](Self::ca_pem); when none is added, Mozilla's roots (the `webpki-roots`
///   crate, compiled in). [`webpki_roots`](Self::webpki_roots) and
///   [`platform_roots`](Self::platform_roots) add Mozilla's roots or the system's store
///   (read by `rustls-native-certs`) to, or instead of, those.
/// - **Client certificate.** [`client_cert_files`](Self::client_cert_files) or
///   [`client_cert_pem`](Self::client_cert_pem), for a server that requires one
///   (memcached's `ssl_verify_mode=2`). Default: none.
/// - **Server name.** The name verified in the server's certificate, and sent as SNI: each
///   server's host (an IP address is verified as one) unless
///   [`server_name`](Self::server_name) says otherwise.
/// - **Your own rustls configuration**: [`from_rustls`](Self::from_rustls), for anything
///   else (other roots or verifiers, ALPN, session storage, key logging).
///
/// Nothing is read before [`ClientBuilder::build`](crate::ClientBuilder::build), which
/// reads the PEM files and refuses, with [`Error::IllegalInput`], a file that cannot be
/// read, PEM without a certificate, a bad key, or an invalid server name. Its `Debug` shows
/// where certificates come from, never a key.
///
/// ```
/// use memcache_core::{Client, TlsConfig};
///
/// # fn demo(ca_pem: &[u8]) -> Result<(), memcache_core::Error> {
/// let client = Client::builder()
///     .server("10.0.0.7:11211")
///     .tls(TlsConfig::new().ca_pem(ca_pem).server_name("cache.internal"))
///     .build()?;
/// # let _ = client;
/// # Ok(()) }
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    cas: Vec<Pem>,
    webpki_roots: Option<bool>,
    platform_roots: bool,
    client_cert: Option<(Pem, Pem)>,
    server_name: Option<String>,
    rustls: Option<Custom>,
}

/// PEM text, or the file holding it.
#[derive(Clone, PartialEq, Eq)]
enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A user's own rustls configuration. Compared by identity (the url tests compare
/// configurations).
#[derive(Clone)]
struct Custom(Arc<rustls::ClientConfig>);

impl PartialEq for Custom {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Custom {}

impl TlsConfig {
    /// TLS that trusts Mozilla's roots, shows no client certificate and verifies each
    /// server's host: what a server with a public certificate needs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificates in this PEM file (every certificate in it), in place of
    /// Mozilla's roots unless [`webpki_roots`](Self::webpki_roots) keeps them. Call it again
    /// for more files. Read by [`build`](crate::ClientBuilder::build).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cas.push(Pem::File(path.into()));
        self
    }

    /// Trusts the CA certificates in this PEM text, as [`ca_file`](Self::ca_file) does.
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.cas.push(Pem::Bytes(pem.as_ref().to_vec()));
        self
    }

    /// Whether Mozilla's roots (the `webpki-roots` crate) are trusted. Default: only when
    /// no CA is added with [`ca_file`](Self::ca_file) or [`ca_pem`](Self::ca_pem), nor
    /// [`platform_roots`](Self::platform_roots) asked for.
    pub fn webpki_roots(mut self, on: bool) -> Self {
        self.webpki_roots = Some(on);
        self
    }

    /// Whether the platform's certificate store is trusted (read by `rustls-native-certs`
    /// at [`build`](crate::ClientBuilder::build), which fails if it holds no usable
    /// certificate). Default: off.
    pub fn platform_roots(mut self, on: bool) -> Self {
        self.platform_roots = on;
        self
    }

    /// The client certificate (mutual TLS): the certificate chain's PEM file, leaf first,
    /// and its private key's (PKCS#8, PKCS#1 or SEC1). Read by
    /// [`build`](crate::ClientBuilder::build).
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((Pem::File(cert.into()), Pem::File(key.into())));
        self
    }

    /// The client certificate (mutual TLS) as PEM text: the chain, leaf first, and its
    /// private key.
    pub fn client_cert_pem(mut self, cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.client_cert = Some((
            Pem::Bytes(cert.as_ref().to_vec()),
            Pem::Bytes(key.as_ref().to_vec()),
        ));
        self
    }

    /// The name to verify in every server's certificate and to send as SNI, when it is not
    /// the host the client connects to (an IP address, or a load balancer's name): a DNS
    /// name or an IP address. Default: each server's own host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// TLS as your own rustls configuration says (its roots or verifier, client
    /// certificate, protocol versions, session storage, ALPN). Combine it with
    /// [`server_name`](Self::server_name) only: [`build`](crate::ClientBuilder::build)
    /// refuses roots or a client certificate set beside it. The rustls version is the one
    /// re-exported as [`memcache_core::rustls`](crate::rustls).
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> Self {
        TlsConfig {
            rustls: Some(Custom(config)),
            ..Self::default()
        }
    }

    /// Checks everything and makes the rustls configuration the connections use.
    pub(crate) fn build(&self) -> Result<Tls> {
        let server_name = match &self.server_name {
            Some(name) => Some(server_name(name).map_err(|reason| {
                refuse(format!(
                    "server_name {name:?} is not a DNS name or IP address: {reason}"
                ))
            })?),
            None => None,
        };
        let config = match &self.rustls {
            Some(custom) => {
                let extra = !self.cas.is_empty()
                    || self.webpki_roots.is_some()
                    || self.platform_roots
                    || self.client_cert.is_some();
                if extra {
                    return Err(refuse(
                        "from_rustls brings its own roots and client certificate: set them in \
                         the rustls::ClientConfig, not beside it"
                            .into(),
                    ));
                }
                Arc::clone(&custom.0)
            }
            None => Arc::new(self.client_config()?),
        };
        Ok(Tls {
            config,
            server_name,
            settings: self.clone(),
        })
    }

    fn client_config(&self) -> Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in &self.cas {
            let pem = ca.load("ca")?;
            let certs =
                certificates(&pem).map_err(|reason| refuse(format!("ca {ca:?}: {reason}")))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| refuse(format!("ca {ca:?}: a certificate is not usable: {e}")))?;
            }
        }
        if self.platform_roots {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "it is empty".to_owned(), ToString::to_string);
                return Err(refuse(format!(
                    "platform_roots: no usable certificate in the platform's store ({why})"
                )));
            }
        }
        let webpki = self
            .webpki_roots
            .unwrap_or(self.cas.is_empty() && !self.platform_roots);
        if webpki {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if roots.is_empty() {
            return Err(refuse(
                "no trusted roots: add a CA (ca_file, ca_pem), or turn webpki_roots or \
                 platform_roots on"
                    .into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| refuse(format!("the ring provider: {e}")))?
            .with_root_certificates(roots);
        Ok(match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(&cert.load("client certificate")?)
                    .map_err(|reason| refuse(format!("client certificate {cert:?}: {reason}")))?;
                let key_pem = key.load("client key")?;
                let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    refuse(format!(
                        "client key {key:?}: no usable private key in the PEM ({e})"
                    ))
                })?;
                builder.with_client_auth_cert(chain, private).map_err(|e| {
                    refuse(format!("client certificate {cert:?} and key {key:?}: {e}"))
                })?
            }
        })
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("TlsConfig");
        out.field("ca", &self.cas)
            .field("webpki_roots", &self.webpki_roots)
            .field("platform_roots", &self.platform_roots);
        match &self.client_cert {
            Some((cert, _)) => out
                .field("client_cert", cert)
                .field("client_key", &"<redacted>"),
            None => out.field("client_cert", &None::<()>),
        };
        out.field("server_name", &self.server_name)
            .field(
                "rustls",
                &self.rustls.as_ref().map(|_| "<a rustls::ClientConfig>"),
            )
            .finish()
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "{path:?}"),
            Pem::Bytes(bytes) => write!(f, "<{} bytes of PEM>", bytes.len()),
        }
    }
}

impl Pem {
    /// The PEM text (a file's read now); `what` names it in the error.
    fn load(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::Bytes(bytes) => Ok(bytes.clone()),
            Pem::File(path) => std::fs::read(path)
                .map_err(|e| refuse(format!("{what} file {path:?} cannot be read: {e}"))),
        }
    }
}

/// The certificates of PEM text: at least one, each well formed.
fn certificates(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM (a \"BEGIN CERTIFICATE\" section)".into());
    }
    Ok(certs)
}

/// A name to verify: a DNS name or an IP address.
fn server_name(name: &str) -> std::result::Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())
}

fn refuse(what: String) -> Error {
    Error::IllegalInput(IllegalInput::Argument(format!("tls: {what}")))
}

/// A client's TLS, ready for its connections: the rustls configuration, and the name to
/// verify when it is not each server's host.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
    /// What it was made from, for `Debug`.
    settings: TlsConfig,
}

impl Tls {
    /// The name to verify for a server whose host is `host`.
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => server_name(host).map_err(|reason| {
                refuse(format!(
                    "the host {host:?} is not a DNS name or IP address to verify ({reason}): \
                     set TlsConfig::server_name"
                ))
            }),
        }
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_PEM: &[u8] =
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";

    fn refused(config: TlsConfig) -> String {
        let error = config.build().expect_err("refused");
        assert!(error.is_illegal_input(), "{error:?}");
        error.to_string()
    }

    #[test]
    fn bad_certificates_and_keys_are_refused_at_build() {
        assert!(refused(TlsConfig::new().ca_pem(NOT_PEM)).contains("bad PEM"));
        assert!(refused(TlsConfig::new().ca_pem("hello")).contains("no certificate"));
        let missing = refused(TlsConfig::new().ca_file("/nonexistent/ca.pem"));
        assert!(missing.contains("/nonexistent/ca.pem") && missing.contains("cannot be read"));
        assert!(refused(TlsConfig::new().server_name("not a name")).contains("server_name"));
        let no_roots = TlsConfig::new().webpki_roots(false);
        assert!(refused(no_roots).contains("no trusted roots"));
    }

    #[test]
    fn mozillas_roots_by_default() {
        let tls = TlsConfig::new().build().unwrap();
        assert!(tls.name_for("127.0.0.1").is_ok() && tls.name_for("cache.internal").is_ok());
        assert!(tls.name_for("a b").is_err());
        let named = TlsConfig::new()
            .server_name("cache.internal")
            .build()
            .unwrap();
        assert_eq!(
            named.name_for("10.0.0.1").unwrap().to_str(),
            "cache.internal"
        );
    }

    #[test]
    fn the_key_never_shows() {
        let config =
            TlsConfig::new().client_cert_pem("CERT", "-----BEGIN PRIVATE KEY-----s3cretkey");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cretkey") && shown.contains("<redacted>"),
            "{shown}"
        );
        let error = refused(config);
        assert!(!error.contains("s3cretkey"), "{error}");
    }

    #[test]
    fn from_rustls_takes_no_roots_beside_it() {
        let own = TlsConfig::new().build().unwrap().config;
        let both = TlsConfig::from_rustls(Arc::clone(&own)).ca_pem("x");
        assert!(refused(both).contains("from_rustls"));
        let tls = TlsConfig::from_rustls(Arc::clone(&own)).build().unwrap();
        assert!(Arc::ptr_eq(&tls.config, &own));
    }
}
