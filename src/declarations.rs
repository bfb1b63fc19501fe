//! Job declarations: the one place where a job's name, schedule, size, timeout and
//! overlap policy are written.
//!
//! Each job has a file `jobs/<name>.yaml` (or `.json`). The binary embeds the directory
//! at build time and parses it here; the Terraform reads the same files with
//! `yamldecode`/`jsondecode`. This module validates a declaration completely (name
//! matches the file, schedule parses as EventBridge syntax, cpu/memory is a pair Fargate
//! accepts) so that `run-job check` in CI catches what AWS would reject at apply time.
//! It knows nothing about how jobs run.
//!
//! Jobs compiled only for tests (feature `test-jobs`) are declared in `tests/jobs/` so
//! that the Terraform never sees them.

use std::fmt;
use std::time::Duration;

use include_dir::{Dir, include_dir};
use serde::Deserialize;

use crate::schedule::{Schedule, ScheduleError};

static JOBS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/jobs");
#[cfg(feature = "test-jobs")]
static TEST_JOBS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/jobs");

/// A validated job declaration.
#[derive(Debug, Clone)]
pub struct JobDeclaration {
    pub name: String,
    pub description: String,
    pub schedule: Schedule,
    pub size: Size,
    pub architecture: Architecture,
    pub timeout: Duration,
    pub overlap: Overlap,
    pub enabled: bool,
    /// Which image the task runs: the slim one, or the one with Chromium.
    pub image: Image,
    /// Whether the container's root filesystem is read-only (a writable /tmp is always
    /// mounted). Defaults to true.
    pub read_only_root_filesystem: bool,
    /// The environment variable holding a check-in URL (Healthchecks.io style) that each
    /// run pings; the URL itself is a secret and is never written here.
    pub heartbeat_url_env: Option<String>,
    /// What the job reads from its environment, and so all its task receives besides
    /// the runner's own variables ([`crate::config::RUNNER_SECRETS`],
    /// [`crate::config::RUNNER_ENVIRONMENT`]).
    pub reads: Reads,
    /// The group whose one task per tick runs this job (`run-job tick <group>`), if it
    /// shares one ([`crate::groups`]).
    pub shares_task: Option<String>,
    /// The peak resident memory of one run, measured: what the job adds to a shared
    /// task's size.
    pub peak_memory_mib: Option<u32>,
    /// Where it was read from, for messages.
    pub source: String,
}

/// The variables a job reads. The Terraform passes each task exactly these (those the
/// operator supplied), the runner hides every other variable from the job, and a test
/// fails when a job reads one that is not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reads {
    /// Secrets every deployment must supply: `run-job check` fails without them and the
    /// Terraform refuses a plan whose `secrets` lacks one.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Secrets some configurations need (another storage, an optional channel); the
    /// job's own settings say when.
    #[serde(default)]
    pub optional_secrets: Vec<String>,
    /// Plain settings (URLs, limits, switches), from the Terraform's `environment`.
    #[serde(default)]
    pub environment: Vec<String>,
}

impl Reads {
    /// Every variable listed, secret or not.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .chain(&self.optional_secrets)
            .chain(&self.environment)
            .map(String::as_str)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for name in self.all() {
            if !valid_env_name(name) {
                return Err(format!(
                    "reads: `{name}` is not an environment variable name (A-Z, 0-9 and _, not starting with a digit)"
                ));
            }
            if !seen.insert(name) {
                return Err(format!("reads: `{name}` is listed twice"));
            }
        }
        Ok(())
    }
}

/// Fargate task size: CPU units (1024 = 1 vCPU) and memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    pub cpu: u32,
    pub memory: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    Arm64,
    X86_64,
}

/// The two images the Dockerfile builds (targets `slim` and `chromium`); Terraform tags
/// them `<tag>` and `<tag>-chromium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    #[default]
    Slim,
    Chromium,
}

/// What happens when a run starts while another run of the same job is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The new run takes a PostgreSQL advisory lock or, failing that, skips.
    Forbid,
    /// Runs may proceed side by side (jobs that claim their work row by row).
    Allow,
}

