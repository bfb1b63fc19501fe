//! run-job: the marketplace's background jobs in one binary.
//!
//! EventBridge starts an ECS task with `run-job <name>`, which runs that job once and
//! exits; `run-job --schedule` runs every job on its cron schedule locally. Data flows
//! one way: declaration → runner → job → database and providers.
//!
//! # Layout
//! Modules the binary, the tests and the benchmarks use are public; the rest are the
//! crate's own. Dependencies point one way: runner → jobs → shared services.
//!
//! The runner:
//! - [`cli`]: the command line (clap), no I/O.
//! - [`app`]: checks the declarations and hands the command to its file.
//! - [`commands`]: one file per command; `wiring` builds what they share (pool, deps,
//!   signals).
//! - [`declarations`]: `jobs/*.yaml`, the one place a job's name, schedule and size live.
//! - [`groups`]: jobs that share one task per tick, derived from the declarations.
//! - [`schedule`]: EventBridge `cron()`/`rate()` parsing, evaluation, local translation.
//! - [`run`]: one run of one job: lock, history, timeout, cancellation, summary line.
//! - [`clock`]: the time jobs decide by (system, replayed, or a test's).
//! - [`config`]: settings from the environment, secret-safe.
//! - [`database`]: reaching the database, failing fast with the cause.
//! - [`schema`]: what the jobs need from the database, read from migrations/.
//! - [`telemetry`]: the log subscriber (JSON lines off a terminal).
//! - [`exit`]: the exit codes.
//! - [`cost`]: the fleet's bill, from declarations, history and the price book.
//!
//! The jobs: [`jobs`], the `Job` trait, the registry, and one module per job.
//!
//! The services jobs share:
//! - [`http`]: the one HTTP client setup and retry policy for providers.
//! - [`egress`]: where outside data may send a request.
//! - [`storage`]: objects in a local directory or an S3-compatible service (R2).
//! - [`failure`]: what becomes of a failed item: given up, or retried when (one ladder).
//! - [`money`]: the commission, its VAT and the seller's amount, in exact decimals.
//! - [`notify`]: notification rows jobs leave for the notifications job.
//! - [`queue`]: the `jobs` table as a work queue: claim, reclaim, finish.
//! - [`statuses`]: the marketplace's order and invoice statuses, typed.

// No function over 80 lines in the crate (clippy.toml sets the threshold): one that long
// is doing more than one thing.
#![warn(clippy::too_many_lines)]

pub mod allocator;
pub mod app;
pub mod cli;
pub mod clock;
mod commands;
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
pub mod run;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod schedule;
mod schema;
mod statuses;
pub mod storage;
pub mod telemetry;
