//! Configuration from the environment, typed and secret-safe.
//!
//! Only this module reads the process environment (through a lookup function, so tests
//! pass a map). It turns variables into [`Settings`]; each settings struct builds its
//! own client (`DatabaseSettings::connect_options`). Nothing here connects to anything.
//!
//! # Precedence
//! Command-line flag > environment variable > job declaration > built-in default. For
//! the database, the first of these that is set wins:
//! 1. `DATABASE_URL` (`postgres://user:password@host:port/db?sslmode=...`);
//! 2. `DB_CREDENTIALS_JSON`, the whole Secrets Manager secret as ECS injects it
//!    (`{"username","password","host","port","dbname"}`, as the original used);
//! 3. `POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_USER`, `POSTGRES_PASSWORD`, `POSTGRES_DB`.
//!
//! `DATABASE_SSLMODE` (disable, prefer, require, verify-ca, verify-full) overrides the
//! mode; `DATABASE_SSLROOTCERT` names the CA bundle for the verify modes (the RDS global
//! bundle in production). Without either, loopback hosts use `prefer` and every other
//! host `require`, which is what the original did; production should say verify-full.
//!
//! Passwords live in [`SecretString`] and are never formatted: [`DatabaseSettings`]'s
//! `Display` shows `postgres://user@host:port/db` only.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The secrets the runner itself reads for every job (the database's credentials, in
/// whichever form the operator gives them). A task receives these, those of the
/// operator's that exist, besides its job's declared `reads`.
#[allow(dead_code)] // read by terraform/tests (test_the_runners_variables_are_src_configs)
pub(crate) const RUNNER_SECRETS: &[&str] =
    &["DATABASE_URL", "DB_CREDENTIALS_JSON", "POSTGRES_PASSWORD"];

/// The plain variables the runner itself reads for every job.
#[allow(dead_code)] // read by terraform/tests (test_the_runners_variables_are_src_configs)
pub(crate) const RUNNER_ENVIRONMENT: &[&str] = &[
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_DB",
    "DATABASE_SSLMODE",
    "DATABASE_SSLROOTCERT",
    "DATABASE_CONNECT_TIMEOUT_SECONDS",
    "RUN_JOB_NOW",
    "RUN_JOB_TRIGGER",
    "RUN_JOB_ONLY",
    "RUN_JOB_GRACE_SECONDS",
    "RUN_JOB_LOG_FORMAT",
    "RUST_LOG",
];

/// How settings read the environment: the process's (`process_env`) or a test's map.
pub(crate) type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A setting that is missing or malformed, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct Error {
    pub variable: &'static str,
    pub message: String,
}

fn error(variable: &'static str, message: impl Into<String>) -> Error {
    Error {
        variable,
        message: message.into(),
    }
}

/// Everything the runner needs from the environment.
#[derive(Debug)]
pub(crate) struct Settings {
    pub database: DatabaseSettings,
    /// How long connecting to the database may take before a host that never answers
    /// counts as unreachable (`DATABASE_CONNECT_TIMEOUT_SECONDS`). A refused connection,
    /// an unknown host or a rejected login fail at once, whatever this says.
    pub connect_timeout: std::time::Duration,
}

/// Where the database is and how to reach it.
pub(crate) struct DatabaseSettings {
    host: String,
    port: u16,
    user: String,
    password: Option<SecretString>,
    database: String,
    ssl_mode: PgSslMode,
    ssl_root_cert: Option<String>,
    /// Which variable(s) the settings came from, for `check` and error messages.
    pub source: &'static str,
}

impl Settings {
    /// Reads the settings through `env` (normally `std::env::var`).
    pub(crate) fn from_env(env: &Env) -> Result<Settings, Error> {
        Ok(Settings {
            database: DatabaseSettings::from_env(env)?,
            connect_timeout: seconds(env, "DATABASE_CONNECT_TIMEOUT_SECONDS", 10, 1..=300)?,
        })
    }
}

/// A setting that must be there, with `why` saying who needs it ("is required by ...").
pub(crate) fn required(env: &Env, variable: &'static str, why: &str) -> Result<String, Error> {
    env(variable).ok_or_else(|| error(variable, format!("is required {why}")))
}

