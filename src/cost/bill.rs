//! Fargate's billing rules as arithmetic, with nothing to look up: how long a run is
//! billed, and what a month of a job's fires costs at one run time. The figures come
//! from the prices file; the run times and fire counts from the caller.
//!
//! The rules (AWS Fargate pricing page): a task is billed per second, with a one-minute
//! minimum, from the moment its image starts downloading until it stops, for the vCPU
//! and memory it declares, whatever it uses; ARM tasks have their own, lower rates;
//! Fargate Spot takes a discount off on-demand; a task with a public IP pays for the
//! address by the hour it holds it; CloudWatch Logs bills the bytes ingested.
//!
//! And the fixed items, billed whatever the runs ([`fixed_items`]): the alarms and the
//! dashboard beyond the account's free ones, Container Insights' metrics (custom metrics,
//! prorated by the hour) when it is on, the logs kept for the retention set, a NAT
//! gateway (its hours, its address, and the image layers it carries) or interface
//! endpoints (per endpoint, zone and hour) when chosen.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::prices::{ContainerInsights, Figure, Region};
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

/// Hours in the projection (30 days), over which the hourly items are billed.
pub const WINDOW_HOURS: f64 = 720.0;
/// Hours in the month AWS prorates a monthly price over (custom metrics).
pub const MONTH_HOURS: f64 = 730.0;

/// What the Terraform creates whatever the runs, as `run-job cost` knows it: from its
/// flags (the Terraform's variables) and from the declarations (alarms, hours, bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fixed {
    /// Missed-run alarms and the dead-letter alarm.
    pub alarms: u32,
    /// Of the account's free alarms (10 a month), how many are left for these.
    pub free_alarms: u32,
    /// Of the account's free dashboards (3), how many are left for this one.
    pub free_dashboards: u32,
    /// Container Insights, when on: the hours any task runs (cluster metrics) and the
    /// sum over task families of the hours each runs (family metrics).
    pub container_insights: Option<InsightsHours>,
    /// Bytes the jobs log a day, as ingested.
    pub log_gb_per_day: f64,
    pub log_retention_days: u32,
    /// NAT gateways the Terraform creates (0 or 1).
    pub nat_gateways: u32,
    /// GB the NAT gateway processes: the image layers of every run, unless an S3
    /// gateway endpoint carries them.
    pub nat_gb: f64,
    /// Interface endpoints, each in `zones` zones.
    pub endpoints: u32,
    pub zones: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct InsightsHours {
    pub cluster_hours: u64,
    pub family_hours: u64,
}

/// One fixed item of the month's bill.
#[derive(Debug, Clone, Serialize)]
pub struct FixedItem {
    pub item: &'static str,
    /// What is billed, in words (`7 alarms − 0 free`, `off`).
    pub quantity: String,
    pub month: f64,
    /// The price it is billed at and where that was read.
    pub price: String,
    pub read: String,
    pub source: String,
}

fn item(name: &'static str, quantity: String, month: f64, price: String, f: &Figure) -> FixedItem {
    FixedItem {
        item: name,
        quantity,
        month,
        price,
        read: f.read.clone(),
        source: f.source.clone(),
    }
}

/// The fixed items, every one listed (zero when off), each from the prices file.
pub fn fixed_items(f: &Fixed, region: &Region, insights: &ContainerInsights) -> Vec<FixedItem> {
    let mut out = monitoring_items(f, region, insights);
    out.extend(network_items(f, region));
    out
}

/// Alarms, dashboard, Container Insights and log storage.
fn monitoring_items(f: &Fixed, region: &Region, insights: &ContainerInsights) -> Vec<FixedItem> {
    let mut out = Vec::new();
    let alarms = f.alarms.saturating_sub(f.free_alarms);
    out.push(item(
        "CloudWatch alarms",
        format!(
            "{} alarms − {} free = {alarms}",
            f.alarms,
            f.alarms - alarms
        ),
        f64::from(alarms) * region.alarm_month.value,
        format!("${}/alarm-month", region.alarm_month.value),
        &region.alarm_month,
    ));
    let dashboards = 1u32.saturating_sub(f.free_dashboards);
    out.push(item(
        "CloudWatch dashboard",
        format!("1 dashboard − {} free = {dashboards}", 1 - dashboards),
        f64::from(dashboards) * region.dashboard_month.value,
        format!("${}/dashboard-month", region.dashboard_month.value),
        &region.dashboard_month,
    ));
    let (quantity, month) = match f.container_insights {
        None => ("off".to_string(), 0.0),
        Some(h) => {
            let metric_hours = h.cluster_hours * u64::from(insights.metrics_per_cluster)
                + h.family_hours * u64::from(insights.metrics_per_task_family);
            (
                format!(
                    "{} cluster metrics × {} h + {} per family × {} family-h = {metric_hours} metric-h",
                    insights.metrics_per_cluster,
                    h.cluster_hours,
                    insights.metrics_per_task_family,
                    h.family_hours
                ),
                metric_hours as f64 / MONTH_HOURS * region.custom_metric_month.value,
            )
        }
    };
    out.push(item(
        "Container Insights",
        quantity,
        month,
        format!(
            "${}/metric-month ÷ {MONTH_HOURS} h",
            region.custom_metric_month.value
        ),
        &region.custom_metric_month,
    ));
    let stored_gb = f.log_gb_per_day * f64::from(f.log_retention_days);
    out.push(item(
        "Log storage",
        format!(
            "{stored_gb:.4} GB ({:.4} GB/day × {} days)",
            f.log_gb_per_day, f.log_retention_days
        ),
        stored_gb * region.logs_storage_gb_month.value,
        format!("${}/GB-month", region.logs_storage_gb_month.value),
        &region.logs_storage_gb_month,
    ));
    out
}

