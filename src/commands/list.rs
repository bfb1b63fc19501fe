//! `run-job list`: every declared job with its schedule, size and next fires, then the
//! shared-task groups with the delay each member can see.

use crate::clock;
use crate::declarations::JobDeclaration;
use crate::exit::Exit;

pub(crate) fn run(declarations: &[JobDeclaration]) -> Exit {
    if declarations.is_empty() {
        println!("This binary has no jobs.");
        return Exit::Success;
    }
    let now = clock::wall();
    // The name column fits the longest name (notify-upload-availability is 26).
    let w = declarations
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0)
        .max(16);
    println!(
        "{:<w$} {:<26} {:<18} {:<7} {:>7}  {:<7} {:<7} NEXT 3 FIRES (UTC)",
        "JOB", "SCHEDULE", "SIZE", "ARCH", "TIMEOUT", "OVERLAP", "ENABLED"
    );
    for d in declarations {
        let fires: Vec<String> = d
            .schedule
            .iter_after(now)
            .take(3)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .collect();
        println!(
            "{:<w$} {:<26} {:<18} {:<7} {:>6}s  {:<7} {:<7} {}",
            d.name,
            d.schedule.to_string(),
            format!("{}/{} MiB", d.size.cpu, d.size.memory),
            d.architecture.to_string(),
            d.timeout.as_secs(),
            d.overlap.to_string(),
            if d.enabled { "yes" } else { "no" },
            if fires.is_empty() {
                "never".to_string()
            } else {
                fires.join(", ")
            }
        );
    }
    let groups = crate::groups::derive(declarations).unwrap_or_default();
    if !groups.is_empty() {
        println!();
        println!("Shared tasks (one task per tick runs the members that are due):");
    }
    for g in &groups {
        let delays: Vec<String> = declarations
            .iter()
            .filter(|d| g.members.contains(&d.name))
            .map(|d| format!("{} +{} min", d.name, g.max_delay_minutes(d)))
            .collect();
        println!(
            "  tick {}: {}, {}/{} MiB {}{}; members at most this late: {}",
            g.name,
            g.schedule_expression(),
            g.size.cpu,
            g.size.memory,
            g.architecture,
            if g.enabled { "" } else { ", disabled" },
            delays.join(", ")
        );
    }
    Exit::Success
}