/// The file format, as written by people.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclaration {
    name: String,
    description: String,
    schedule: String,
    size: Size,
    architecture: Architecture,
    timeout_seconds: u64,
    overlap: Overlap,
    enabled: bool,
    #[serde(default)]
    image: Image,
    #[serde(default = "yes")]
    read_only_root_filesystem: bool,
    #[serde(default)]
    heartbeat_url_env: Option<String>,
    #[serde(default)]
    reads: Reads,
    #[serde(default)]
    shares_task: Option<String>,
    #[serde(default)]
    peak_memory_mib: Option<u32>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: {source}")]
    Schedule {
        file: String,
        #[source]
        source: ScheduleError,
    },
    #[error("job `{name}` is declared twice: {first} and {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        })
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overlap::Forbid => "forbid",
            Overlap::Allow => "allow",
        })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cpu / {} MiB", self.cpu, self.memory)
    }
}

/// Longest timeout a declaration may ask for. A scheduled job that needs more than a
/// day is a different kind of workload.
const MAX_TIMEOUT_SECONDS: u64 = 24 * 3600;
/// EventBridge rule names are at most 64 characters and carry a prefix.
const MAX_NAME_LEN: usize = 40;

impl Size {
    /// Memory values Fargate accepts for this CPU (ECS task size table).
    pub fn allowed_memory(cpu: u32) -> Option<Vec<u32>> {
        let range = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect();
        Some(match cpu {
            256 => vec![512, 1024, 2048],
            512 => range(1024, 4096, 1024),
            1024 => range(2048, 8192, 1024),
            2048 => range(4096, 16384, 1024),
            4096 => range(8192, 30720, 1024),
            8192 => range(16384, 61440, 4096),
            16384 => range(32768, 122880, 8192),
            _ => return None,
        })
    }

