//! The commands, one file each: from parsed arguments and the checked declarations to
//! an exit code. [`crate::app`] picks one; [`wiring`] is what they are all built from.
//!
//! - [`once`]: `run-job <name>`, one run of one job (what EventBridge starts).
//! - [`tick`]: `run-job tick <group>`, the due members of a shared task.
//! - [`scheduler`]: `run-job --schedule`, every job on its schedule in one process.
//! - [`list`], [`next`], [`check`], [`migrate`], [`runs`], [`requeue`], [`cost`]: the
//!   operator's commands of the same names.

pub(crate) mod check;
pub(crate) mod cost;
pub(crate) mod list;
pub(crate) mod migrate;
pub(crate) mod next;
pub(crate) mod once;
pub(crate) mod requeue;
pub(crate) mod runs;
pub(crate) mod scheduler;
pub(crate) mod tick;
pub(crate) mod wiring;
