//! The TLS part of a client URL (feature `tls`): `memcaches://` and the `tls_*` query
//! parameters, each named after the [`TlsConfig`] method it calls.

use std::path::PathBuf;

use crate::tls::TlsConfig;

use super::value::{self, Parsed};

/// The TLS query parameters, in the order the docs list them.
pub(super) const PARAMETERS: [&str; 6] = [
    "tls_ca_file",
    "tls_server_name",
    "tls_cert_file",
    "tls_key_file",
    "tls_webpki_roots",
    "tls_platform_roots",
];

/// The TLS settings of a `memcaches://` URL, gathered parameter by parameter.
#[derive(Debug, Default)]
pub(super) struct TlsParams {
    config: TlsConfig,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl TlsParams {
    /// Applies one TLS parameter (its name known and not seen before).
    pub(super) fn apply(&mut self, name: &str, raw: &str) -> Parsed<()> {
        if raw.is_empty() {
            return Err("has an empty value".into());
        }
        let text = value::text(raw)?;
        let config = std::mem::take(&mut self.config);
        self.config = match name {
            "tls_ca_file" => config.ca_file(text),
            "tls_server_name" => config.server_name(text),
            "tls_webpki_roots" => config.webpki_roots(value::boolean(&text)?),
            "tls_platform_roots" => config.platform_roots(value::boolean(&text)?),
            "tls_cert_file" => {
                self.cert = Some(text.into());
                config
            }
            "tls_key_file" => {
                self.key = Some(text.into());
                config
            }
            _ => return Err("is unknown".into()),
        };
        Ok(())
    }

    /// The TLS configuration; a client certificate needs both its files.
    pub(super) fn finish(self) -> std::result::Result<TlsConfig, (&'static str, String)> {
        match (self.cert, self.key) {
            (Some(cert), Some(key)) => Ok(self.config.client_cert_files(cert, key)),
            (None, None) => Ok(self.config),
            (Some(_), None) => Err(("tls_cert_file", "needs tls_key_file beside it".into())),
            (None, Some(_)) => Err(("tls_key_file", "needs tls_cert_file beside it".into())),
        }
    }
}
