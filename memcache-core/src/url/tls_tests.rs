//! `memcaches://` and the `tls_*` parameters: each reaches its `TlsConfig` setting, and
//! each misuse is refused naming its part. (Without the feature `tls`, `memcaches://` and
//! the `tls_*` parameters are refused.)

use crate::config::ClientBuilder;
use crate::error::{Error, IllegalInput};

/// The part an error names, and why.
fn refusal(url: &str) -> (String, String) {
    match ClientBuilder::from_url(url) {
        Err(Error::IllegalInput(IllegalInput::Url { part, reason })) => (part, reason),
        other => panic!("{url}: {other:?}"),
    }
}

#[cfg(feature = "tls")]
mod with_the_feature {
    use super::*;
    use crate::tls::TlsConfig;

    /// Builders compare by `Debug`, which shows every setting (and no file is read).
    fn same(url: &str, builder: ClientBuilder) {
        let parsed = ClientBuilder::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(format!("{parsed:?}"), format!("{builder:?}"), "{url}");
    }

    #[test]
    fn every_tls_parameter_reaches_its_setting() {
        let base = || ClientBuilder::new().server("cache:11211");
        same("memcaches://cache:11211", base().tls(TlsConfig::new()));
        same("MemCacheS://cache/", base().tls(TlsConfig::new()));
        same(
            "memcaches://cache/?tls_ca_file=%2Fetc%2Fca.pem",
            base().tls(TlsConfig::new().ca_file("/etc/ca.pem")),
        );
        same(
            "memcaches://cache/?tls_server_name=cache.internal&tls_webpki_roots=yes",
            base().tls(
                TlsConfig::new()
                    .server_name("cache.internal")
                    .webpki_roots(true),
            ),
        );
        same(
            "memcaches://cache/?tls_platform_roots=on",
            base().tls(TlsConfig::new().platform_roots(true)),
        );
        same(
            "memcaches://cache/?tls_key_file=/k.pem&tls_cert_file=/c.pem&timeout=2s",
            base()
                .timeout(std::time::Duration::from_secs(2))
                .tls(TlsConfig::new().client_cert_files("/c.pem", "/k.pem")),
        );
        same(
            "memcaches://alice:pw@a,b:11212/?tls_ca_file=/ca.pem",
            ClientBuilder::new()
                .weighted_server("a:11211", 1)
                .weighted_server("b:11212", 1)
                .tls(TlsConfig::new().ca_file("/ca.pem"))
                .credentials("alice", "pw"),
        );
        // memcaches with Mozilla's roots builds without reading a file
        let client = ClientBuilder::from_url("memcaches://cache").unwrap();
        assert!(client.build().is_ok());
    }

    #[test]
    fn tls_misuse_names_its_part() {
        let cases = [
            (
                "memcache://cache/?tls_ca_file=/ca.pem",
                "tls_ca_file",
                "memcaches://",
            ),
            (
                "memcaches://cache/?tls_ca=/ca.pem",
                "tls_ca",
                "is unknown (known: tls_ca_file",
            ),
            (
                "memcaches://cache/?tls_cert_file=/c.pem",
                "tls_cert_file",
                "tls_key_file",
            ),
            (
                "memcaches://cache/?tls_key_file=/k.pem",
                "tls_key_file",
                "tls_cert_file",
            ),
            (
                "memcaches://cache/?tls_webpki_roots=maybe",
                "tls_webpki_roots",
                "boolean",
            ),
            (
                "memcaches://cache/?tls_server_name=",
                "tls_server_name",
                "empty",
            ),
            (
                "memcaches://cache/?tls_ca_file=a&tls_ca_file=b",
                "tls_ca_file",
                "twice",
            ),
            ("memcaches://cache/?tls_ca_file=%FF", "tls_ca_file", "UTF-8"),
        ];
        for (url, name, why) in cases {
            let (part, reason) = refusal(url);
            assert_eq!(part, format!("query parameter {name:?}"), "{url}");
            assert!(reason.contains(why), "{url}: {reason}");
        }
        let (part, reason) = refusal("memcaches:cache");
        assert_eq!(part, "scheme");
        assert!(reason.contains("memcaches://host:port"), "{reason}");
        // build() refuses what parses: a unix socket, a file that is not there
        let unix = ClientBuilder::from_url("memcaches:///run/memcached.sock").unwrap();
        assert!(unix
            .build()
            .unwrap_err()
            .to_string()
            .contains("unix socket"));
        let missing = ClientBuilder::from_url("memcaches://cache/?tls_ca_file=/nonexistent.pem");
        let error = missing.unwrap().build().unwrap_err();
        assert!(error.is_illegal_input() && error.to_string().contains("/nonexistent.pem"));
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn without_the_feature_tls_is_refused() {
    let (part, reason) = refusal("memcaches://cache");
    assert_eq!(part, "scheme");
    assert!(reason.contains("feature \"tls\""), "{reason}");
    let (part, reason) = refusal("memcache://cache/?tls_ca_file=/ca.pem");
    assert_eq!(part, "query parameter \"tls_ca_file\"");
    assert!(reason.contains("feature \"tls\""), "{reason}");
}
