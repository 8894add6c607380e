//! What is said on a new connection before any request: the protocol probe (`mn`) and
//! memcached's ASCII login.
//!
//! The probe goes first. A server that requires authentication answers it
//! `CLIENT_ERROR unauthenticated`; only then are the credentials sent (a `set` whose data
//! is `"<user> <password>"`), followed by the probe again. So a server that does not ask
//! for a login never receives the password (it would store it as an ordinary value). A
//! refused login fails the connection with [`Error::Auth`]: memcached hangs up, and the
//! requests waiting for the connection fail without being sent.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::credentials::Credentials;
use crate::error::{Error, Result};

/// The protocol probe: `mn`, padded to six bytes with spaces (which memcached and
/// twemproxy read as plain `mn`). A server that requires TLS waits for the five bytes of a
/// record header before it decides; with six it finds plain text at once and resets the
/// connection, so a plain client fails at once instead of at the connect timeout.
const PROBE: &[u8] = b"mn  \r\n";

/// The longest line a handshake reads.
const LINE_MAX: usize = 256;

/// What the server answers a command it refuses before a login.
const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";

/// How the handshake went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; under a probe, whether the server speaks meta (`None`: no probe was asked).
    Ready(Option<bool>),
    /// The server hung up on `mn` (twemproxy does): it is classic, and the connection
    /// must be opened again.
    HungUp,
}

/// Runs the handshake on a new stream: `probe` asks `mn` (else `version`, when only a
/// login may be needed); `credentials` log in if the server asks for it.
///
/// # Errors
/// [`Error::Auth`] when the login is refused, or the server requires one and no
/// credentials are set; I/O errors; [`Error::UnknownResponse`] for a line that does not
/// fit.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    probe: bool,
    credentials: Option<&Credentials>,
) -> Result<Outcome> {
    let ask: &[u8] = if probe { PROBE } else { b"version\r\n" };
    stream.write_all(ask).await?;
    // A TLS stream may still hold the bytes: they must go out before the reply is read.
    stream.flush().await?;
    let mut lines = Lines::default();
    let Some(first) = lines.next(stream).await? else {
        return if probe {
            Ok(Outcome::HungUp)
        } else {
            Err(Error::UnexpectedClose)
        };
    };
    if first != UNAUTHENTICATED {
        if credentials.is_some() {
            tracing::debug!("the server does not ask for a login: the credentials were not sent");
        }
        return Ok(Outcome::Ready(probe.then(|| first == b"MN\r\n")));
    }
    let Some(credentials) = credentials else {
        return Err(Error::Auth(
            "the server requires authentication (memcached -Y): set ClientBuilder::credentials"
                .into(),
        ));
    };
    let mut login = credentials.login_request();
    if probe {
        login.extend_from_slice(PROBE);
    }
    stream.write_all(&login).await?;
    stream.flush().await?;
    match lines.next(stream).await? {
        Some(line) if line == b"STORED\r\n" => {}
        Some(line) => {
            let said = String::from_utf8_lossy(line.trim_ascii_end()).into_owned();
            return Err(Error::Auth(format!(
                "the server refused the login of {:?}: {said}",
                credentials.user
            )));
        }
        None => {
            return Err(Error::Auth(format!(
                "the server hung up on the login of {:?}",
                credentials.user
            )))
        }
    }
    tracing::debug!(user = %credentials.user, "logged in");
    if !probe {
        return Ok(Outcome::Ready(None));
    }
    match lines.next(stream).await? {
        Some(line) => Ok(Outcome::Ready(Some(line == b"MN\r\n"))),
        None => Err(Error::UnexpectedClose),
    }
}

/// The lines of a handshake's replies, read into a small buffer (the server sends only
/// what was asked, so nothing after them is read).
#[derive(Debug)]
struct Lines {
    buf: [u8; LINE_MAX],
    len: usize,
    /// Where the line last returned ended.
    used: usize,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            buf: [0; LINE_MAX],
            len: 0,
            used: 0,
        }
    }
}

impl Lines {
    /// The next line, `\r\n` included; `None` when the server closed the connection.
    async fn next<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Result<Option<&[u8]>> {
        self.buf.copy_within(self.used..self.len, 0);
        self.len -= self.used;
        self.used = 0;
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf[..self.len]) {
                self.used = end + 1;
                return Ok(Some(&self.buf[..=end]));
            }
            if self.len == self.buf.len() {
                return Err(Error::UnknownResponse(format!(
                    "a line of over {LINE_MAX} bytes in the connection's handshake"
                )));
            }
            let n = stream.read(&mut self.buf[self.len..]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.len += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a handshake against a scripted peer that answers each write with `answers`
    /// in turn, and returns the outcome and what the client wrote.
    async fn run(
        probe: bool,
        credentials: Option<&Credentials>,
        answers: &'static [&'static [u8]],
    ) -> (Result<Outcome>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let peer = tokio::spawn(async move {
            let mut written = Vec::new();
            for answer in answers {
                let mut buf = [0u8; 512];
                let n = server.read(&mut buf).await.unwrap();
                written.extend_from_slice(&buf[..n]);
                server.write_all(answer).await.unwrap();
            }
            written
        });
        let outcome = handshake(&mut client, probe, credentials).await;
        drop(client);
        (outcome, peer.await.unwrap())
    }

    fn alice() -> Credentials {
        Credentials::new("alice".into(), "s3cret".into())
    }

    #[tokio::test]
    async fn a_server_without_authentication_never_sees_the_password() {
        let credentials = alice();
        let (outcome, written) = run(true, Some(&credentials), &[b"MN\r\n"]).await;
        assert_eq!(outcome.unwrap(), Outcome::Ready(Some(true)));
        assert_eq!(written, PROBE);
        let (outcome, written) = run(false, Some(&credentials), &[b"VERSION 1.6.18\r\n"]).await;
        assert_eq!(outcome.unwrap(), Outcome::Ready(None));
        assert_eq!(written, b"version\r\n");
    }

    #[tokio::test]
    async fn a_login_then_the_probe_again() {
        let credentials = alice();
        let answers: &[&[u8]] = &[UNAUTHENTICATED, b"STORED\r\nMN\r\n"];
        let (outcome, written) = run(true, Some(&credentials), answers).await;
        assert_eq!(outcome.unwrap(), Outcome::Ready(Some(true)));
        assert_eq!(
            written,
            b"mn  \r\nset auth 0 0 12\r\nalice s3cret\r\nmn  \r\n".as_slice()
        );
    }

    #[tokio::test]
    async fn a_refused_login_is_an_auth_error_without_the_password() {
        let credentials = alice();
        let answers: &[&[u8]] = &[UNAUTHENTICATED, UNAUTHENTICATED];
        let (outcome, _) = run(true, Some(&credentials), answers).await;
        let error = outcome.unwrap_err();
        assert!(error.is_auth_error(), "{error:?}");
        assert!(!error.to_string().contains("s3cret") && error.to_string().contains("alice"));
        let (outcome, _) = run(true, None, &[UNAUTHENTICATED]).await;
        let error = outcome.unwrap_err();
        assert!(error.is_auth_error() && error.to_string().contains("credentials"));
    }

    #[tokio::test]
    async fn a_proxy_that_hangs_up_on_the_probe_is_classic() {
        let (outcome, _) = run(true, None, &[b""]).await;
        assert_eq!(outcome.unwrap(), Outcome::HungUp);
    }
}