/// A typed optional setting within `range`, or `default` when unset.
pub(crate) fn parse<T>(
    env: &Env,
    variable: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, Error>
where
    T: FromStr + PartialOrd + fmt::Display,
{
    let Some(text) = env(variable) else {
        return Ok(default);
    };
    match text.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(error(
            variable,
            format!(
                "`{text}` is not a value in {}..={}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// A duration setting given in whole seconds within `range`, or `default` seconds when
/// unset.
pub(crate) fn seconds(
    env: &Env,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<std::time::Duration, Error> {
    parse(env, variable, default, range).map(std::time::Duration::from_secs)
}

/// A base URL setting without its trailing slash, or `default` when unset.
pub(crate) fn base_url(env: &Env, variable: &str, default: &str) -> String {
    env(variable)
        .unwrap_or_else(|| default.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// `APP_BASE_URL`: where the marketplace's pages live, for links in notifications and
/// pings. Defaults to `https://revendiste.com`.
pub(crate) fn app_base_url(env: &Env) -> String {
    base_url(env, "APP_BASE_URL", "https://revendiste.com")
}

/// The real environment; empty values count as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[derive(Deserialize)]
struct DbCredentials {
    username: String,
    password: Option<String>,
    host: String,
    #[serde(default)]
    port: Option<serde_json::Value>,
    dbname: Option<String>,
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "postgres") || host.starts_with('/')
}

fn parse_port(variable: &'static str, value: &str) -> Result<u16, Error> {
    value
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| error(variable, format!("`{value}` is not a TCP port (1-65535)")))
}

impl DatabaseSettings {
    fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<DatabaseSettings, Error> {
        let mut settings = if let Some(url) = env("DATABASE_URL") {
            Self::from_url(&url)?
        } else if let Some(json) = env("DB_CREDENTIALS_JSON") {
            Self::from_credentials_json(&json)?
        } else if let Some(host) = env("POSTGRES_HOST") {
            let port = match env("POSTGRES_PORT") {
                Some(p) => parse_port("POSTGRES_PORT", &p)?,
                None => 5432,
            };
            let user = env("POSTGRES_USER")
                .ok_or_else(|| error("POSTGRES_USER", "is required when POSTGRES_HOST is set"))?;
            let database = env("POSTGRES_DB")
                .ok_or_else(|| error("POSTGRES_DB", "is required when POSTGRES_HOST is set"))?;
            DatabaseSettings {
                ssl_mode: default_ssl_mode(&host),
                host,
                port,
                user,
                password: env("POSTGRES_PASSWORD").map(SecretString::from),
                database,
                ssl_root_cert: None,
                source: "POSTGRES_HOST/PORT/USER/PASSWORD/DB",
            }
        } else {
            return Err(error(
                "DATABASE_URL",
                "no database configured: set DATABASE_URL, DB_CREDENTIALS_JSON or POSTGRES_HOST (with POSTGRES_USER, POSTGRES_DB)",
            ));
        };
        if let Some(mode) = env("DATABASE_SSLMODE") {
            settings.ssl_mode = PgSslMode::from_str(&mode).map_err(|_| {
                error(
                    "DATABASE_SSLMODE",
                    format!("`{mode}` is not one of disable, allow, prefer, require, verify-ca, verify-full"),
                )
            })?;
        }
        if let Some(cert) = env("DATABASE_SSLROOTCERT") {
            if !std::path::Path::new(&cert).is_file() {
                return Err(error(
                    "DATABASE_SSLROOTCERT",
                    format!("`{cert}` is not a readable file"),
                ));
            }
            settings.ssl_root_cert = Some(cert);
        }
        if matches!(
            settings.ssl_mode,
            PgSslMode::VerifyCa | PgSslMode::VerifyFull
        ) && settings.ssl_root_cert.is_none()
        {
            // rustls trusts Mozilla's public roots only, not the system store: a server
            // certificate from a private CA (Amazon RDS) fails unless its bundle is named.
            tracing::warn!(
                "DATABASE_SSLMODE verifies certificates but DATABASE_SSLROOTCERT is not set: only public CAs are trusted (Amazon RDS needs its bundle)"
            );
        }
        Ok(settings)
    }

    fn from_url(url: &str) -> Result<DatabaseSettings, Error> {
        let invalid = |why: &str| {
            error(
                "DATABASE_URL",
                format!("is not a valid postgres:// URL: {why}"),
            )
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| invalid("it must start with postgres:// or postgresql://"))?;
        // Parse with sqlx (which understands every libpq form), then keep the parts.
        // sqlx's message may quote the URL, so it is not shown: never echo a password back.
        let options =
            PgConnectOptions::from_str(url).map_err(|_| invalid("it could not be parsed"))?;
        let user = options.get_username().to_string();
        // The authority ends at the first `/` or `?`; the user info ends at its last `@`
        // (a password may contain `@` only percent-encoded, but be lenient).
        let (authority, query) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].split_once('?').map_or("", |(_, q)| q)),
            None => (rest, ""),
        };
        let password = authority
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, p)| percent_decode(p))
            .transpose()
            .map_err(|_| invalid("the password is not valid percent-encoding"))?
            .map(SecretString::from);
        let ssl_root_cert = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("sslrootcert="))
            .map(percent_decode)
            .transpose()
            .map_err(|_| invalid("sslrootcert is not valid percent-encoding"))?;
        let ssl_mode = if url.contains("sslmode=") {
            options.get_ssl_mode()
        } else {
            default_ssl_mode(options.get_host())
        };
        Ok(DatabaseSettings {
            host: options.get_host().to_string(),
            port: options.get_port(),
            user,
            password,
            database: options.get_database().unwrap_or("postgres").to_string(),
            ssl_mode,
            ssl_root_cert,
            source: "DATABASE_URL",
        })
    }

    fn from_credentials_json(json: &str) -> Result<DatabaseSettings, Error> {
        let var = "DB_CREDENTIALS_JSON";
        let not_json = || error(var, "is not the expected JSON object");
        // serde_json's syntax errors name a position only, but its type errors quote the
        // value ("invalid type: integer `12345`"): the text fields' types are checked
        // here first, so a message names the field and never what it holds.
        let value: serde_json::Value = serde_json::from_str(json).map_err(|_| not_json())?;
        let fields = value.as_object().ok_or_else(not_json)?;
        for name in ["username", "password", "host", "dbname"] {
            if fields
                .get(name)
                .is_some_and(|v| !v.is_string() && !v.is_null())
            {
                return Err(error(var, format!("`{name}` must be a string")));
            }
        }
        let c: DbCredentials = serde_json::from_value(value)
            .map_err(|e| error(var, format!("is not the expected JSON object: {e}")))?;
        let port = match c.port {
            None => 5432,
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| error(var, "`port` is not a TCP port (1-65535)"))?,
            Some(serde_json::Value::String(s)) => parse_port(var, &s)?,
            Some(_) => return Err(error(var, "`port` must be a number or a string")),
        };
        Ok(DatabaseSettings {
            ssl_mode: default_ssl_mode(&c.host),
            host: c.host,
            port,
            user: c.username,
            password: c.password.map(SecretString::from),
            database: c.dbname.unwrap_or_else(|| "postgres".to_string()),
            ssl_root_cert: None,
            source: "DB_CREDENTIALS_JSON",
        })
    }

    /// Connection options for sqlx, tagged with an application name so a DBA can see
    /// which job holds a connection.
    pub(crate) fn connect_options(&self, application_name: &str) -> PgConnectOptions {
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(&self.database)
            .ssl_mode(self.ssl_mode)
            .application_name(application_name);
        if let Some(password) = &self.password {
            options = options.password(password.expose_secret());
        }
        if let Some(cert) = &self.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        options
    }

    pub(crate) fn ssl_mode(&self) -> &'static str {
        match self.ssl_mode {
            PgSslMode::Disable => "disable",
            PgSslMode::Allow => "allow",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        }
    }
}

