//! Fargate's billing rules as arithmetic, with nothing to look up: how long a run is
//! billed, and what a month of a job's fires costs at one run time. The figures come
//! from the prices file; the run times and fire counts from the caller.
//!
//! The rules (AWS Fargate pricing page): a task is billed per second, with a one-minute
//! minimum, from the moment its image starts downloading until it stops, for the vCPU
//! and memory it declares, whatever it uses; ARM tasks have their own, lower rates;
//! Fargate Spot takes a discount off on-demand; a task with a public IP pays for the
//! address by the hour it holds it; CloudWatch Logs bills the bytes ingested.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::prices::Region;
use crate::declarations::{Architecture, Size};
use crate::schedule::Schedule;

/// What a task is billed on.
#[derive(Debug, Clone, Copy)]
pub struct Task {
    pub size: Size,
    pub architecture: Architecture,
    /// Seconds from the start of the image pull to the process starting its run
    /// (pull, unpack, container start): billed, but not in `job_runs`.
    pub startup_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Capacity {
    Spot,
    OnDemand,
}

impl Capacity {
    pub fn name(self) -> &'static str {
        match self {
            Capacity::Spot => "FARGATE_SPOT",
            Capacity::OnDemand => "FARGATE",
        }
    }
}

/// A month of one job at one run time, in dollars.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Month {
    pub fires: u64,
    pub billed_seconds_per_run: f64,
    pub task_hours: f64,
    pub compute: f64,
    pub public_ipv4: f64,
    pub logs: f64,
    pub total: f64,
}

/// Seconds billed for one run of `run_seconds` after `startup_seconds` of start-up:
/// rounded up to the second, at least a minute.
pub fn billed_seconds(startup_seconds: f64, run_seconds: f64) -> f64 {
    (startup_seconds + run_seconds).ceil().max(60.0)
}

/// What `fires` runs of `run_seconds` each, each logging `log_bytes`, cost.
pub fn month(
    task: &Task,
    fires: u64,
    run_seconds: f64,
    log_bytes: f64,
    region: &Region,
    capacity: Capacity,
) -> Month {
    let billed = billed_seconds(task.startup_seconds, run_seconds);
    let task_hours = fires as f64 * billed / 3600.0;
    let rate = region.fargate.rate(task.architecture);
    let vcpu = f64::from(task.size.cpu) / 1024.0;
    let gb = f64::from(task.size.memory) / 1024.0;
    let discount = match capacity {
        Capacity::Spot => region.spot_discount.value,
        Capacity::OnDemand => 0.0,
    };
    let compute = task_hours * (vcpu * rate.vcpu_hour + gb * rate.gb_hour) * (1.0 - discount);
    let public_ipv4 = task_hours * region.public_ipv4_hour.value;
    let logs = fires as f64 * log_bytes / f64::from(1u32 << 30) * region.logs_ingestion_gb.value;
    Month {
        fires,
        billed_seconds_per_run: billed,
        task_hours,
        compute,
        public_ipv4,
        logs,
        total: compute + public_ipv4 + logs,
    }
}

