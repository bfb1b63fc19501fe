//! The scraping job against sites that attack it: links and redirects into an internal
//! service on another loopback port, a `<base href>` elsewhere, image URLs and page
//! scripts aimed at that service, a NUL in a title, a description of 50 million
//! characters, a self-signed copy of a site. The internal service must see nothing,
//! nothing off-site may be stored, and the legitimate events still must be; the browser
//! must not hold the run's secrets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use run_job::sandbox::site::{Route, Site};
use sqlx::PgPool;

use crate::helpers::{output, run_job_on, summary};

const NOW: &str = "2026-11-25T15:00:00-03:00";

/// Secrets the run-job process holds (it is started with them) and its browser must not.
const SECRETS: &[(&str, &str)] = &[
    ("DLOCAL_SECRET_KEY", "dlocal-secret-7f3a9"),
    ("FEU_PASSWORD", "feu-password-51c2e"),
    ("RESEND_API_KEY", "re_resend-key-88d0b"),
    ("R2_SECRET_ACCESS_KEY", "r2-secret-0b6e1"),
];

fn entraste_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sites/entraste")
}

fn page(file: &str) -> String {
    std::fs::read_to_string(entraste_fixture().join(file)).unwrap()
}

fn html(body: String) -> Route {
    Route::Fixed {
        status: 200,
        content_type: "text/html; charset=utf-8".into(),
        body: body.into_bytes(),
    }
}

