//! Shared tasks: the jobs whose declarations say `shares_task: <group>` run together,
//! one task per tick (`run-job tick <group>`), instead of one task per job per fire.
//! Every light job runs for a second and is billed Fargate's minute and a public
//! address for it; one task that runs all the due ones pays that once.
//!
//! This module derives each group from the declarations, as terraform/tick.tf does from
//! the same files (the two are tested against the same cases), and refuses a group that
//! cannot work, naming the group, the job and why:
//! - members: every declaration naming the group, enabled or not (the tick does not run
//!   a disabled member; the group's schedule is on while any member is enabled);
//! - one image and one architecture; no member larger than 1 vCPU / 2 GB (a shared
//!   task costs every tick its size) and each with its measured `peak_memory_mib`;
//! - the task: the largest member's CPU, and the smallest memory Fargate allows with it
//!   that holds the largest member's memory and 1.5 × the members' peaks summed (they
//!   run at once; the half is headroom over a measured peak);
//! - the tick period P: the shortest gap between two fires of any member, which must
//!   divide the hour (the tick is `cron(0/P * * * ? *)`); each fire is served by the
//!   first tick at or after it, so a member waits at most P − 1 minutes more than it
//!   would alone ([`Group::max_delay_minutes`]);
//! - a member's schedule is a rate or a cron firing every day or on weekdays, every
//!   year (what the Terraform can read), and no job is named `tick-<group>` (the
//!   group's task family).
//!
//! It knows nothing about running: `tick` does that.

use chrono::{DateTime, TimeDelta, Utc};

use crate::declarations::{Architecture, Image, JobDeclaration, Size};
use crate::schedule::Schedule;

/// The largest task a member may declare.
const MAX_MEMBER: Size = Size {
    cpu: 1024,
    memory: 2048,
};

/// One group's derived task and tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// Member job names, sorted.
    pub members: Vec<String>,
    pub size: Size,
    pub architecture: Architecture,
    pub image: Image,
    /// Minutes between ticks; divides 60.
    pub period_minutes: u32,
    /// Whether any member is enabled (the tick's schedule is on).
    pub enabled: bool,
}

impl Group {
    /// The tick's EventBridge schedule expression.
    pub fn schedule_expression(&self) -> String {
        if self.period_minutes >= 60 {
            "cron(0 * * * ? *)".to_string()
        } else {
            format!("cron(0/{} * * * ? *)", self.period_minutes)
        }
    }

    /// The tick's schedule.
    pub fn schedule(&self) -> Schedule {
        // The expression is built above from a period that divides 60.
        Schedule::parse(&self.schedule_expression())
            .unwrap_or_else(|_| unreachable!("a derived tick schedule always parses"))
    }

    pub fn period(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.period_minutes))
    }

    /// The most minutes one of `member`'s fires waits for its tick. A rate has no fixed
    /// phase on EventBridge, so its fires can land anywhere: P − 1.
    pub fn max_delay_minutes(&self, member: &JobDeclaration) -> u32 {
        let p = i64::from(self.period_minutes);
        match &member.schedule {
            Schedule::Rate(_) => self.period_minutes.saturating_sub(1),
            Schedule::Cron(_) => week_of_fires(&member.schedule)
                .iter()
                .map(|t| {
                    let minute = t.timestamp().div_euclid(60);
                    ((p - minute.rem_euclid(p)) % p) as u32
                })
                .max()
                .unwrap_or(0),
        }
    }
}

