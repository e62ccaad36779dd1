//! Secrets and the process environment (a foundation leaf: it imports nothing of avwap, so
//! every layer may read credentials). Owns the Alpaca API key pair, the live-account
//! confirmation and the alert webhook URL. Each is read from systemd credentials first
//! (`$CREDENTIALS_DIRECTORY/<name>`, from `LoadCredential=`, which keeps secrets out of the
//! environment and the Nix store), then from an environment variable. Also owns
//! [`process_env`], the one accessor of the real environment, injected everywhere else so
//! tests never touch the process environment.
//!
//! Secret values live only in [`Secret`], whose `Debug`/`Display` print `[redacted]`, so no
//! log line, error or panic message can carry one. Errors name the credential and where it was
//! looked for, never a value.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub const ENV_CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
pub const ENV_API_KEY_ID: &str = "APCA_API_KEY_ID";
pub const ENV_API_SECRET_KEY: &str = "APCA_API_SECRET_KEY";
pub const ENV_LIVE_ACCOUNT: &str = "AVWAP_LIVE_ACCOUNT";

pub const CREDENTIAL_KEY_ID: &str = "alpaca-key-id";
pub const CREDENTIAL_SECRET_KEY: &str = "alpaca-secret-key";
pub const CREDENTIAL_LIVE_ACCOUNT: &str = "alpaca-live-account";
pub const CREDENTIAL_ALERT_WEBHOOK_URL: &str = "alert-webhook-url";

/// The real process environment, for the binaries and the other `from_process_env`
/// constructors; everything below them takes an injected lookup instead.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A secret string. Read it with [`Secret::expose`] at the point of use only.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort, without unsafe: overwrite the whole allocation (spare capacity too, which
        // may hold trimmed bytes) so the value does not linger in freed memory. Copies made
        // before the value got here (the environment, I/O buffers) are out of our reach.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        let capacity = bytes.capacity();
        bytes.clear();
        bytes.resize(capacity, 0);
        std::hint::black_box(&bytes);
    }
}

