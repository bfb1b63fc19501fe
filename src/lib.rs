//! run-job: the marketplace's background jobs in one binary.
//!
//! EventBridge starts an ECS task with `run-job <name>`, which runs that job once and
//! exits; `run-job --schedule` runs every job on its cron schedule locally. Data flows
//! one way: declaration → runner → job → database and providers.
//!
//! # Layout
//! Modules the binary, the tests and the benchmarks use are public; the rest are the
//! crate's own.
//!
//! - [`cli`]: the command line (clap), no I/O.
//! - [`app`]: each command, from parsed arguments to an exit code; signals; wiring.
//! - [`clock`]: the time jobs decide by (system, replayed, or a test's).
//! - [`check`]: `check --connect`, reaching the database, schema and providers.
//! - [`config`]: settings from the environment, secret-safe.
//! - [`database`]: reaching the database, failing fast with the cause.
//! - [`declarations`]: `jobs/*.yaml`, the one place a job's name, schedule and size live.
//! - [`schedule`]: EventBridge `cron()`/`rate()` parsing, evaluation, local translation.
//! - [`run`]: one run of one job: lock, history, timeout, cancellation, summary line.
//! - [`runs`]: `runs`, what ran, from `job_runs`.
//! - [`scheduler`]: `--schedule`, driving tokio-cron-scheduler.
//! - [`schema`]: what the jobs need from the database, read from migrations/.
//! - [`telemetry`]: the log subscriber (JSON lines off a terminal).
//! - [`exit`]: the exit codes.
//! - [`http`]: the one HTTP client setup and retry policy for providers.
//! - [`storage`]: objects in a local directory or an S3-compatible service (R2).
//! - [`failure`]: what becomes of a failed item: given up, or retried when (one ladder).
//! - [`money`]: the commission, its VAT and the seller's amount, in exact decimals.
//! - [`notify`]: notification rows jobs leave for the notifications job.
//! - [`queue`]: the `jobs` table as a work queue: claim, reclaim, finish.
//! - [`jobs`]: the `Job` trait, the registry, and one module per job.

pub mod allocator;
pub mod app;
mod check;
pub mod cli;
pub mod clock;
mod config;
pub mod cost;
mod database;
pub mod declarations;
mod egress;
pub mod exit;
mod failure;
pub mod groups;
mod http;
pub mod jobs;
mod money;
mod notify;
mod queue;
mod requeue;
pub mod run;
mod runs;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod schedule;
mod scheduler;
mod schema;
pub mod storage;
pub mod telemetry;
pub mod tick;
