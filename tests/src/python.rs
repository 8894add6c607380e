//! [`Python`]: a Python interpreter with pymemcache, for tests that check what a Python
//! service reads and writes against the same memcached.

use std::process::Command;

/// The interpreters tried, in order: Debian's (where `scripts/test.sh` installs pymemcache),
/// then whatever `python3` is first on `PATH`.
const CANDIDATES: &[&str] = &["/usr/bin/python3", "python3"];

/// What to run when no interpreter has pymemcache.
const INSTALL: &str = "install it with `/usr/bin/python3 -m pip install \
     --break-system-packages pymemcache==4.0.0` (scripts/test.sh does this when run as root)";

/// A Python interpreter that can `import pymemcache`.
#[derive(Debug, Clone)]
pub struct Python {
    program: String,
    /// pymemcache's version, as the interpreter reports it.
    pub pymemcache_version: String,
}

impl Python {
    /// The first interpreter of [`CANDIDATES`] that imports pymemcache.
    ///
    /// # Panics
    /// When none does, with a message that says how to install pymemcache: a test that needs
    /// it cannot pass without it.
    pub fn with_pymemcache() -> Python {
        for program in CANDIDATES {
            let probe = Command::new(program)
                .args(["-c", "import pymemcache; print(pymemcache.__version__)"])
                .output();
            if let Ok(output) = probe {
                if output.status.success() {
                    return Python {
                        program: (*program).to_owned(),
                        pymemcache_version: String::from_utf8_lossy(&output.stdout)
                            .trim()
                            .to_owned(),
                    };
                }
            }
        }
        panic!("no Python interpreter with pymemcache (tried {CANDIDATES:?}): {INSTALL}");
    }

    /// Runs `script` (Python source) with `args` as `sys.argv[1:]` and returns its standard
    /// output.
    ///
    /// # Panics
    /// When the interpreter cannot be started or the script fails, with its standard error.
    pub fn run(&self, script: &str, args: &[&str]) -> String {
        let output = Command::new(&self.program)
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program));
        assert!(
            output.status.success(),
            "the Python script failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("the script prints UTF-8")
    }
}