/// The NAT gateway, its data, and VPC interface endpoints.
fn network_items(f: &Fixed, region: &Region) -> Vec<FixedItem> {
    let mut out = Vec::new();
    let nat_hourly = region.nat_gateway_hour.value + region.public_ipv4_hour.value;
    out.push(item(
        "NAT gateway",
        if f.nat_gateways == 0 {
            "none".to_string()
        } else {
            format!(
                "{} × {WINDOW_HOURS} h, with its public IPv4 address",
                f.nat_gateways
            )
        },
        f64::from(f.nat_gateways) * WINDOW_HOURS * nat_hourly,
        format!(
            "${}/h + ${}/h (address)",
            region.nat_gateway_hour.value, region.public_ipv4_hour.value
        ),
        &region.nat_gateway_hour,
    ));
    let nat_gb = if f.nat_gateways == 0 { 0.0 } else { f.nat_gb };
    out.push(item(
        "NAT data processed",
        if f.nat_gateways == 0 {
            "none".to_string()
        } else {
            format!("{nat_gb:.1} GB of image layers")
        },
        nat_gb * region.nat_gateway_gb.value,
        format!("${}/GB", region.nat_gateway_gb.value),
        &region.nat_gateway_gb,
    ));
    let endpoint_hours = f64::from(f.endpoints) * f64::from(f.zones) * WINDOW_HOURS;
    out.push(item(
        "VPC interface endpoints",
        if f.endpoints == 0 {
            "none".to_string()
        } else {
            format!(
                "{} × {} zones × {WINDOW_HOURS} h = {endpoint_hours} endpoint-h",
                f.endpoints, f.zones
            )
        },
        endpoint_hours * region.interface_endpoint_hour.value,
        format!("${}/endpoint-h", region.interface_endpoint_hour.value),
        &region.interface_endpoint_hour,
    ));
    out
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

    fn sum(items: &[FixedItem]) -> f64 {
        items.iter().map(|i| i.month).sum()
    }

    fn month_of(items: &[FixedItem], name: &str) -> f64 {
        items.iter().find(|i| i.item == name).unwrap().month
    }

    #[test]
    fn fixed_items_by_hand_with_container_insights_off_and_on() {
        let book = book();
        let sa = book.region("sa-east-1").unwrap();
        // 6 missed-run alarms + the dead-letter alarm, no free ones left: 7 × $0.10.
        // One dashboard: $3. Logs: 0.01 GB a day kept 7 days = 0.07 GB × $0.03.
        let mut f = Fixed {
            alarms: 7,
            log_gb_per_day: 0.01,
            log_retention_days: 7,
            zones: 2,
            ..Fixed::default()
        };
        let off = fixed_items(&f, sa, &book.container_insights);
        assert!(close(month_of(&off, "CloudWatch alarms"), 0.70));
        assert!(close(month_of(&off, "CloudWatch dashboard"), 3.00));
        assert!(close(month_of(&off, "Container Insights"), 0.0));
        assert!(close(month_of(&off, "Log storage"), 0.07 * 0.03));
        assert!(close(sum(&off), 0.70 + 3.00 + 0.0021), "{off:?}");
        // On: 10 cluster metrics for the 720 hours a task runs, 8 per family for 6
        // families running every hour (4,320 family-hours): 7,200 + 34,560 = 41,760
        // metric-hours = 57.2 metric-months × $0.30 = $17.16.
        f.container_insights = Some(InsightsHours {
            cluster_hours: 720,
            family_hours: 4320,
        });
        let on = fixed_items(&f, sa, &book.container_insights);
        assert!(close(
            month_of(&on, "Container Insights"),
            41_760.0 / 730.0 * 0.30
        ));
        assert!(close(sum(&on) - sum(&off), 41_760.0 / 730.0 * 0.30));
        // Free alarms and dashboards left in the account come off.
        f.free_alarms = 10;
        f.free_dashboards = 3;
        let free = fixed_items(&f, sa, &book.container_insights);
        assert!(close(month_of(&free, "CloudWatch alarms"), 0.0));
        assert!(close(month_of(&free, "CloudWatch dashboard"), 0.0));
    }

    #[test]
    fn fixed_items_by_hand_with_a_nat_gateway_and_endpoints() {
        let book = book();
        let sa = book.region("sa-east-1").unwrap();
        let none = Fixed {
            alarms: 7,
            zones: 2,
            nat_gb: 2500.0,
            ..Fixed::default()
        };
        let without = fixed_items(&none, sa, &book.container_insights);
        assert!(close(month_of(&without, "NAT gateway"), 0.0));
        assert!(
            close(month_of(&without, "NAT data processed"), 0.0),
            "no NAT, no NAT data"
        );
        // One NAT gateway: 720 h × ($0.093 + $0.005 for its address) = $70.56, and
        // 2,500 GB of image layers × $0.093 = $232.50.
        let nat = Fixed {
            nat_gateways: 1,
            ..none.clone()
        };
        let with = fixed_items(&nat, sa, &book.container_insights);
        assert!(close(month_of(&with, "NAT gateway"), 720.0 * 0.098));
        assert!(close(month_of(&with, "NAT data processed"), 2500.0 * 0.093));
        assert!(close(
            sum(&with) - sum(&without),
            720.0 * 0.098 + 2500.0 * 0.093
        ));
        // Five interface endpoints in two zones: 7,200 endpoint-hours × $0.015 = $108.
        let endpoints = Fixed {
            endpoints: 5,
            ..none
        };
        let e = fixed_items(&endpoints, sa, &book.container_insights);
        assert!(close(
            month_of(&e, "VPC interface endpoints"),
            7200.0 * 0.015
        ));
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
