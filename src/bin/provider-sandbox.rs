//! `provider-sandbox`: the local provider stand-ins (every one in `run_job::sandbox`) as a
//! process, for the Quickstart and benchmarks (feature `sandbox`). Prints
//! its base URL, then serves until killed.

use clap::Parser;
use run_job::sandbox::{Behaviour, Sandbox};

#[derive(Parser)]
#[command(
    about = "Local stand-ins for the providers (dLocal Go, Resend, WhatsApp, web push, Google Places, IndexNow, FEU, Healthchecks-style pings), speaking their wire formats"
)]
struct Args {
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, env = "DLOCAL_API_KEY", default_value = "sandbox-key")]
    api_key: String,
    #[arg(long, env = "DLOCAL_SECRET_KEY", default_value = "sandbox-secret")]
    secret_key: String,
    /// Added to every dLocal API answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Added to every Resend and WhatsApp answer.
    #[arg(long, default_value_t = 0)]
    provider_latency_ms: u64,
    /// Fraction of API answers that are a 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Answer unknown payment ids with this status (PENDING, PAID, ...) instead of 404.
    #[arg(long)]
    default_status: Option<String>,
    #[arg(long)]
    default_amount: Option<String>,
    /// `PREFIX=STATUS`: unknown ids starting with PREFIX get STATUS (repeatable).
    #[arg(long, value_parser = prefix_status)]
    status_for_prefix: Vec<(String, String)>,
}

fn prefix_status(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(p, st)| (p.to_string(), st.to_string()))
        .ok_or_else(|| format!("`{s}` is not PREFIX=STATUS"))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let sandbox = Sandbox::start(args.port, &args.api_key, &args.secret_key).await?;
    sandbox.behave(Behaviour {
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        default_status: args.default_status,
        default_amount: args.default_amount,
        status_by_prefix: args.status_for_prefix,
        ..Behaviour::default()
    });
    let script = run_job::sandbox::ProviderScript {
        latency_ms: args.provider_latency_ms,
        ..Default::default()
    };
    sandbox.script_email(script.clone());
    sandbox.script_whatsapp(script);
    println!("{}", sandbox.base_url);
    std::future::pending::<()>().await;
    Ok(())
}