fn default_ssl_mode(host: &str) -> PgSslMode {
    if is_loopback(host) {
        PgSslMode::Prefer
    } else {
        PgSslMode::Require
    }
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

impl fmt::Display for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgres://{}@{}:{}/{} (sslmode {}, from {})",
            self.user,
            self.host,
            self.port,
            self.database,
            self.ssl_mode(),
            self.source
        )
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same as Display: a Debug print must not leak the password either.
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(&move |k| map.get(k).cloned())
    }

    #[test]
    fn database_url_wins_and_never_shows_its_password() {
        let s = settings(&[
            (
                "DATABASE_URL",
                "postgres://app:s3cr%40t@db.internal:6543/market?sslmode=verify-full",
            ),
            ("POSTGRES_HOST", "ignored"),
        ])
        .unwrap();
        let shown = format!("{} {:?} {s:?}", s.database, s.database);
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains(
            "postgres://app@db.internal:6543/market (sslmode verify-full, from DATABASE_URL)"
        ));
        assert_eq!(
            s.database.password.as_ref().unwrap().expose_secret(),
            "s3cr@t"
        );
    }

    #[test]
    fn a_database_url_keeps_its_password_and_root_certificate() {
        let s = settings(&[(
            "DATABASE_URL",
            "postgres://app:p%40ss@db:5432/market?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Frds.pem&application_name=x@y",
        )])
        .unwrap();
        assert_eq!(
            s.database.password.as_ref().unwrap().expose_secret(),
            "p@ss"
        );
        assert_eq!(
            s.database.ssl_root_cert.as_deref(),
            Some("/etc/ssl/rds.pem")
        );
        assert_eq!(s.database.ssl_mode(), "verify-full");
    }

    #[test]
    fn credentials_json_is_read_like_the_original() {
        let s = settings(&[(
            "DB_CREDENTIALS_JSON",
            r#"{"username":"revendiste","password":"pw","host":"x.rds.amazonaws.com","port":"5432","dbname":"revendiste","engine":"postgres"}"#,
        )])
        .unwrap();
        assert_eq!(
            s.database.to_string(),
            "postgres://revendiste@x.rds.amazonaws.com:5432/revendiste (sslmode require, from DB_CREDENTIALS_JSON)"
        );
        let s = settings(&[(
            "DB_CREDENTIALS_JSON",
            r#"{"username":"u","password":"pw","host":"localhost","port":5433}"#,
        )])
        .unwrap();
        assert_eq!(s.database.port, 5433);
        assert_eq!(s.database.ssl_mode(), "prefer");
    }

    #[test]
    fn postgres_variables_are_the_fallback() {
        let s = settings(&[
            ("POSTGRES_HOST", "127.0.0.1"),
            ("POSTGRES_USER", "postgres"),
            ("POSTGRES_DB", "market"),
            ("DATABASE_SSLMODE", "disable"),
        ])
        .unwrap();
        assert_eq!(
            s.database.to_string(),
            "postgres://postgres@127.0.0.1:5432/market (sslmode disable, from POSTGRES_HOST/PORT/USER/PASSWORD/DB)"
        );
    }

    #[test]
    fn bad_settings_name_the_variable_and_hide_secrets() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "DATABASE_URL: no database configured"),
            (
                &[("DATABASE_URL", "mysql://u:hunter2@h/db")],
                "DATABASE_URL: is not a valid postgres:// URL",
            ),
            (
                &[("DATABASE_URL", "postgres://u:hunter2@h:notaport/db")],
                "DATABASE_URL: is not a valid postgres:// URL",
            ),
            (
                &[(
                    "DB_CREDENTIALS_JSON",
                    r#"{"username":"u","password":"hunter2"}"#,
                )],
                "DB_CREDENTIALS_JSON: is not the expected JSON object: missing field `host`",
            ),
            (
                &[(
                    "DB_CREDENTIALS_JSON",
                    r#"{"username":"u","password":"hunter2","host":"h","port":"99999"}"#,
                )],
                "DB_CREDENTIALS_JSON: `99999` is not a TCP port",
            ),
            (
                &[(
                    "DB_CREDENTIALS_JSON",
                    r#"{"username":"u","password":98765432,"host":"h"}"#,
                )],
                "DB_CREDENTIALS_JSON: `password` must be a string",
            ),
            (
                &[("DB_CREDENTIALS_JSON", "hunter2")],
                "DB_CREDENTIALS_JSON: is not the expected JSON object",
            ),
            (
                &[("POSTGRES_HOST", "h"), ("POSTGRES_USER", "u")],
                "POSTGRES_DB: is required",
            ),
            (
                &[
                    ("POSTGRES_HOST", "h"),
                    ("POSTGRES_USER", "u"),
                    ("POSTGRES_DB", "d"),
                    ("POSTGRES_PORT", "x"),
                ],
                "POSTGRES_PORT: `x` is not a TCP port",
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://u:hunter2@h/db"),
                    ("DATABASE_SSLMODE", "always"),
                ],
                "DATABASE_SSLMODE: `always` is not one of",
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://u:hunter2@h/db"),
                    ("DATABASE_SSLROOTCERT", "/nonexistent/rds.pem"),
                ],
                "DATABASE_SSLROOTCERT: `/nonexistent/rds.pem` is not a readable file",
            ),
        ];
        for (vars, fragment) in cases {
            let message = settings(vars).unwrap_err().to_string();
            assert!(
                message.starts_with(fragment),
                "`{message}` does not start with `{fragment}`"
            );
            assert!(
                !message.contains("hunter2") && !message.contains("98765432"),
                "`{message}` leaks a secret"
            );
        }
    }
}
