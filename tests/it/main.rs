//! Integration tests: the real `run-job` binary as separate processes, against a real
//! PostgreSQL with one fresh database per test (sqlx::test applies migrations/).

mod helpers;

mod cli;
mod cost;
mod database;
mod docs;
mod feu;
mod fixtures;
mod heartbeat;
mod hostile;
mod images;
mod invoices;
mod notifications;
mod payout_holds;
mod reads;
mod runs;
mod scheduler;
mod scraping;
mod storage;
mod sync_payments;
mod tick;
mod upload_reminders;