    fn validate(&self) -> Result<(), String> {
        let Some(allowed) = Size::allowed_memory(self.cpu) else {
            return Err(format!(
                "size.cpu {} is not a Fargate CPU value; use 256, 512, 1024, 2048, 4096, 8192 or 16384",
                self.cpu
            ));
        };
        if !allowed.contains(&self.memory) {
            return Err(format!(
                "size.memory {} MiB is not allowed with cpu {} on Fargate; allowed: {}",
                self.memory,
                self.cpu,
                allowed
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && bytes[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && !name.contains("--")
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn valid_env_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
}

impl RawDeclaration {
    /// The checks of the fields that stand alone: size, timeout, heartbeat variable,
    /// reads, group and peak memory.
    fn check(&self) -> Result<(), String> {
        self.size.validate()?;
        if self.timeout_seconds == 0 || self.timeout_seconds > MAX_TIMEOUT_SECONDS {
            return Err(format!(
                "timeout_seconds {} is out of range 1-{MAX_TIMEOUT_SECONDS}",
                self.timeout_seconds
            ));
        }
        // The value is not echoed: someone who wrote the secret URL itself here should
        // not see it copied into CI logs too.
        if self
            .heartbeat_url_env
            .as_deref()
            .is_some_and(|var| !valid_env_name(var))
        {
            return Err(
                "heartbeat_url_env must name an environment variable (A-Z, 0-9 and _, not starting with a digit) that holds the URL, not the URL itself"
                    .to_string(),
            );
        }
        self.reads.validate()?;
        if let Some(group) = &self.shares_task
            && !crate::groups::valid_group_name(group)
        {
            return Err(format!(
                "shares_task `{group}` must be a-z, 0-9 and dashes, start with a letter and have at most 21 characters"
            ));
        }
        if self.peak_memory_mib == Some(0) {
            return Err("peak_memory_mib must be a positive number of MiB".into());
        }
        Ok(())
    }
}

impl JobDeclaration {
    /// Parses and validates one declaration file. `file` is its name, `text` its content.
    pub fn parse(file: &str, text: &str) -> Result<JobDeclaration, Error> {
        let invalid = |message: String| Error::Invalid {
            file: file.to_string(),
            message,
        };
        let raw: RawDeclaration = if file.ends_with(".json") {
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?
        } else {
            serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?
        };
        let stem = file
            .rsplit('/')
            .next()
            .and_then(|f| f.rsplit_once('.'))
            .map_or(file, |(stem, _)| stem);
        if !valid_name(&raw.name) {
            return Err(invalid(format!(
                "name `{}` must be kebab-case (a-z, 0-9, single dashes), start with a letter and have at most {MAX_NAME_LEN} characters",
                raw.name
            )));
        }
        if raw.name != stem {
            return Err(invalid(format!(
                "name `{}` does not match the file name `{stem}`",
                raw.name
            )));
        }
        if raw.description.trim().is_empty() {
            return Err(invalid("description is empty".to_string()));
        }
        let schedule = Schedule::parse(&raw.schedule).map_err(|source| Error::Schedule {
            file: file.to_string(),
            source,
        })?;
        raw.check().map_err(invalid)?;
        Ok(JobDeclaration {
            name: raw.name,
            description: raw.description.trim().to_string(),
            schedule,
            size: raw.size,
            architecture: raw.architecture,
            timeout: Duration::from_secs(raw.timeout_seconds),
            overlap: raw.overlap,
            enabled: raw.enabled,
            image: raw.image,
            read_only_root_filesystem: raw.read_only_root_filesystem,
            heartbeat_url_env: raw.heartbeat_url_env,
            reads: raw.reads,
            shares_task: raw.shares_task,
            peak_memory_mib: raw.peak_memory_mib,
            source: file.to_string(),
        })
    }
}

/// Every declaration embedded in this binary, sorted by name, or every problem found.
pub fn embedded() -> Result<Vec<JobDeclaration>, Vec<Error>> {
    #[allow(unused_mut)]
    let mut dirs: Vec<(&str, &Dir)> = vec![("jobs", &JOBS_DIR)];
    #[cfg(feature = "test-jobs")]
    dirs.push(("tests/jobs", &TEST_JOBS_DIR));
    let files = dirs.into_iter().flat_map(|(prefix, dir)| {
        dir.files().filter_map(move |f| {
            let name = f.path().to_string_lossy();
            let declaration =
                name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
            declaration.then(|| (format!("{prefix}/{name}"), f.contents_utf8()))
        })
    });
    from_files(files)
}

/// Parses a set of declaration files, collecting every error rather than the first.
pub fn from_files<'a>(
    files: impl IntoIterator<Item = (String, Option<&'a str>)>,
) -> Result<Vec<JobDeclaration>, Vec<Error>> {
    let mut declarations: Vec<JobDeclaration> = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        let Some(text) = text else {
            errors.push(Error::Invalid {
                file,
                message: "is not UTF-8".to_string(),
            });
            continue;
        };
        match JobDeclaration::parse(&file, text) {
            Ok(d) => {
                if let Some(first) = declarations.iter().find(|x| x.name == d.name) {
                    errors.push(Error::Duplicate {
                        name: d.name.clone(),
                        first: first.source.clone(),
                        second: d.source.clone(),
                    });
                } else {
                    declarations.push(d);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    declarations.sort_by(|a, b| a.name.cmp(&b.name));
    if errors.is_empty() {
        Ok(declarations)
    } else {
        Err(errors)
    }
}

/// A member of the `light` shared task (0.25 vCPU / 0.5 GB, 64 MiB measured) for other
/// modules' tests: `name`, `schedule`, and in `extra` any keys this does not set.
#[cfg(test)]
pub(crate) fn sharing_fixture(name: &str, schedule: &str, extra: &str) -> JobDeclaration {
    let text = format!(
        "name: {name}\ndescription: Fixture.\nschedule: {schedule}\nsize: {{cpu: 256, memory: 512}}\narchitecture: arm64\ntimeout_seconds: 60\noverlap: forbid\nenabled: true\nshares_task: light\npeak_memory_mib: 64\n{extra}"
    );
    JobDeclaration::parse(&format!("{name}.yaml"), &text).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: sync-payments\ndescription: Reconcile payments\nschedule: cron(0/5 * * * ? *)\nsize: {cpu: 256, memory: 512}\narchitecture: arm64\ntimeout_seconds: 240\noverlap: forbid\nenabled: true\n";

    fn err(file: &str, text: &str) -> String {
        JobDeclaration::parse(file, text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_declaration_parses_in_yaml_and_json() {
        let d = JobDeclaration::parse("jobs/sync-payments.yaml", GOOD).unwrap();
        assert_eq!(d.name, "sync-payments");
        assert_eq!(
            d.size,
            Size {
                cpu: 256,
                memory: 512
            }
        );
        assert_eq!(d.timeout, Duration::from_secs(240));
        assert_eq!(d.overlap, Overlap::Forbid);
        assert_eq!(
            (d.image, d.read_only_root_filesystem),
            (Image::Slim, true),
            "defaults"
        );
        let d = JobDeclaration::parse(
            "jobs/sync-payments.yaml",
            &format!("{GOOD}image: chromium\nread_only_root_filesystem: false\n"),
        )
        .unwrap();
        assert_eq!(
            (d.image, d.read_only_root_filesystem),
            (Image::Chromium, false)
        );
        let json = r#"{"name":"scraping","description":"Crawl","schedule":"rate(30 minutes)","size":{"cpu":2048,"memory":4096},"architecture":"x86_64","timeout_seconds":1500,"overlap":"forbid","enabled":false}"#;
        let d = JobDeclaration::parse("jobs/scraping.json", json).unwrap();
        assert_eq!(d.architecture, Architecture::X86_64);
        assert!(!d.enabled);
    }

    #[test]
    fn bad_declarations_name_the_file_and_the_problem() {
        let cases = [
            (
                "jobs/other.yaml",
                GOOD.to_string(),
                "jobs/other.yaml: name `sync-payments` does not match the file name `other`",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("memory: 512", "memory: 4096"),
                "size.memory 4096 MiB is not allowed with cpu 256 on Fargate; allowed: 512, 1024, 2048",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("cpu: 256", "cpu: 300"),
                "size.cpu 300 is not a Fargate CPU value",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("cron(0/5 * * * ? *)", "cron(0/5 * * * * *)"),
                "jobs/sync-payments.yaml: invalid schedule `cron(0/5 * * * * *)`",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("timeout_seconds: 240", "timeout_seconds: 0"),
                "timeout_seconds 0 is out of range",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("arm64", "sparc"),
                "architecture",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("forbid", "sometimes"),
                "overlap",
            ),
            (
                "jobs/sync-payments.yaml",
                format!("{GOOD}retries: 3\n"),
                "retries",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("enabled: true\n", ""),
                "enabled",
            ),
            (
                "jobs/Sync_Payments.yaml",
                GOOD.replace("sync-payments", "Sync_Payments"),
                "must be kebab-case",
            ),
            (
                "jobs/sync-payments.yaml",
                GOOD.replace("Reconcile payments", "\"  \""),
                "description is empty",
            ),
            (
                "jobs/sync-payments.yaml",
                format!("{GOOD}heartbeat_url_env: https://hc-ping.com/abc\n"),
                "heartbeat_url_env must name an environment variable",
            ),
        ];
        for (file, text, fragment) in cases {
            let message = err(file, &text);
            assert!(
                !message.contains("hc-ping"),
                "a URL is never echoed: {message}"
            );
            assert!(message.contains(fragment), "`{message}` lacks `{fragment}`");
            assert!(message.starts_with(file), "`{message}` names {file}");
        }
    }

    #[test]
    fn every_fargate_pair_is_accepted_and_neighbours_are_not() {
        for cpu in [256, 512, 1024, 2048, 4096, 8192, 16384] {
            let allowed = Size::allowed_memory(cpu).unwrap();
            for memory in &allowed {
                assert!(
                    Size {
                        cpu,
                        memory: *memory
                    }
                    .validate()
                    .is_ok()
                );
            }
            let below = allowed[0] - 512;
            let above = allowed[allowed.len() - 1] + 1024;
            assert!(
                Size { cpu, memory: below }.validate().is_err(),
                "{cpu}/{below}"
            );
            assert!(
                Size { cpu, memory: above }.validate().is_err(),
                "{cpu}/{above}"
            );
        }
        assert_eq!(Size::allowed_memory(4096).unwrap().len(), 23);
    }

    #[test]
    fn duplicates_are_reported() {
        let files = [
            ("jobs/sync-payments.yaml".to_string(), Some(GOOD)),
            ("jobs/sync-payments.yml".to_string(), Some(GOOD)),
        ];
        let errors = from_files(files).unwrap_err();
        assert!(errors[0].to_string().contains("declared twice"));
    }

    #[test]
    fn the_embedded_declarations_are_valid() {
        let declarations = embedded().unwrap_or_else(|e| panic!("{e:?}"));
        let mut names: Vec<_> = declarations.iter().map(|d| d.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), declarations.len());
    }
}