/// Where a value was found, for a startup log line ("credentials from …").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A file in `$CREDENTIALS_DIRECTORY`.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::File(path) => write!(f, "systemd credential {}", path.display()),
            CredentialSource::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "missing credential {name} ({purpose}{}): {}",
        .needed_by.map(|by| format!(", needed by {by}")).unwrap_or_default(),
        missing_detail(.name, *.env_var, .credentials_dir.as_deref())
    )]
    Missing {
        name: &'static str,
        purpose: &'static str,
        /// What asked for it (`dry-run mode for Alpaca market data`), when the caller said.
        needed_by: Option<&'static str>,
        env_var: Option<&'static str>,
        credentials_dir: Option<PathBuf>,
    },
    #[error("credential {name} from {origin} is empty; put the value there (or remove it)")]
    Empty {
        name: &'static str,
        origin: CredentialSource,
    },
    #[error(
        "cannot read credential {name} from {path}: {source} (check the unit's LoadCredential= \
         line and the file it points to)"
    )]
    Unreadable {
        name: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn missing_detail(name: &str, env_var: Option<&str>, credentials_dir: Option<&Path>) -> String {
    let mut looked = match credentials_dir {
        Some(dir) => format!("no file {}", dir.join(name).display()),
        None => format!("{ENV_CREDENTIALS_DIRECTORY} is not set"),
    };
    let mut fix = format!("add LoadCredential={name}:<file> to the unit");
    if let Some(var) = env_var {
        looked.push_str(&format!(" and environment variable {var} is not set"));
        fix.push_str(&format!(", or set {var}"));
    }
    format!("{looked}; {fix}")
}

/// The Alpaca API key pair.
#[derive(Debug, Clone)]
pub struct AlpacaCredentials {
    pub key_id: Secret,
    pub secret_key: Secret,
    pub key_id_source: CredentialSource,
    pub secret_key_source: CredentialSource,
}

/// What to read and what it is for (the latter goes into the "missing" message).
struct Spec {
    name: &'static str,
    env_var: Option<&'static str>,
    purpose: &'static str,
}

const KEY_ID: Spec = Spec {
    name: CREDENTIAL_KEY_ID,
    env_var: Some(ENV_API_KEY_ID),
    purpose: "the Alpaca API key id",
};
const SECRET_KEY: Spec = Spec {
    name: CREDENTIAL_SECRET_KEY,
    env_var: Some(ENV_API_SECRET_KEY),
    purpose: "the Alpaca API secret key",
};
const LIVE_ACCOUNT: Spec = Spec {
    name: CREDENTIAL_LIVE_ACCOUNT,
    env_var: Some(ENV_LIVE_ACCOUNT),
    purpose: "the live account number that confirms alpaca-live mode",
};
const ALERT_WEBHOOK_URL: Spec = Spec {
    name: CREDENTIAL_ALERT_WEBHOOK_URL,
    env_var: None,
    purpose: "the alert webhook URL",
};

/// Looks up an environment variable; injected so tests never touch the process environment.
type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where credentials come from.
pub struct CredentialStore {
    credentials_dir: Option<PathBuf>,
    env: EnvLookup,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("credentials_dir", &self.credentials_dir)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    pub fn new(
        credentials_dir: Option<PathBuf>,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> CredentialStore {
        CredentialStore {
            // An empty CREDENTIALS_DIRECTORY would otherwise mean "relative to the working
            // directory", which the service never reads from.
            credentials_dir: credentials_dir.filter(|dir| !dir.as_os_str().is_empty()),
            env: Box::new(env),
        }
    }

    /// The real `$CREDENTIALS_DIRECTORY` and process environment, at the binary edge.
    pub fn from_process_env() -> CredentialStore {
        CredentialStore::new(
            std::env::var_os(ENV_CREDENTIALS_DIRECTORY).map(PathBuf::from),
            process_env,
        )
    }

    pub fn credentials_dir(&self) -> Option<&Path> {
        self.credentials_dir.as_deref()
    }

    /// The Alpaca key pair; both are required.
    pub fn alpaca(&self) -> Result<AlpacaCredentials, CredentialError> {
        self.alpaca_keys(None)
    }

    /// [`CredentialStore::alpaca`] for `needed_by` (e.g. `dry-run mode for Alpaca market
    /// data`), which a "missing" error names, so it says what is running, not every mode.
    pub fn alpaca_for(
        &self,
        needed_by: &'static str,
    ) -> Result<AlpacaCredentials, CredentialError> {
        self.alpaca_keys(Some(needed_by))
    }

    fn alpaca_keys(
        &self,
        needed_by: Option<&'static str>,
    ) -> Result<AlpacaCredentials, CredentialError> {
        let (key_id, key_id_source) = self.require(&KEY_ID, needed_by)?;
        let (secret_key, secret_key_source) = self.require(&SECRET_KEY, needed_by)?;
        Ok(AlpacaCredentials {
            key_id,
            secret_key,
            key_id_source,
            secret_key_source,
        })
    }

    /// The live account number that `alpaca-live` compares with the broker's account before
    /// it trades; required in that mode only, so the caller decides when to ask.
    pub fn live_confirmation(&self) -> Result<Secret, CredentialError> {
        self.require(&LIVE_ACCOUNT, None).map(|(value, _)| value)
    }

    /// The alert webhook URL (it embeds a token, hence a secret); alerts are optional, so
    /// absent is `Ok(None)`.
    pub fn alert_webhook_url(&self) -> Result<Option<Secret>, CredentialError> {
        Ok(self.lookup(&ALERT_WEBHOOK_URL)?.map(|(value, _)| value))
    }

    fn require(
        &self,
        spec: &Spec,
        needed_by: Option<&'static str>,
    ) -> Result<(Secret, CredentialSource), CredentialError> {
        self.lookup(spec)?.ok_or_else(|| CredentialError::Missing {
            name: spec.name,
            purpose: spec.purpose,
            needed_by,
            env_var: spec.env_var,
            credentials_dir: self.credentials_dir.clone(),
        })
    }

    /// The credentials directory wins over the environment. A credential that is present but
    /// empty or unreadable is an error, not a reason to fall back: falling back could silently
    /// pick up another account's key from the environment.
    fn lookup(&self, spec: &Spec) -> Result<Option<(Secret, CredentialSource)>, CredentialError> {
        if let Some(dir) = &self.credentials_dir {
            let path = dir.join(spec.name);
            match read_credential_file(&path) {
                Ok(raw) => return non_empty(spec.name, raw, CredentialSource::File(path)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(CredentialError::Unreadable {
                        name: spec.name,
                        path,
                        source,
                    })
                }
            }
        }
        if let Some(var) = spec.env_var {
            if let Some(raw) = (self.env)(var) {
                return non_empty(spec.name, raw, CredentialSource::Env(var));
            }
        }
        Ok(None)
    }
}

/// The largest credential file accepted (a key is tens of bytes).
const CREDENTIAL_FILE_LIMIT: u64 = 64 * 1024;

/// A credential file's text, from a regular file only: opened non-blocking so a FIFO or device
/// at the path is refused instead of hanging the process, and bounded in size.
fn read_credential_file(path: &std::path::Path) -> io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a pipe or device could block the process); put the credential in a file",
        ));
    }
    if metadata.len() > CREDENTIAL_FILE_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {CREDENTIAL_FILE_LIMIT} bytes: not a credential"),
        ));
    }
    let mut text = String::new();
    file.take(CREDENTIAL_FILE_LIMIT + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Trim surrounding whitespace (a credential file usually ends with a newline) in place, so
/// no untrimmed copy of the value is left behind, and refuse an empty result.
fn non_empty(
    name: &'static str,
    raw: String,
    origin: CredentialSource,
) -> Result<Option<(Secret, CredentialSource)>, CredentialError> {
    // Wrapped first so the buffer is zeroed on every path, the error path included.
    let mut secret = Secret::new(raw);
    let end = secret.0.trim_end().len();
    secret.0.truncate(end);
    let start = secret.0.len() - secret.0.trim_start().len();
    secret.0.drain(..start);
    if secret.0.is_empty() {
        return Err(CredentialError::Empty { name, origin });
    }
    Ok(Some((secret, origin)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "PKTESTKEYID0123456789";
    const SECRET: &str = "s3cr3t-Value-That-Must-Never-Leak";

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn creds_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    fn assert_no_secret(text: &str) {
        for value in [KEY, SECRET, "123456789", "hooks.example"] {
            assert!(!text.contains(value), "{value:?} leaked into {text:?}");
        }
    }

    #[test]
    fn secret_is_redacted_in_debug_and_display() {
        let secret = Secret::new(SECRET.to_string());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:#?}"), "[redacted]");
        assert_eq!(secret.expose(), SECRET);
    }

    #[test]
    fn credentials_dir_wins_over_env_and_newlines_are_trimmed() {
        let dir = creds_dir(&[
            (CREDENTIAL_KEY_ID, &format!("{KEY}\n")),
            (CREDENTIAL_SECRET_KEY, &format!("  {SECRET}\r\n")),
        ]);
        let store = CredentialStore::new(
            Some(dir.path().to_path_buf()),
            env_of(&[
                (ENV_API_KEY_ID, "env-key"),
                (ENV_API_SECRET_KEY, "env-secret"),
            ]),
        );
        let creds = store.alpaca().unwrap();
        assert_eq!(creds.key_id.expose(), KEY);
        assert_eq!(creds.secret_key.expose(), SECRET);
        assert_eq!(
            creds.key_id_source,
            CredentialSource::File(dir.path().join(CREDENTIAL_KEY_ID))
        );
        assert_no_secret(&format!("{creds:?}"));
        assert_no_secret(&format!("{creds:#?}"));
        assert_no_secret(&format!("{store:?}"));
        assert!(creds
            .key_id_source
            .to_string()
            .contains("systemd credential"));
    }

    #[test]
    fn env_is_used_without_a_credential_file() {
        // Directory set but without the files, and directory not set at all.
        let dir = creds_dir(&[]);
        for credentials_dir in [Some(dir.path().to_path_buf()), None, Some(PathBuf::new())] {
            let store = CredentialStore::new(
                credentials_dir,
                env_of(&[(ENV_API_KEY_ID, KEY), (ENV_API_SECRET_KEY, SECRET)]),
            );
            let creds = store.alpaca().unwrap();
            assert_eq!(creds.key_id.expose(), KEY);
            assert_eq!(creds.secret_key.expose(), SECRET);
            assert_eq!(
                creds.secret_key_source,
                CredentialSource::Env(ENV_API_SECRET_KEY)
            );
            assert_eq!(
                creds.secret_key_source.to_string(),
                "environment variable APCA_API_SECRET_KEY"
            );
        }
    }

    #[test]
    fn missing_names_the_credential_and_where_it_was_looked_for() {
        let dir = creds_dir(&[(CREDENTIAL_KEY_ID, KEY)]);
        let store = CredentialStore::new(Some(dir.path().to_path_buf()), env_of(&[]));
        let err = store.alpaca().unwrap_err();
        assert!(matches!(
            err,
            CredentialError::Missing {
                name: CREDENTIAL_SECRET_KEY,
                ..
            }
        ));
        let text = err.to_string();
        assert!(
            text.contains("missing credential alpaca-secret-key"),
            "{text}"
        );
        assert!(
            text.contains(&dir.path().join(CREDENTIAL_SECRET_KEY).display().to_string()),
            "{text}"
        );
        assert!(text.contains("APCA_API_SECRET_KEY is not set"), "{text}");
        assert!(text.contains("LoadCredential=alpaca-secret-key:"), "{text}");
        assert_no_secret(&text);
        assert_no_secret(&format!("{err:?}"));

        let store = CredentialStore::new(None, env_of(&[]));
        let text = store.alpaca().unwrap_err().to_string();
        assert!(text.contains("alpaca-key-id"), "{text}");
        assert!(text.contains("CREDENTIALS_DIRECTORY is not set"), "{text}");
        assert!(text.contains("APCA_API_KEY_ID"), "{text}");
    }

    #[test]
    fn missing_names_what_needs_it_only_when_told() {
        let store = CredentialStore::new(None, env_of(&[]));
        let text = store
            .alpaca_for("dry-run mode for Alpaca market data")
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with(
                "missing credential alpaca-key-id (the Alpaca API key id, needed by dry-run mode \
                 for Alpaca market data): "
            ),
            "{text}"
        );
        let text = store.alpaca().unwrap_err().to_string();
        assert!(
            text.starts_with("missing credential alpaca-key-id (the Alpaca API key id): "),
            "{text}"
        );
        let store = CredentialStore::new(None, env_of(&[(ENV_API_KEY_ID, KEY)]));
        let text = store
            .alpaca_for("alpaca-paper mode")
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with(
                "missing credential alpaca-secret-key (the Alpaca API secret key, needed by \
                 alpaca-paper mode): "
            ),
            "{text}"
        );
    }

    #[test]
    fn empty_values_are_errors_and_do_not_fall_back() {
        let dir = creds_dir(&[(CREDENTIAL_KEY_ID, "\n"), (CREDENTIAL_SECRET_KEY, SECRET)]);
        let store = CredentialStore::new(
            Some(dir.path().to_path_buf()),
            env_of(&[(ENV_API_KEY_ID, KEY)]),
        );
        let err = store.alpaca().unwrap_err();
        match &err {
            CredentialError::Empty { name, origin } => {
                assert_eq!(*name, CREDENTIAL_KEY_ID);
                assert_eq!(
                    *origin,
                    CredentialSource::File(dir.path().join(CREDENTIAL_KEY_ID))
                );
            }
            other => panic!("expected Empty, got {other:?}"),
        }
        assert!(err.to_string().contains("is empty"), "{err}");

        let store = CredentialStore::new(
            None,
            env_of(&[(ENV_API_KEY_ID, "  "), (ENV_API_SECRET_KEY, SECRET)]),
        );
        let err = store.alpaca().unwrap_err();
        assert!(
            err.to_string().contains(
                "credential alpaca-key-id from environment variable APCA_API_KEY_ID is empty"
            ),
            "{err}"
        );
        assert_no_secret(&format!("{err:?}"));
    }

    #[test]
    fn an_unreadable_credential_is_an_error_naming_the_path() {
        let dir = creds_dir(&[(CREDENTIAL_SECRET_KEY, SECRET)]);
        // A directory where the file should be: read fails with EISDIR even as root.
        std::fs::create_dir(dir.path().join(CREDENTIAL_KEY_ID)).unwrap();
        let store = CredentialStore::new(
            Some(dir.path().to_path_buf()),
            env_of(&[(ENV_API_KEY_ID, KEY)]),
        );
        let err = store.alpaca().unwrap_err();
        assert!(matches!(err, CredentialError::Unreadable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&dir.path().join(CREDENTIAL_KEY_ID).display().to_string()),
            "{text}"
        );
        assert_no_secret(&text);
        assert_no_secret(&format!("{err:?}"));
    }

    #[test]
    fn a_fifo_in_place_of_a_credential_is_refused_at_once() {
        let dir = creds_dir(&[(CREDENTIAL_SECRET_KEY, SECRET)]);
        let fifo = dir.path().join(CREDENTIAL_KEY_ID);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(made.success());
        let store = CredentialStore::new(Some(dir.path().to_path_buf()), env_of(&[]));
        let started = std::time::Instant::now();
        let err = store.alpaca().unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(err, CredentialError::Unreadable { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&fifo.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn live_confirmation_from_credential_or_env() {
        let dir = creds_dir(&[(CREDENTIAL_LIVE_ACCOUNT, "123456789\n")]);
        let store = CredentialStore::new(
            Some(dir.path().to_path_buf()),
            env_of(&[(ENV_LIVE_ACCOUNT, "987654321")]),
        );
        assert_eq!(store.live_confirmation().unwrap().expose(), "123456789");

        let store = CredentialStore::new(None, env_of(&[(ENV_LIVE_ACCOUNT, "987654321")]));
        assert_eq!(store.live_confirmation().unwrap().expose(), "987654321");

        let err = CredentialStore::new(None, env_of(&[]))
            .live_confirmation()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("alpaca-live-account"), "{text}");
        assert!(text.contains("AVWAP_LIVE_ACCOUNT"), "{text}");
        assert!(text.contains("confirms alpaca-live"), "{text}");
    }

    #[test]
    fn alert_webhook_url_is_optional_and_credential_only() {
        let url = "https://hooks.example/T000/B000/XXXX";
        let dir = creds_dir(&[(CREDENTIAL_ALERT_WEBHOOK_URL, &format!("{url}\n"))]);
        let store = CredentialStore::new(Some(dir.path().to_path_buf()), env_of(&[]));
        let found = store.alert_webhook_url().unwrap().unwrap();
        assert_eq!(found.expose(), url);
        assert_no_secret(&format!("{found:?}"));

        let store = CredentialStore::new(None, env_of(&[(CREDENTIAL_ALERT_WEBHOOK_URL, url)]));
        assert!(store.alert_webhook_url().unwrap().is_none());

        let empty = creds_dir(&[(CREDENTIAL_ALERT_WEBHOOK_URL, "")]);
        let store = CredentialStore::new(Some(empty.path().to_path_buf()), env_of(&[]));
        assert!(matches!(
            store.alert_webhook_url(),
            Err(CredentialError::Empty { .. })
        ));
    }
}