/// How many times the schedule fires in `[from, until)`, counted fire by fire.
pub fn fires_between(schedule: &Schedule, from: DateTime<Utc>, until: DateTime<Utc>) -> u64 {
    // `iter_after` is strictly after; a fire exactly at `from` counts too. Fires are
    // whole seconds and `from` need not be, so anything before it is dropped.
    schedule
        .iter_after(from - chrono::TimeDelta::seconds(1))
        .skip_while(|t| *t < from)
        .take_while(|t| *t < until)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::prices::{EMBEDDED, PriceBook};

    fn book() -> PriceBook {
        PriceBook::parse(EMBEDDED, "pricing/aws.yaml").unwrap()
    }

    fn task(cpu: u32, memory: u32, architecture: Architecture, startup: f64) -> Task {
        Task {
            size: Size { cpu, memory },
            architecture,
            startup_seconds: startup,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_run_is_billed_at_least_a_minute_then_by_the_second() {
        assert_eq!(billed_seconds(5.0, 2.3), 60.0);
        assert_eq!(billed_seconds(5.0, 54.9), 60.0);
        assert_eq!(billed_seconds(5.0, 55.2), 61.0);
        assert_eq!(billed_seconds(15.0, 600.0), 615.0);
    }

    #[test]
    fn arm_on_demand_light_job_by_hand() {
        let book = book();
        let sa = book.region("sa-east-1").unwrap();
        // 0.25 vCPU / 0.5 GB arm64, 1,000 runs of 2 s: each billed the minimum 60 s.
        // 1,000 × 60 s = 16.667 task-hours.
        // compute: 16.667 × (0.25 × 0.0557 + 0.5 × 0.00612) = 16.667 × 0.016985 = 0.283083
        // address: 16.667 × 0.005 = 0.083333
        // logs: 1,000 × 4,096 B = 3.8147e-3 GB × 0.90 = 0.0034332
        let m = month(
            &task(256, 512, Architecture::Arm64, 5.0),
            1000,
            2.0,
            4096.0,
            sa,
            Capacity::OnDemand,
        );
        assert_eq!(m.billed_seconds_per_run, 60.0);
        assert!(close(m.task_hours, 1000.0 / 60.0));
        assert!(close(m.compute, 1000.0 / 60.0 * 0.016985), "{m:?}");
        assert!(close(m.public_ipv4, 1000.0 / 60.0 * 0.005));
        assert!(close(m.logs, 4_096_000.0 / 1_073_741_824.0 * 0.90));
        assert!(close(m.total, m.compute + m.public_ipv4 + m.logs));
    }

    #[test]
    fn x86_costs_more_than_arm_and_spot_takes_its_discount_off_compute_only() {
        let book = book();
        let sa = book.region("sa-east-1").unwrap();
        // 2 vCPU / 4 GB x86_64, 100 runs of 300 s + 15 s start-up = 315 s billed.
        // 8.75 task-hours × (2 × 0.0696 + 4 × 0.0076 = 0.1696) = 1.484 on demand.
        let x86 = task(2048, 4096, Architecture::X86_64, 15.0);
        let od = month(&x86, 100, 300.0, 0.0, sa, Capacity::OnDemand);
        assert!(close(od.task_hours, 8.75));
        assert!(close(od.compute, 8.75 * 0.1696), "{od:?}");
        let spot = month(&x86, 100, 300.0, 0.0, sa, Capacity::Spot);
        assert!(close(spot.compute, 8.75 * 0.1696 * (1.0 - 0.664)));
        assert!(
            close(spot.public_ipv4, od.public_ipv4),
            "the address has no discount"
        );
        let arm = month(
            &task(2048, 4096, Architecture::Arm64, 15.0),
            100,
            300.0,
            0.0,
            sa,
            Capacity::OnDemand,
        );
        // 8.75 × (2 × 0.0557 + 4 × 0.00612 = 0.13588)
        assert!(close(arm.compute, 8.75 * 0.13588));
        assert!(arm.compute < od.compute);
    }

    #[test]
    fn fires_are_counted_fire_by_fire_on_irregular_schedules() {
        let from: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let until = from + chrono::TimeDelta::days(30);
        // Weekdays at 09:00 from Tuesday 1 December to Wednesday 30 December: 22 days
        // (December 2026 has weekends on 5-6, 12-13, 19-20, 26-27).
        let weekdays = Schedule::parse("cron(0 9 ? * MON-FRI *)").unwrap();
        assert_eq!(fires_between(&weekdays, from, until), 22);
        // Every 5 minutes: 30 × 288, the fire at `from` included.
        let five = Schedule::parse("cron(0/5 * * * ? *)").unwrap();
        assert_eq!(fires_between(&five, from, until), 8640);
        // A window that does not start on a whole second: still 30 × 288.
        let off = from + chrono::TimeDelta::microseconds(300);
        assert_eq!(
            fires_between(&five, off, off + chrono::TimeDelta::days(30)),
            8640
        );
        // The last day of each month at noon: 31 December is outside the 30 days.
        let last = Schedule::parse("cron(0 12 L * ? *)").unwrap();
        assert_eq!(fires_between(&last, from, until), 0);
    }
}
