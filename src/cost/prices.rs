//! The prices file (`pricing/aws.yaml`): what a vCPU-hour, a GB-hour, a public address
//! and a logged gigabyte cost per region, and the fixed items the Terraform creates (an
//! alarm, a dashboard, a custom metric, a stored log GB, a NAT gateway, an endpoint),
//! each with when and where it was read; how many metrics Container Insights publishes;
//! and the sizes the original runner used. Parsed and checked here; no figure lives in code.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::declarations::{Architecture, Size};

/// The file the binary carries.
pub const EMBEDDED: &str = include_str!("../../pricing/aws.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceBook {
    pub regions: BTreeMap<String, Region>,
    pub container_insights: ContainerInsights,
    pub original: Original,
}

/// Metrics Container Insights publishes on a Fargate cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerInsights {
    pub metrics_per_cluster: u32,
    pub metrics_per_task_family: u32,
    pub read: String,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub fargate: Fargate,
    pub spot_discount: Figure,
    pub public_ipv4_hour: Figure,
    pub logs_ingestion_gb: Figure,
    pub alarm_month: Figure,
    pub dashboard_month: Figure,
    pub custom_metric_month: Figure,
    pub logs_storage_gb_month: Figure,
    pub nat_gateway_hour: Figure,
    pub nat_gateway_gb: Figure,
    pub interface_endpoint_hour: Figure,
}

/// On-demand Linux prices per hour, by architecture.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fargate {
    pub x86_64: Rate,
    pub arm64: Rate,
    pub read: String,
    pub source: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub value: f64,
    pub read: String,
    pub source: String,
}

/// What the original ran (`--compare original`): its own scheduled jobs, each on a
/// task of the default size unless it names its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Original {
    pub size: Size,
    pub architecture: Architecture,
    pub image: String,
    pub jobs: BTreeMap<String, OriginalJob>,
}

/// One of the original's scheduled jobs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginalJob {
    /// Its EventBridge schedule expression.
    pub schedule: String,
    /// The run-job job doing its work, whose measured run time it is costed at.
    pub runs_like: String,
    pub size: Option<Size>,
    pub architecture: Option<Architecture>,
}

impl Fargate {
    pub fn rate(&self, arch: Architecture) -> Rate {
        match arch {
            Architecture::X86_64 => self.x86_64,
            Architecture::Arm64 => self.arm64,
        }
    }
}

impl Original {
    /// The original's task for one of its jobs: its size and architecture.
    pub fn task(&self, job: &OriginalJob) -> (Size, Architecture) {
        (
            job.size.unwrap_or(self.size),
            job.architecture.unwrap_or(self.architecture),
        )
    }
}

impl PriceBook {
    /// Parses and checks a prices file; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<PriceBook, String> {
        let book: PriceBook = serde_saphyr::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        for (name, r) in &book.regions {
            let figures = [
                ("fargate.x86_64.vcpu_hour", r.fargate.x86_64.vcpu_hour),
                ("fargate.x86_64.gb_hour", r.fargate.x86_64.gb_hour),
                ("fargate.arm64.vcpu_hour", r.fargate.arm64.vcpu_hour),
                ("fargate.arm64.gb_hour", r.fargate.arm64.gb_hour),
                ("public_ipv4_hour", r.public_ipv4_hour.value),
                ("logs_ingestion_gb", r.logs_ingestion_gb.value),
                ("alarm_month", r.alarm_month.value),
                ("dashboard_month", r.dashboard_month.value),
                ("custom_metric_month", r.custom_metric_month.value),
                ("logs_storage_gb_month", r.logs_storage_gb_month.value),
                ("nat_gateway_hour", r.nat_gateway_hour.value),
                ("nat_gateway_gb", r.nat_gateway_gb.value),
                ("interface_endpoint_hour", r.interface_endpoint_hour.value),
            ];
            for (field, value) in figures {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(format!(
                        "{origin}: regions.{name}.{field} is {value}; a price is a number of dollars, 0 or more"
                    ));
                }
            }
            let d = r.spot_discount.value;
            if !(0.0..1.0).contains(&d) {
                return Err(format!(
                    "{origin}: regions.{name}.spot_discount is {d}; it is a fraction off on-demand, from 0 up to (not including) 1"
                ));
            }
        }
        for (name, job) in &book.original.jobs {
            crate::schedule::Schedule::parse(&job.schedule)
                .map_err(|e| format!("{origin}: original.jobs.{name}.schedule: {e}"))?;
        }
        Ok(book)
    }

    pub fn region(&self, name: &str) -> Result<&Region, String> {
        self.regions.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.regions.keys().map(String::as_str).collect();
            format!(
                "no prices for region `{name}`; the prices file has {}",
                known.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_parses_and_names_both_regions() {
        let book = PriceBook::parse(EMBEDDED, "pricing/aws.yaml").unwrap();
        assert!(book.region("sa-east-1").is_ok() && book.region("us-east-1").is_ok());
        let sa = book.region("sa-east-1").unwrap();
        assert!(sa.fargate.arm64.vcpu_hour < sa.fargate.x86_64.vcpu_hour);
        assert_eq!(
            book.original.task(&book.original.jobs["scrape-events"]),
            (
                Size {
                    cpu: 2048,
                    memory: 4096
                },
                Architecture::X86_64
            )
        );
        let light = &book.original.jobs["process-pending-jobs"];
        assert_eq!(book.original.task(light).1, Architecture::Arm64);
        assert_eq!(
            (light.schedule.as_str(), light.runs_like.as_str()),
            ("cron(0/2 * * * ? *)", "invoices")
        );
        assert_eq!(book.original.jobs.len(), 6, "the original's six rules");
        let err = book.region("mars-north-1").unwrap_err();
        assert!(
            err.contains("mars-north-1") && err.contains("sa-east-1"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_figure_is_named() {
        let bad = EMBEDDED.replacen("value: 0.664", "value: 1.5", 1);
        let err = PriceBook::parse(&bad, "prices.yaml").unwrap_err();
        assert!(
            err.contains("regions.sa-east-1.spot_discount is 1.5"),
            "{err}"
        );
        let bad = EMBEDDED.replacen("vcpu_hour: 0.0696", "vcpu_hour: -1", 1);
        let err = PriceBook::parse(&bad, "prices.yaml").unwrap_err();
        assert!(err.contains("fargate.x86_64.vcpu_hour is -1"), "{err}");
        let bad = EMBEDDED.replacen("value: 0.093", "value: -0.093", 1);
        let err = PriceBook::parse(&bad, "prices.yaml").unwrap_err();
        assert!(
            err.contains("regions.sa-east-1.nat_gateway_hour is -0.093"),
            "{err}"
        );
    }
}
