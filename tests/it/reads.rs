//! Each job reads only the variables its declaration lists (`reads` in jobs/<name>.yaml),
//! which are all its task receives in production: every job is built, as production and
//! as a local setup configure it, with an environment that answers every variable and
//! records which were asked for.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use run_job::declarations;
use run_job::jobs::{self, Deps};
use sqlx::postgres::PgPoolOptions;

/// Every setting a production task could be given, with values that parse.
fn production() -> HashMap<&'static str, String> {
    let (private, public) = crate::notifications::vapid_keys();
    let mut env: HashMap<&'static str, String> = [
        ("APP_BASE_URL", "https://revendiste.com"),
        ("DLOCAL_BASE_URL", "https://api.dlocalgo.com"),
        ("DLOCAL_API_KEY", "k"),
        ("DLOCAL_SECRET_KEY", "s"),
        ("FEU_AUTH_URL", "https://auth.feu.test/token"),
        ("FEU_API_BASE_URL", "https://api.feu.test"),
        ("FEU_USERNAME", "u"),
        ("FEU_PASSWORD", "p"),
        ("FEU_REFRESH_TOKEN", "r"),
        ("FEU_EMISOR_RUT", "219999830019"),
        ("RESEND_API_KEY", "re_x"),
        ("WHATSAPP_ACCESS_TOKEN", "w"),
        ("WHATSAPP_PHONE_NUMBER_ID", "1"),
        ("STORAGE_TYPE", "r2"),
        ("R2_ACCOUNT_ID", "a"),
        ("R2_ACCESS_KEY_ID", "a"),
        ("R2_SECRET_ACCESS_KEY", "s"),
        ("R2_PUBLIC_BUCKET", "public"),
        ("R2_PRIVATE_BUCKET", "private"),
        ("R2_CDN_DOMAIN", "cdn.revendiste.com"),
        ("GOOGLE_PLACES_API_KEY", "g"),
        ("INDEXNOW_KEY", "0123456789abcdef0123456789abcdef"),
        ("INDEXNOW_HOST", "revendiste.com"),
        ("SCRAPER_SITE_BUDGET_SECONDS", "60"),
        ("SCRAPER_CHROMIUM_ARGS", "mute-audio"),
        ("SCRAPER_HOST_RESOLVER_RULES", "MAP * ~NOTFOUND"),
        ("RUN_JOB_TASK_MEMORY_MB", "1024"),
        ("PUSH_SERVICE_ORIGINS", "http://127.0.0.1:9"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    env.insert("VAPID_PRIVATE_KEY", private);
    env.insert("VAPID_PUBLIC_KEY", public);
    env
}

/// A laptop's setup: files instead of R2, no optional channels.
fn local() -> HashMap<&'static str, String> {
    let mut env = production();
    for gone in [
        "R2_ACCOUNT_ID",
        "R2_CDN_DOMAIN",
        "WHATSAPP_ACCESS_TOKEN",
        "VAPID_PRIVATE_KEY",
        "VAPID_PUBLIC_KEY",
        "FEU_REFRESH_TOKEN",
    ] {
        env.remove(gone);
    }
    env.insert("STORAGE_TYPE", "local".into());
    env.insert("R2_ENDPOINT", "http://127.0.0.1:9".into());
    env
}

/// The variables `job` asks for when built with `values`.
fn read_by(job: &str, values: HashMap<&'static str, String>) -> BTreeSet<String> {
    let asked = Arc::new(Mutex::new(BTreeSet::new()));
    let record = asked.clone();
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:9/none")
        .unwrap();
    let env = Arc::new(move |name: &str| {
        record.lock().unwrap().insert(name.to_string());
        values.get(name).cloned()
    });
    let deps = Deps::from_env(pool, env).unwrap();
    // What the wiring itself read (RUN_JOB_NOW, for the clock) is not the job's.
    asked.lock().unwrap().clear();
    let registration = jobs::find(job).unwrap();
    if let Err(e) = (registration.build)(&deps) {
        panic!("job `{job}` cannot be built from the test's settings: {e:#}");
    }
    asked.lock().unwrap().clone()
}

#[tokio::test]
async fn every_job_reads_only_what_its_declaration_lists() {
    let declarations = declarations::embedded().unwrap();
    let mut undeclared = Vec::new();
    for d in declarations
        .iter()
        .filter(|d| d.source.starts_with("jobs/"))
    {
        let listed: BTreeSet<&str> = d.reads.all().collect();
        let mut asked = read_by(&d.name, production());
        asked.extend(read_by(&d.name, local()));
        for name in &asked {
            if !listed.contains(name.as_str()) {
                undeclared.push(format!("{} reads {name}", d.name));
            }
        }
        for name in listed {
            if !asked.contains(name) {
                undeclared.push(format!("{} lists {name} but never reads it", d.name));
            }
        }
    }
    assert!(
        undeclared.is_empty(),
        "`reads` in jobs/<name>.yaml disagrees with what the jobs read: {undeclared:#?}"
    );
}

#[tokio::test]
async fn a_job_does_not_see_a_variable_its_declaration_omits() {
    let declaration = declarations::embedded()
        .unwrap()
        .into_iter()
        .find(|d| d.name == "sync-payments")
        .unwrap();
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:9/none")
        .unwrap();
    // RUN_JOB_NOW is read as an instant; this environment answers every name.
    let env = Arc::new(|name: &str| (name != "RUN_JOB_NOW").then(|| format!("value of {name}")));
    let deps = Deps::from_env(pool, env).unwrap();
    let scoped = deps.scoped("sync-payments", &declaration.reads);
    assert_eq!(
        (scoped.env)("DLOCAL_API_KEY").as_deref(),
        Some("value of DLOCAL_API_KEY")
    );
    for other in [
        "FEU_PASSWORD",
        "RESEND_API_KEY",
        "R2_SECRET_ACCESS_KEY",
        "DATABASE_URL",
    ] {
        assert_eq!((scoped.env)(other), None, "sync-payments sees {other}");
    }
}
