//! `run-job migrate`: applies migrations/ to the configured database.

use super::wiring::{connect, shutdown_on_signal};
use crate::exit::Exit;

pub(crate) async fn run() -> Exit {
    let (pool, _) = match connect("run-job:migrate", &shutdown_on_signal()).await {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    match sqlx::migrate!("./migrations").run(&pool).await {
        Ok(()) => {
            println!("migrations applied");
            Exit::Success
        }
        Err(e) => {
            eprintln!("run-job: migration failed: {e}");
            Exit::Runner
        }
    }
}
