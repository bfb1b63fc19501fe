//! Benchmark driver for the image pipeline's real path, as the scraping job runs it:
//! every image in a directory served over loopback HTTP, downloaded, decoded, turned
//! into its outputs and stored (a local directory), through `ImagePipeline::publish`
//! with the job's own settings (`IMAGES_*` from the environment, defaults otherwise),
//! on a multi-threaded runtime like the binary's. Each round publishes every image as
//! a hero of a fresh event, the events one after another as the scraping job stores
//! them. Prints one JSON line: wall time, images, failures and the process's peak RSS
//! (`VmHWM`, all threads and allocations). Run through bench/run-images.
//! Needs feature `sandbox` (the loopback web site); without it, it says so and exits.
//! (Gated in code rather than with `required-features`, which the image build's
//! cargo-chef cannot parse once examples are left out of the build context.)

#[cfg(not(feature = "sandbox"))]
fn main() {
    eprintln!(
        "image-publish needs the sandbox feature: cargo run --features sandbox --example image-publish"
    );
    std::process::exit(2);
}

#[cfg(feature = "sandbox")]
use std::path::PathBuf;
#[cfg(feature = "sandbox")]
use std::time::Instant;

#[cfg(feature = "sandbox")]
use run_job::jobs::scraping::images::{ImageKind, ImagePipeline, ImageSettings, SourceImage};
#[cfg(feature = "sandbox")]
use run_job::sandbox::site::Site;
#[cfg(feature = "sandbox")]
use run_job::storage::Storage;

#[cfg(feature = "sandbox")]
mod support;

#[cfg(feature = "sandbox")]
fn main() -> anyhow::Result<()> {
    // As the binary does: the figure is the one production sees.
    run_job::allocator::tune();
    let mut args = std::env::args().skip(1);
    let (mut dir, mut rounds, mut per_event) = (None, 2usize, 4usize);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--rounds" => rounds = value()?.parse()?,
            "--per-event" => per_event = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let dir = dir.ok_or_else(|| anyhow::anyhow!("--dir is required"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(publish_all(dir, rounds, per_event))
}

#[cfg(feature = "sandbox")]
async fn publish_all(dir: PathBuf, rounds: usize, per_event: usize) -> anyhow::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            [".jpg", ".jpeg", ".png", ".webp"]
                .iter()
                .any(|ext| n.ends_with(ext))
        })
        .collect();
    names.sort();
    let site = Site::start(Some(dir.clone())).await?;
    let out = tempdir()?;
    let env = move |name: &str| std::env::var(name).ok();
    let settings = ImageSettings::from_env(&env)?;
    let out = out.to_string_lossy().into_owned();
    let storage =
        Storage::from_env(&move |name: &str| (name == "STORAGE_LOCAL_PATH").then(|| out.clone()))?;
    let pipeline = ImagePipeline::new(&settings, storage, std::slice::from_ref(&site.base_url))?;
    let started = Instant::now();
    let (mut published, mut failed) = (0usize, 0usize);
    for _ in 0..rounds {
        for chunk in names.chunks(per_event.max(1)) {
            let images: Vec<SourceImage> = chunk
                .iter()
                .map(|n| SourceImage {
                    kind: ImageKind::Hero,
                    url: site.url(&format!("/{n}")),
                })
                .collect();
            let report = pipeline.publish(uuid::Uuid::now_v7(), &images).await;
            published += report.published.len();
            failed += report.failures.iter().filter(|f| f.fatal).count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "images": names.len() * rounds,
            "rows_published": published,
            "dropped": failed,
            "total_s": secs,
            "mean_ms_per_image": secs * 1000.0 / (names.len() * rounds) as f64,
            "peak_rss_mib": support::peak_rss_kib().map_or(0.0, |kib| kib as f64 / 1024.0),
            "concurrency": settings.concurrency,
            "cpu_workers": settings.cpu_workers,
        })
    );
    Ok(())
}

#[cfg(feature = "sandbox")]
fn tempdir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("image-publish-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
