//! The user name and password of memcached's ASCII authentication (`memcached -Y
//! authfile`), kept out of every `Debug`, log line and error.

use std::fmt;

use crate::error::{Error, IllegalInput, Result};

/// A user name and password (see [`ClientBuilder::credentials`](crate::ClientBuilder::credentials)).
/// Its `Debug` shows the user, never the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    password: String,
}

impl Credentials {
    pub(crate) fn new(user: String, password: String) -> Self {
        Credentials { user, password }
    }

    /// Checks what memcached's login line can carry: both non-empty, without whitespace
    /// or control characters (the server splits the line at its first space, and a
    /// password with a space never logs in).
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |text: &str| {
            text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if bad(&self.user) {
            return Err(Error::IllegalInput(IllegalInput::Argument(
                "credentials: the user name must be non-empty, without whitespace or control characters"
                    .into(),
            )));
        }
        if bad(&self.password) {
            return Err(Error::IllegalInput(IllegalInput::Argument(format!(
                "credentials of {:?}: the password must be non-empty, without whitespace or \
                 control characters (memcached's login line cannot carry them)",
                self.user
            ))));
        }
        Ok(())
    }

    /// The login: a `set` whose data is `"<user> <password>"` (the key is ignored).
    pub(crate) fn login_request(&self) -> Vec<u8> {
        let data_len = self.user.len() + 1 + self.password.len();
        let mut line = format!("set auth 0 0 {data_len}\r\n").into_bytes();
        line.extend_from_slice(self.user.as_bytes());
        line.push(b' ');
        line.extend_from_slice(self.password.as_bytes());
        line.extend_from_slice(b"\r\n");
        line
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_stays_out_of_debug() {
        let credentials = Credentials::new("alice".into(), "s3cret-pw".into());
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret-pw"),
            "{shown}"
        );
        assert_eq!(
            credentials.login_request(),
            b"set auth 0 0 15\r\nalice s3cret-pw\r\n"
        );
    }

    #[test]
    fn what_the_login_line_cannot_carry_is_refused() {
        let cases = [
            ("", "secret1"),
            ("a b", "secret2"),
            ("a", ""),
            ("a", "sec ret3"),
            ("a", "secret4\r\n"),
        ];
        for (user, password) in cases {
            let error = Credentials::new(user.into(), password.into())
                .check()
                .unwrap_err();
            assert!(error.is_illegal_input(), "{error:?}");
            assert!(password.is_empty() || !error.to_string().contains(password));
        }
        assert!(Credentials::new("alice".into(), "s3cret".into())
            .check()
            .is_ok());
    }
}
