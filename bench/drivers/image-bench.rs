//! Benchmark driver for the image pipeline's CPU work, the counterpart of
//! bench/images/sharp-baseline.mjs: every image in a directory, treated as a hero (WebP
//! copy, 560×560 thumbnail, Open Graph card), `--iterations` times, on `--concurrency`
//! threads. Prints one JSON line: time per image and the process's peak RSS. With
//! `--out DIR` it also writes each image's outputs once, for looking at.
//! Run through bench/run-images, which runs the sharp baseline beside it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use run_job::jobs::scraping::images::{Wanted, render, watermark::Watermark};

mod support;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut iterations, mut concurrency, mut out) = (None, 3usize, 2usize, None);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--iterations" => iterations = value()?.parse()?,
            "--concurrency" => concurrency = value()?.parse()?,
            "--out" => out = Some(PathBuf::from(value()?)),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let dir = dir.ok_or_else(|| anyhow::anyhow!("--dir is required"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("jpg" | "jpeg" | "png" | "webp")
            )
        })
        .collect();
    files.sort();
    // Read up front, as the baseline does: the benchmark times processing, not disk.
    let inputs: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let watermark = Watermark::built_in()?;
    let wanted = Wanted {
        original: true,
        thumbnail: true,
        og: true,
    };

    if let Some(out) = &out {
        std::fs::create_dir_all(out)?;
        for (file, input) in files.iter().zip(&inputs) {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
            let rendered = render(input.clone(), 100_000_000, &watermark, wanted)?;
            let outputs = [
                (format!("{stem}.webp"), rendered.original.map(Ok)),
                (format!("{stem}_thumb.webp"), rendered.thumbnail),
                (format!("og_{stem}.jpg"), rendered.og),
            ];
            for (name, bytes) in outputs {
                if let Some(bytes) = bytes {
                    std::fs::write(out.join(name), bytes?)?;
                }
            }
        }
    }

    let queue: Mutex<Vec<usize>> = Mutex::new(
        (0..iterations)
            .flat_map(|_| 0..inputs.len())
            .rev()
            .collect(),
    );
    let times = Mutex::new(Vec::new());
    let sizes = Mutex::new([0u64; 3]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                loop {
                    let Some(i) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let out = render(inputs[i].clone(), 100_000_000, &watermark, wanted);
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    match out {
                        Ok(out) => {
                            let mut s = sizes.lock().unwrap();
                            s[0] += out.original.map_or(0, |b| b.len() as u64);
                            s[1] += out
                                .thumbnail
                                .and_then(Result::ok)
                                .map_or(0, |b| b.len() as u64);
                            s[2] += out.og.and_then(Result::ok).map_or(0, |b| b.len() as u64);
                        }
                        Err(e) => eprintln!("{}: {e}", files[i].display()),
                    }
                    times.lock().unwrap().push(ms);
                }
            });
        }
    });
    let total = started.elapsed().as_secs_f64();
    let mut times = times.into_inner().unwrap();
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let sizes = sizes.into_inner().unwrap();
    println!(
        "{}",
        serde_json::json!({
            "tool": "run-job",
            "images": inputs.len(),
            "iterations": iterations,
            "concurrency": concurrency,
            "mean_ms_per_image": times.iter().sum::<f64>() / times.len() as f64,
            "p50_ms": pick(0.5),
            "p95_ms": pick(0.95),
            "total_s": total,
            "throughput_ms_per_image": total * 1000.0 / times.len() as f64,
            "peak_rss_mib": support::peak_rss_kib()? as f64 / 1024.0,
            // One iteration's outputs, as the baseline reports them.
            "outputs_bytes": {
                "input": inputs.iter().map(|i| i.len() as u64).sum::<u64>(),
                "original": sizes[0] / iterations as u64,
                "thumbnail": sizes[1] / iterations as u64,
                "og": sizes[2] / iterations as u64,
            },
        })
    );
    Ok(())
}
