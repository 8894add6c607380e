//! The one error type of this crate.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a command could not be carried out.
///
/// Ordinary outcomes are not errors: a miss is `Ok(None)`, `NOT_STORED` is `Ok(false)`,
/// `EXISTS` / `NOT_FOUND` on `cas` are [`CasOutcome`](crate::CasOutcome) values.
///
/// The variants mirror pymemcache's exceptions (see the crate docs for the table). Prefer the
/// predicates ([`is_timeout`](Error::is_timeout), [`is_connection_error`](Error::is_connection_error),
/// ...) to matching on variants: new variants may be added.
///
/// `Error` is `Clone`: when a connection fails, every request outstanding on it receives the
/// same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered `ERROR`: it does not know the command (pymemcache's
    /// `MemcacheUnknownCommandError`). Seen when a proxy or an old server lacks a command.
    #[error("the server does not know this command (ERROR)")]
    UnknownCommand,

    /// The server answered `CLIENT_ERROR <message>` (pymemcache's `MemcacheClientError`), for
    /// example `incr` on a value that is not a number.
    #[error("the server rejected the request: CLIENT_ERROR {0}")]
    Client(String),

    /// The server answered `SERVER_ERROR <message>` (pymemcache's `MemcacheServerError`), for
    /// example `object too large for cache` or `out of memory storing object`.
    #[error("the server failed the request: SERVER_ERROR {0}")]
    Server(String),

    /// The server sent something that is not a valid response to the request (pymemcache's
    /// `MemcacheUnknownError`). The connection is closed: it can no longer be trusted.
    #[error("unexpected response from the server: {0}")]
    UnknownResponse(String),

    /// A response announced a value larger than the client's
    /// [`max_value_size`](crate::ClientBuilder::max_value_size). Its bytes were skipped as
    /// they arrived (nothing was allocated for them); only this call fails, and the
    /// connection carries on.
    #[error("the server announced a {size}-byte value, over the {max}-byte limit")]
    ValueTooLarge {
        /// The size the server announced.
        size: u64,
        /// The configured maximum.
        max: usize,
    },

    /// The server closed the connection (pymemcache's `MemcacheUnexpectedCloseError`).
    #[error("the server closed the connection")]
    UnexpectedClose,

    /// The request was refused before anything was sent (pymemcache's
    /// `MemcacheIllegalInputError`): a bad key or a bad argument.
    #[error("illegal input: {0}")]
    IllegalInput(#[from] IllegalInput),

    /// Connecting, or the whole command, took longer than the configured limit; or the
    /// server sent nothing for that long while the command waited for its reply (its
    /// connection is then closed).
    #[error("{kind} timed out after {after:?}")]
    Timeout {
        /// Whether connecting or the command itself timed out.
        kind: TimeoutKind,
        /// The limit that was exceeded.
        after: Duration,
    },

    /// An I/O error on the connection (pymemcache's `socket.error`).
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),

    /// The server is in backoff after failed connection attempts: the call was not sent.
    ///
    /// After a failed connect, or a connection lost with requests outstanding, the client
    /// waits before it connects again (exponentially longer after each failure in a row,
    /// see [`ClientBuilder::reconnect_backoff`](crate::ClientBuilder::reconnect_backoff)),
    /// and calls made meanwhile fail at once with this error instead of piling onto a
    /// server that is down. With [`ignore_exc`](crate::ClientBuilder::ignore_exc), reads
    /// are misses instead.
    #[error("server {server} is down ({failures} failures in a row, the last: {last}); next attempt in {retry_in:?}")]
    ServerDown {
        /// The server's address.
        server: String,
        /// How many connection attempts (or connections) failed in a row.
        failures: u32,
        /// How long until the next connection attempt is allowed.
        retry_in: Duration,
        /// The last failure.
        last: Box<Error>,
    },

    /// memcached's ASCII authentication failed: the server refused the login of
    /// [`credentials`](crate::ClientBuilder::credentials), or it requires a login and
    /// none is set. The connection is closed, and the calls that waited for it fail
    /// without being sent; the server is retried as after any failed connect. The message
    /// names the user, never the password.
    #[error("authentication failed: {0}")]
    Auth(String),

    /// The TLS connection to the server failed (feature `tls`, see `ClientBuilder::tls`):
    /// its [`kind`](TlsErrorKind) says
    /// why (an untrusted or expired certificate, a name mismatch, a server that does not
    /// speak TLS, a server that refused the client). Failing to connect, it fails the calls
    /// that waited for the connection without sending them, and the server is retried as
    /// after any failed connect (backoff, or a cluster's dead-server rules): no retry storm.
    /// On an open connection (a corrupt record, an alert) it closes the connection as any
    /// I/O error does. See [`Error::is_tls_error`].
    #[error("TLS: {message}")]
    Tls {
        /// What went wrong.
        kind: TlsErrorKind,
        /// The details, as rustls reports them.
        message: String,
    },

    /// With several servers: a command failed on one of them (any command: a single-key
    /// one on its key's server, a multi-key one on one of the servers it spans, a
    /// server-wide one taken together with [`PerServer::all`](crate::PerServer::all)):
    /// which server, and why. The predicates look at the error inside.
    #[error("server {server}: {error}")]
    AtServer {
        /// The server's address.
        server: String,
        /// What went wrong there.
        error: Box<Error>,
    },

    /// The server address could not be parsed or resolved.
    #[error("bad server address {addr:?}: {reason}")]
    Address {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What timed out: see [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Opening the connection (`connect_timeout`).
    Connect,
    /// The command, from the caller's point of view (`timeout`).
    Request,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connecting",
            TimeoutKind::Request => "the request",
        })
    }
}