fn crawl(pool: &PgPool, base_url: &str, uploads: &std::path::Path) -> tokio::process::Command {
    let mut cmd = run_job_on(pool);
    cmd.arg("scraping")
        .env("SCRAPER_PLATFORMS", "entraste")
        .env("SCRAPER_ENTRASTE_URL", base_url)
        .env("RUN_JOB_NOW", NOW)
        .env("SCRAPER_SAME_DOMAIN_DELAY_SECS", "0")
        .env("SCRAPER_NAVIGATION_TIMEOUT_SECS", "3")
        // No resolver rules of the test's own: the job's (only the sites' hosts
        // resolve) are what stands between a popup or a worker and 127.0.0.2.
        .env("STORAGE_LOCAL_PATH", uploads)
        .env("STORAGE_BASE_URL", "https://cdn.test");
    for (name, value) in SECRETS {
        cmd.env(name, value);
    }
    if let Ok(path) = std::env::var("SCRAPER_CHROMIUM_PATH") {
        cmd.env("SCRAPER_CHROMIUM_PATH", path);
    }
    cmd
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("run-job-hostile-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn stored(pool: &PgPool) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("SELECT external_id, name, description FROM events ORDER BY external_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The processes below `root` (children, grandchildren...), with `root`.
fn tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found
}

/// The proportional set size of `root`'s whole process tree, in MiB.
fn tree_pss_mib(root: u32) -> u64 {
    let kib: u64 = tree(root)
        .into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|rollup| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum();
    kib / 1024
}

/// A hostile Entraste: its home page links to the internal service by a user name that
/// looks like the site, by another port, through a `<base href>` and through a redirect,
/// and fetches it from a script; one event page points its images at the service and
/// puts a NUL in its title; one page never finishes, so the crawl lasts while the
/// browser's environment is read.
#[sqlx::test(migrations = "./migrations")]
async fn a_hostile_site_reaches_nothing_inside_and_its_legitimate_event_is_stored(pool: PgPool) {
    let internal = Site::start(None).await.unwrap();
    // A private service on an address the site is not on: what a popup, a worker or a
    // WebSocket aims at, past the tab's request interception.
    let private = Site::start_on([127, 0, 0, 2], None).await.unwrap();
    let elsewhere = private.base_url.clone();
    let elsewhere_ws = elsewhere.replace("http://", "ws://");
    let site = Site::start(Some(entraste_fixture())).await.unwrap();
    let site_authority = site.base_url.trim_start_matches("http://").to_string();
    let inside = internal.base_url.clone();
    let inside_authority = inside.trim_start_matches("http://").to_string();
    let s = &site.base_url;
    site.route(
        "/",
        html(format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><base href="{inside}/"></head><body>
<div id="events">
<a class="event-card" href="{s}/evento/fiesta-de-verano/">Legítimo</a>
<a class="event-card" href="{s}/evento/imagen-interna/">Imágenes adentro</a>
<a class="event-card" href="http://{site_authority}@{inside_authority}/evento/robado/">Usuario</a>
<a class="event-card" href="{inside}/evento/interno/">Otro puerto</a>
<a class="event-card" href="evento/base/">Base</a>
<a class="event-card" href="{s}/evento/redirige/">Redirección</a>
<a class="event-card" href="{s}/evento/se-cuelga/">Cuelga</a>
</div>
<script>fetch('{inside}/desde-un-script').catch(() => {{}}); new Image().src = '{inside}/pixel.gif';
window.open('{elsewhere}/popup');
try {{ new WebSocket('{elsewhere_ws}/socket'); }} catch (e) {{}}
const work = "fetch('{elsewhere}/worker').catch(() => {{}})";
new Worker(URL.createObjectURL(new Blob([work], {{ type: 'text/javascript' }})));
try {{ new SharedWorker(URL.createObjectURL(new Blob([work], {{ type: 'text/javascript' }}))); }} catch (e) {{}}
</script>
<a href="{elsewhere}/nueva-ventana" target="_blank" id="blank">x</a><script>document.getElementById('blank').click();</script>
</body></html>"#
        )),
    );
    let legit = page("evento/fiesta-de-verano/index.html");
    let aimed_inside = legit
        .replace(
            "/img/fiesta-de-verano-imagebox.svg",
            &format!("{inside}/img/secreta.jpg"),
        )
        .replace(
            "/img/fiesta-de-verano-flyer-image.svg",
            &format!("http://{site_authority}@{inside_authority}/img/otra.jpg"),
        )
        .replace("Fiesta de Verano\n", "Imágenes Adentro\n")
        .replace(
            "</body>",
            &format!(
                "<script>document.querySelector('.event-info-title').append('\\u0000 NUL'); fetch('{inside}/xhr').catch(() => {{}});</script></body>"
            ),
        );
    site.route("/evento/imagen-interna/", html(aimed_inside));
    site.route(
        "/evento/redirige/",
        Route::Redirect(format!("{inside}/latest/meta-data/")),
    );
    site.route("/evento/se-cuelga/", Route::Hang);

    let uploads = tempdir();
    let child = crawl(&pool, &site.base_url, &uploads)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run_job = child.id().unwrap();

    // While it crawls: the browser's environment holds none of the run's secrets.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut browser_environ = None;
    while browser_environ.is_none() && Instant::now() < deadline {
        for pid in tree(run_job).into_iter().skip(1) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("run-job-chromium-")
                && let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ"))
                && !environ.is_empty()
            {
                browser_environ = Some((pid, String::from_utf8_lossy(&environ).into_owned()));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (browser, environ) = browser_environ.expect("no browser process seen during the crawl");
    // run-job made itself uninspectable before starting the browser: a process of its
    // user (the browser's) cannot read its environment. Root still can, and the test
    // then checks it holds the secrets the browser must not.
    let run_job_environ = match std::fs::read(format!("/proc/{run_job}/environ")) {
        Ok(environ) => String::from_utf8_lossy(&environ).into_owned(),
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            SECRETS
                .iter()
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    for (name, value) in SECRETS {
        assert!(
            run_job_environ.contains(value),
            "the test did not give run-job {name}"
        );
        assert!(
            !environ.contains(value),
            "browser process {browser} holds {name}"
        );
    }
    assert!(
        !environ.contains("DATABASE_URL") && !environ.contains("postgres://"),
        "browser process {browser} holds the database's address"
    );
    assert!(environ.contains("HOME="), "{environ:?}");

    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    assert_eq!(internal.total_hits(), 0, "the internal service was reached");
    assert_eq!(
        private.total_hits(),
        0,
        "a popup, worker or WebSocket reached the private service"
    );
    let events = stored(&pool).await;
    let ids: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, ["fiesta-de-verano", "imagen-interna"], "{events:?}");
    let (_, name, _) = &events[1];
    assert!(
        name.starts_with("Imágenes Adentro") && name.ends_with(" NUL") && !name.contains('\0'),
        "the NUL is dropped, the rest kept: {name:?}"
    );

    let s = summary(&stderr);
    let entraste = &s["details"]["sites"]["entraste"];
    assert_eq!(entraste["refused_links"], 3, "{entraste}");
    assert!(
        s["details"]["blocked_requests"].as_u64().unwrap() >= 3,
        "script fetches and the redirect are blocked in the browser: {s}"
    );
    let failures = entraste["failures"].to_string();
    assert!(
        failures.contains("/evento/redirige/") && failures.contains("net::ERR_BLOCKED_BY_CLIENT"),
        "{failures}"
    );
    assert_eq!(s["details"]["images_published"], 0, "{s}");
    assert!(s["details"]["images_failed"].as_u64().unwrap() >= 2, "{s}");
    std::fs::remove_dir_all(&uploads).ok();
}

/// A page whose description is 50 million characters: what crosses from the browser is
/// cut in the page, what is stored is cut again, and the process tree stays far below
/// the 1 GiB task.
#[sqlx::test(migrations = "./migrations")]
async fn a_fifty_million_character_description_is_capped_and_memory_stays_bounded(pool: PgPool) {
    let site = Site::start(Some(entraste_fixture())).await.unwrap();
    let s = &site.base_url;
    site.route(
        "/",
        html(format!(
            r#"<!doctype html><html><body><div id="events"><a class="event-card" href="{s}/evento/enorme/">Enorme</a></div></body></html>"#
        )),
    );
    let huge = page("evento/fiesta-de-verano/index.html")
        .replace("Fiesta de Verano\n", "Descripción Enorme\n")
        .replace(
            "</body>",
            "<script>document.getElementById('event-description').textContent = 'x'.repeat(50000000);</script></body>",
        );
    site.route("/evento/enorme/", html(huge));

    let uploads = tempdir();
    let child = crawl(&pool, &site.base_url, &uploads)
        // Production's: laying out 50 million characters takes the browser seconds.
        .env("SCRAPER_NAVIGATION_TIMEOUT_SECS", "45")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id().unwrap();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        loop {
            let now = tree_pss_mib(root);
            if now == 0 {
                return peak;
            }
            peak = peak.max(now);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let out = child.wait_with_output().await.unwrap();
    let peak = sampler.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events = stored(&pool).await;
    assert_eq!(events.len(), 1, "{events:?}\n{stderr}");
    let description = events[0].2.clone().unwrap_or_default();
    assert_eq!(description.chars().count(), 10_000);
    println!("process tree PSS peak with a 50,000,000-character description: {peak} MiB");
    assert!(
        peak < 600,
        "the process tree peaked at {peak} MiB; the task has 1024"
    );
    std::fs::remove_dir_all(&uploads).ok();
}

/// A copy of a site behind a self-signed certificate: nothing is stored and the run
/// fails naming the certificate.
#[sqlx::test(migrations = "./migrations")]
async fn a_self_signed_copy_of_a_site_stores_nothing_and_fails_naming_the_certificate(
    pool: PgPool,
) {
    let dir = tempdir();
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Serves the fixture site's files (`-WWW`) over TLS with that certificate.
    let mut server = tokio::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-WWW", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .current_dir(entraste_fixture())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let r = output(crawl(&pool, &format!("https://127.0.0.1:{port}"), &dir)).await;
    server.kill().await.ok();
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the site's certificate was refused (net::ERR_CERT_AUTHORITY_INVALID)"),
        "{}",
        r.stderr
    );
    assert!(stored(&pool).await.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