/// Whether `name` can name a group: a-z, 0-9 and dashes, starting with a letter, at
/// most 21 characters (it ends up in the task family and the log group).
pub fn valid_group_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 21
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Every group the declarations form, sorted by name, or every problem found.
pub fn derive(declarations: &[JobDeclaration]) -> Result<Vec<Group>, Vec<String>> {
    let mut names: Vec<&str> = declarations
        .iter()
        .filter_map(|d| d.shares_task.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let members: Vec<&JobDeclaration> = declarations
            .iter()
            .filter(|d| d.shares_task.as_deref() == Some(name))
            .collect();
        match derive_one(name, &members, declarations) {
            Ok(g) => groups.push(g),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(groups)
    } else {
        Err(problems)
    }
}

fn derive_one(
    name: &str,
    members: &[&JobDeclaration],
    all: &[JobDeclaration],
) -> Result<Group, Vec<String>> {
    let mut problems = Vec::new();
    let first = members[0];
    let family = format!("tick-{name}");
    if let Some(clash) = all.iter().find(|d| d.name == family) {
        problems.push(format!(
            "group `{name}`: job `{}` has the name of the group's task (`{family}`)",
            clash.name
        ));
    }
    for m in members {
        let job = &m.name;
        if m.image != first.image || m.architecture != first.architecture {
            problems.push(format!(
                "group `{name}`: job `{job}` runs on the {:?} image, {} (job `{}`: {:?}, {}); a shared task has one image and one architecture",
                m.image, m.architecture, first.name, first.image, first.architecture
            ));
        }
        if m.size.cpu > MAX_MEMBER.cpu || m.size.memory > MAX_MEMBER.memory {
            problems.push(format!(
                "group `{name}`: job `{job}` is too large to share ({}; at most {}): a shared task costs every tick its size",
                m.size, MAX_MEMBER
            ));
        }
        if m.peak_memory_mib.is_none() {
            problems.push(format!(
                "group `{name}`: job `{job}` has no peak_memory_mib (its measured peak sizes the shared task)"
            ));
        }
        if !m.schedule.repeats_weekly() || m.schedule.names_years() {
            problems.push(format!(
                "group `{name}`: job `{job}`'s schedule {} has no steady period (day-of-month, month, year, L, W or #)",
                m.schedule
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let gap = members
        .iter()
        .filter_map(|m| shortest_gap_minutes(&m.schedule))
        .min()
        .unwrap_or(60);
    if gap == 0 || 60 % gap != 0 {
        return Err(vec![format!(
            "group `{name}`: its members' shortest gap between fires is {gap} minutes, which does not divide the hour; a tick cannot follow it"
        )]);
    }
    let cpu = members.iter().map(|m| m.size.cpu).max().unwrap_or(256);
    let peaks: u32 = members.iter().filter_map(|m| m.peak_memory_mib).sum();
    let need = (u64::from(peaks) * 3).div_ceil(2);
    let largest = members.iter().map(|m| m.size.memory).max().unwrap_or(512);
    let memory = Size::allowed_memory(cpu)
        .unwrap_or_default()
        .into_iter()
        .find(|&m| m >= largest && u64::from(m) >= need);
    let Some(memory) = memory else {
        return Err(vec![format!(
            "group `{name}`: no Fargate memory size with {cpu} cpu holds 1.5 × its members' peaks ({need} MiB)"
        )]);
    };
    let mut member_names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    member_names.sort();
    Ok(Group {
        name: name.to_string(),
        members: member_names,
        size: Size { cpu, memory },
        architecture: first.architecture,
        image: first.image,
        period_minutes: gap,
        enabled: members.iter().any(|m| m.enabled),
    })
}

/// A week of fires from a fixed Monday: every gap of a daily or weekday cycle.
fn week_of_fires(schedule: &Schedule) -> Vec<DateTime<Utc>> {
    let monday = DateTime::<Utc>::from_timestamp(1_767_571_200, 0).unwrap_or_default(); // 2026-01-05
    let start = monday - TimeDelta::seconds(1);
    schedule
        .iter_after(start)
        .take_while(|t| *t < monday + TimeDelta::days(8))
        .take(20_000)
        .collect()
}

fn shortest_gap_minutes(schedule: &Schedule) -> Option<u32> {
    if let Schedule::Rate(r) = schedule {
        return u32::try_from(r.period_seconds() / 60).ok();
    }
    week_of_fires(schedule)
        .windows(2)
        .map(|w| (w[1] - w[0]).num_minutes())
        .min()
        .and_then(|m| u32::try_from(m).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, schedule: &str, extra: &str) -> JobDeclaration {
        crate::declarations::sharing_fixture(name, schedule, extra)
    }

    #[test]
    fn the_light_group_is_one_small_task_every_two_minutes() {
        let jobs = [
            job("a", "cron(0/2 * * * ? *)", ""),
            job("b", "cron(0/5 * * * ? *)", ""),
            job("c", "cron(0 * * * ? *)", ""),
            job("d", "cron(0/2 * * * ? *)", ""),
            job("e", "cron(0 * * * ? *)", ""),
        ];
        let groups = derive(&jobs).unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        // 1.5 × 5 × 64 = 480 MiB: the smallest size holds it.
        assert_eq!(
            (g.size, g.period_minutes, g.schedule_expression().as_str()),
            (
                Size {
                    cpu: 256,
                    memory: 512
                },
                2,
                "cron(0/2 * * * ? *)"
            )
        );
        let delays: Vec<u32> = jobs.iter().map(|j| g.max_delay_minutes(j)).collect();
        assert_eq!(delays, [0, 1, 0, 0, 0]);
    }

    #[test]
    fn memory_rounds_up_to_what_fargate_allows() {
        let big = |name| job(name, "cron(0/5 * * * ? *)", "").with_peak(467);
        // 1.5 × 934 = 1401 MiB: 2048 with 256 cpu.
        let g = derive(&[big("a"), big("b")]).unwrap().remove(0);
        assert_eq!(g.size.memory, 2048);
        let g = derive(&[big("a"), big("b"), big("c")]).unwrap_err();
        assert!(
            g[0].contains("no Fargate memory size with 256 cpu"),
            "{g:?}"
        );
    }

    #[test]
    fn groups_that_cannot_share_are_refused_naming_the_job() {
        let chromium = job("a", "cron(0/2 * * * ? *)", "image: chromium\n");
        let slim = job("b", "cron(0/2 * * * ? *)", "");
        let e = derive(&[chromium, slim.clone()]).unwrap_err();
        assert!(
            e[0].starts_with(
                "group `light`: job `b` runs on the Slim image, arm64 (job `a`: Chromium"
            ),
            "{e:?}"
        );

        let mut large = job("c", "cron(0/2 * * * ? *)", "");
        large.size = Size {
            cpu: 2048,
            memory: 4096,
        };
        let e = derive(&[large, slim.clone()]).unwrap_err();
        assert!(e[0].contains("job `c` is too large to share"), "{e:?}");

        let mut unmeasured = job("d", "cron(0/2 * * * ? *)", "");
        unmeasured.peak_memory_mib = None;
        let e = derive(&[unmeasured, slim.clone()]).unwrap_err();
        assert!(e[0].contains("job `d` has no peak_memory_mib"), "{e:?}");

        let e = derive(&[job("e", "rate(7 minutes)", "")]).unwrap_err();
        assert!(
            e[0].contains("shortest gap between fires is 7 minutes"),
            "{e:?}"
        );

        let e = derive(&[job("f", "cron(0 12 1 * ? *)", ""), slim.clone()]).unwrap_err();
        assert!(e[0].contains("job `f`'s schedule"), "{e:?}");
        // Weekdays by name are a steady week (the W of WED is no day-of-month W).
        let g = derive(&[job("h", "cron(0 9 ? * MON-WED *)", ""), slim.clone()]).unwrap();
        assert_eq!(g[0].period_minutes, 2);
        // A year field would make the period depend on when it is computed.
        let e = derive(&[job("g", "cron(0/2 * * * ? 2027-2099)", ""), slim.clone()]).unwrap_err();
        assert!(e[0].contains("job `g`'s schedule"), "{e:?}");

        let e = derive(&[job("tick-light", "cron(0/2 * * * ? *)", "")]).unwrap_err();
        assert!(e[0].contains("has the name of the group's task"), "{e:?}");
    }

    impl JobDeclaration {
        fn with_peak(mut self, peak: u32) -> JobDeclaration {
            self.peak_memory_mib = Some(peak);
            self
        }
    }
}