/// Why a TLS connection failed: see [`Error::Tls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The server's certificate is not signed by a trusted CA (see `TlsConfig::ca_file`), or is otherwise unacceptable (a
    /// bad signature, revoked, not meant for a server).
    UntrustedCertificate,
    /// The server's certificate is valid, but not for the name the client verifies (the
    /// server's host, or `TlsConfig::server_name`).
    NameMismatch,
    /// The server's certificate has expired, or is not valid yet.
    ExpiredCertificate,
    /// The server answered the TLS handshake with something that is not TLS, or closed the
    /// connection during it: most likely it speaks plain text (memcached without `-Z`).
    NotTls,
    /// The server refused the client with a TLS alert: it requires a client certificate
    /// and none was sent, it does not trust the one sent, or the two share no protocol
    /// version or cipher suite.
    Refused,
    /// Any other TLS failure: a corrupt or forged record, a protocol violation.
    Protocol,
}

impl fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsErrorKind::UntrustedCertificate => "untrusted certificate",
            TlsErrorKind::NameMismatch => "certificate name mismatch",
            TlsErrorKind::ExpiredCertificate => "expired certificate",
            TlsErrorKind::NotTls => "the server does not speak TLS",
            TlsErrorKind::Refused => "refused by the server",
            TlsErrorKind::Protocol => "protocol error",
        })
    }
}

/// Input refused before a byte was written: see [`Error::IllegalInput`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IllegalInput {
    /// A key broke one of memcached's key rules.
    #[error("key {key:?} {rule}")]
    Key {
        /// The offending key (lossily decoded for display), without the client's prefix.
        key: String,
        /// The rule it broke.
        rule: KeyRule,
    },
    /// A non-key argument is not acceptable (for example a `get_many` with no keys).
    #[error("{0}")]
    Argument(String),
    /// A configuration URL (see [`ClientBuilder::from_url`](crate::ClientBuilder::from_url))
    /// does not parse: which part of it is wrong, and why.
    #[error("url: {part}: {reason}")]
    Url {
        /// The part that is wrong, as the message names it: `scheme`, `authority`,
        /// `server "host:port"` (as written), `path`, `query parameter "timeout"`,
        /// `fragment`.
        part: String,
        /// What is wrong with it, quoting the text at fault.
        reason: String,
    },
}

/// The key rule a key broke: see [`IllegalInput::Key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRule {
    /// The key is empty.
    #[error("is empty")]
    Empty,
    /// The key, with the client's key prefix, is longer than 250 bytes.
    #[error("is {len} bytes with the key prefix, over memcached's 250-byte limit")]
    TooLong {
        /// The length including the prefix.
        len: usize,
    },
    /// The key contains a space, a control byte or DEL (0x00-0x20, 0x7f).
    #[error("contains the forbidden byte 0x{byte:02x} at offset {offset} (whitespace or control)")]
    ForbiddenByte {
        /// The byte.
        byte: u8,
        /// Where it is in the key (without the prefix).
        offset: usize,
    },
    /// The key contains a non-ASCII byte and the client does not allow unicode keys.
    #[error(
        "contains the non-ASCII byte 0x{byte:02x} at offset {offset} (see allow_unicode_keys)"
    )]
    NonAscii {
        /// The byte.
        byte: u8,
        /// Where it is in the key (without the prefix).
        offset: usize,
    },
}

impl Error {
    /// `error` as it happened on `server` ([`Error::AtServer`]).
    pub(crate) fn at_server(server: &crate::ServerAddr, error: Error) -> Error {
        match error {
            // these name their server already
            named @ (Error::AtServer { .. } | Error::ServerDown { .. }) => named,
            error => Error::AtServer {
                server: server.to_string(),
                error: Box::new(error),
            },
        }
    }

    /// The error itself, inside any [`Error::AtServer`].
    pub fn root(&self) -> &Error {
        match self {
            Error::AtServer { error, .. } => error.root(),
            other => other,
        }
    }

    /// The server an [`Error::AtServer`] or [`Error::ServerDown`] names.
    pub fn server(&self) -> Option<&str> {
        match self {
            Error::AtServer { server, .. } | Error::ServerDown { server, .. } => Some(server),
            _ => None,
        }
    }

    /// `true` for a timeout, connecting or waiting for the response.
    pub fn is_timeout(&self) -> bool {
        matches!(self.root(), Error::Timeout { .. })
    }

    /// `true` when the call failed for want of a working connection: I/O errors, unexpected
    /// close, timeouts, responses that made the connection untrustworthy (it is closed; the
    /// next command opens a new one), and a server in backoff ([`Error::ServerDown`]).
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self.root(),
            Error::Io(_)
                | Error::UnexpectedClose
                | Error::Timeout { .. }
                | Error::UnknownResponse(_)
                | Error::ServerDown { .. }
                | Error::Tls { .. }
        )
    }

    /// `true` when the call was not sent because the server is in backoff after failed
    /// connection attempts ([`Error::ServerDown`]).
    pub fn is_server_down(&self) -> bool {
        matches!(self.root(), Error::ServerDown { .. })
    }

    /// `true` when memcached's authentication failed ([`Error::Auth`]).
    pub fn is_auth_error(&self) -> bool {
        matches!(self.root(), Error::Auth(_))
    }

    /// `true` when the TLS connection failed ([`Error::Tls`]); [`Error::tls_kind`] says
    /// why. A TLS failure is also a connection error
    /// ([`is_connection_error`](Error::is_connection_error)).
    pub fn is_tls_error(&self) -> bool {
        matches!(self.root(), Error::Tls { .. })
    }

    /// Why the TLS connection failed, for an [`Error::Tls`] (inside any
    /// [`Error::AtServer`] or [`Error::ServerDown`]: a server in backoff after a TLS
    /// failure says so).
    pub fn tls_kind(&self) -> Option<TlsErrorKind> {
        match self.root() {
            Error::Tls { kind, .. } => Some(*kind),
            Error::ServerDown { last, .. } => last.tls_kind(),
            _ => None,
        }
    }

    /// `true` when the server answered with an error (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`).
    /// The connection stays usable.
    pub fn is_server_error(&self) -> bool {
        matches!(
            self.root(),
            Error::UnknownCommand | Error::Client(_) | Error::Server(_)
        )
    }

    /// `true` when the input was refused before anything was sent.
    pub fn is_illegal_input(&self) -> bool {
        matches!(self.root(), Error::IllegalInput(_))
    }

    /// The server's message for `CLIENT_ERROR` / `SERVER_ERROR`.
    pub fn server_message(&self) -> Option<&str> {
        match self.root() {
            Error::Client(m) | Error::Server(m) => Some(m),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        #[cfg(feature = "tls")]
        if let Some(inner) = e.get_ref() {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Error::from_rustls(tls);
            }
            if let Some(OpenTlsError(tls)) = inner.downcast_ref::<OpenTlsError>() {
                return match Error::from_rustls(tls) {
                    // Past the handshake, bytes that are not TLS are a corrupt stream.
                    Error::Tls {
                        kind: TlsErrorKind::NotTls,
                        ..
                    } => Error::Tls {
                        kind: TlsErrorKind::Protocol,
                        message: format!("{tls}: the connection carried bytes that are not TLS"),
                    },
                    other => other,
                };
            }
        }
        Error::Io(Arc::new(e))
    }
}

/// A rustls error met on an open connection (past the handshake), carried through the
/// reader's `io::Error`.
#[cfg(feature = "tls")]
#[derive(Debug)]
pub(crate) struct OpenTlsError(pub(crate) rustls::Error);

#[cfg(feature = "tls")]
impl fmt::Display for OpenTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "tls")]
impl std::error::Error for OpenTlsError {}

#[cfg(feature = "tls")]
impl Error {
    /// rustls's error, classified (rustls's errors travel inside `io::Error`s through
    /// tokio-rustls and the connection's reader).
    pub(crate) fn from_rustls(error: &rustls::Error) -> Error {
        use rustls::{AlertDescription as Alert, CertificateError as Cert};
        let kind = match error {
            rustls::Error::InvalidCertificate(cert) => match cert {
                Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
                    TlsErrorKind::NameMismatch
                }
                Cert::Expired
                | Cert::ExpiredContext { .. }
                | Cert::NotValidYet
                | Cert::NotValidYetContext { .. } => TlsErrorKind::ExpiredCertificate,
                _ => TlsErrorKind::UntrustedCertificate,
            },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                TlsErrorKind::NotTls
            }
            rustls::Error::AlertReceived(
                Alert::CertificateRequired
                | Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::AccessDenied
                | Alert::HandshakeFailure
                | Alert::ProtocolVersion
                | Alert::InsufficientSecurity,
            )
            | rustls::Error::PeerIncompatible(_) => TlsErrorKind::Refused,
            _ => TlsErrorKind::Protocol,
        };
        let message = match kind {
            TlsErrorKind::NotTls => {
                format!("{error}: the server does not speak TLS (memcached serves it with -Z)")
            }
            TlsErrorKind::Refused => format!(
                "{error}: the server refused the client (does it require a client \
                 certificate, see TlsConfig::client_cert_files, or not trust the one sent?)"
            ),
            _ => error.to_string(),
        };
        Error::Tls { kind, message }
    }
}
