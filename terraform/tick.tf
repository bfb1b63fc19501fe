# Shared tasks: jobs whose declarations say `shares_task: <group>` run together, one task
# per tick of the group (`run-job tick <group>`), instead of a task per fire each. Every
# task is billed at least a minute and, with a public IP, an IPv4 address for that
# minute, and the light jobs run for seconds: what they cost is how many tasks start.
#
# Everything about a group is derived from its members' declarations, as the runner
# derives it (`run-job tick`, `run-job cost`):
# - members: every declaration naming the group, enabled or not (the tick skips a
#   disabled member); the group's schedule is enabled while any member is;
# - cpu: the largest member's; memory: the smallest Fargate size for that cpu that holds
#   the largest member's declared memory and 1.5 × the sum of the members' measured
#   peaks (peak_memory_mib: they may all run at once, plus headroom);
# - tick period P: the shortest gap between two consecutive fires of any member, which
#   must divide 60 so that the ticks fall on the same minutes of every hour
#   (cron(0/P * * * ? *)). A member's fire at minute m is served by the first tick at or
#   after it, (P − m mod P) mod P minutes late; since P is at most the member's own
#   shortest gap, two of its fires never meet in one tick unless a tick was missed (the
#   runner then runs it once, for its latest fire within a day). Shown per member in the output
#   shared_tasks; for a rate() member, whose phase the expression does not fix, P − 1.
# A member's missed-run alarm keeps its own window, at least twice its longest gap,
# which absorbs that delay (less than P, P at most its shortest gap).
#
# Refused, naming the group, the job and why: members of different images or
# architectures (one task runs one image), a member larger than 1024 cpu or 2048 MiB (a
# shared task costs every tick its size), a member without peak_memory_mib or whose
# schedule gives no period, a period that does not divide 60, needs no Fargate size for
# that cpu holds, and (with use_scheduler) a time zone other than UTC, because the tick
# reads its members' schedules in UTC.
#
# A shared task holds the union of its members' secrets and settings: only jobs of
# similar trust should share one (docs/deploying.md, "Shared tasks").
#
# This file derives the groups; main.tf makes each group's log group, task definition
# and schedule with the same resources as a job's, under the key tick-<group>.

locals {
  # Fargate's memory sizes (MiB) for each cpu a shared task may have.
  fargate_memory = {
    "256"  = [512, 1024, 2048]
    "512"  = [1024, 2048, 3072, 4096]
    "1024" = [2048, 3072, 4096, 5120, 6144, 7168, 8192]
  }
  share_max_cpu    = 1024
  share_max_memory = 2048

  group_members = {
    for g in distinct([for name, j in local.jobs : j.shares_task if j.shares_task != ""]) :
    g => sort([for name, j in local.jobs : name if j.shares_task == g])
  }

  # A peak that is not a positive whole number counts as missing.
  peak_memory = {
    for name, j in local.jobs : name => j.peak_memory_mib
    if j.peak_memory_mib > 0 && floor(j.peak_memory_mib) == j.peak_memory_mib
  }

  group_cpu = {
    for g, members in local.group_members : g => max([for m in members : local.jobs[m].cpu]...)
  }
  # What the memory must hold: the largest member's declared size and 1.5 × the peaks.
  group_memory_need = {
    for g, members in local.group_members : g => max(
      max([for m in members : local.jobs[m].memory]...),
      ceil(sum([for m in members : lookup(local.peak_memory, m, 0)]) * 3 / 2),
    )
  }
  # null when no size for that cpu fits (refused below).
  group_memory = {
    for g, need in local.group_memory_need : g => try(
      [for v in local.fargate_memory[tostring(local.group_cpu[g])] : v if v >= need][0], null
    )
  }

  # null when no member's schedule gives a gap (refused below).
  group_period = {
    for g, members in local.group_members : g => try(min([
      for m in members : local.schedule_least_gap_minutes[m] if contains(keys(local.schedule_least_gap_minutes), m)
    ]...), null)
  }
  group_period_fits = {
    for g, p in local.group_period : g => try(p >= 1 && floor(p) == p && 60 % p == 0, false)
  }
  group_schedule = {
    for g, p in local.group_period : g => (
      !local.group_period_fits[g] ? null : p == 60 ? "cron(0 * * * ? *)" : "cron(0/${p} * * * ? *)"
    )
  }
  # Member => the most minutes a fire of it waits for its tick (see above).
  group_delay = {
    for g, members in local.group_members : g => {
      for m in members : m => (
        !local.group_period_fits[g] ? null :
        contains(keys(local.cron_readable), m)
        ? max([for v in local.cron_readable[m].minutes : (local.group_period[g] - v % local.group_period[g]) % local.group_period[g]]...)
        : local.group_period[g] - 1
      )
    }
  }

  group_problems = {
    for g, members in local.group_members : g => concat(
      can(regex("^[a-z][a-z0-9-]{0,20}$", g)) ? [] : [
        "its name must be a lowercase letter and up to 20 lowercase letters, digits or hyphens"
      ],
      length(distinct([for m in members : local.jobs[m].image])) == 1 ? [] : [
        "its members differ in image (${join(", ", [for m in members : "${m}: ${local.jobs[m].image}"])}), and one task runs one image"
      ],
      length(distinct([for m in members : local.jobs[m].architecture])) == 1 ? [] : [
        "its members differ in architecture (${join(", ", [for m in members : "${m}: ${local.jobs[m].architecture}"])}), and one task runs on one"
      ],
      [
        for m in members : "job ${m} is too large to share (cpu ${local.jobs[m].cpu}, memory ${local.jobs[m].memory}; at most ${local.share_max_cpu} and ${local.share_max_memory}): a shared task costs every tick its size"
        if local.jobs[m].cpu > local.share_max_cpu || local.jobs[m].memory > local.share_max_memory
      ],
      [
        for m in members : "job ${m} lacks peak_memory_mib (the measured peak resident memory of one run, a positive whole number of MiB), from which the shared task is sized"
        if !contains(keys(local.peak_memory), m)
      ],
      [
        for m in members : "job ${m}'s schedule ${local.jobs[m].schedule} gives no tick period (a sharing job needs rate() or a cron() of minutes, hours and weekdays)"
        if !contains(keys(local.schedule_least_gap_minutes), m)
      ],
      [
        for m in members : "job ${m}'s schedule ${local.jobs[m].schedule} names years: the tick needs a schedule that fires every year (year field *)"
        if try(local.schedule_cron[m][0][5] != "*", false)
      ],
      local.group_period[g] == null || local.group_period_fits[g] ? [] : [
        "its tick period, ${local.group_period[g]} minutes (the shortest gap between fires, of ${join(", ", [for m in members : m if try(local.schedule_least_gap_minutes[m] == local.group_period[g], false)])}), does not divide 60"
      ],
      local.group_memory[g] != null ? [] : [
        "no Fargate memory size for cpu ${local.group_cpu[g]} holds the ${local.group_memory_need[g]} MiB its members need (the largest member's memory, or 1.5 × the sum of their peak_memory_mib)"
      ],
      contains(keys(local.jobs), "tick-${g}") ? [
        "job tick-${g} would have the same task family and log group as the group's task"
      ] : [],
      var.use_scheduler && !contains(["UTC", "Etc/UTC"], var.schedule_timezone) ? [
        "the tick reads its members' schedules in UTC, and schedule_timezone is ${var.schedule_timezone}"
      ] : [],
    )
  }

  groups = {
    for g, members in local.group_members : g => {
      members                   = members
      enabled                   = anytrue([for m in members : local.jobs[m].enabled])
      image                     = local.jobs[members[0]].image
      architecture              = local.jobs[members[0]].architecture
      cpu                       = local.group_cpu[g]
      memory                    = coalesce(local.group_memory[g], local.group_memory_need[g])
      read_only_root_filesystem = alltrue([for m in members : local.jobs[m].read_only_root_filesystem])
      # Every member's task variables, each as its own task definition receives it; the
      # memory the runner sizes budgets from is the shared task's.
      secrets = sort(distinct(flatten([for m in members : local.task_secrets[m]])))
      environment = merge(merge({}, [for m in members : local.task_environment[m]]...), {
        RUN_JOB_TASK_MEMORY_MB = tostring(coalesce(local.group_memory[g], local.group_memory_need[g]))
      })
      schedule = coalesce(local.group_schedule[g], "cron(0 * * * ? *)")
    }
  }

  # Where a job's scheduled runs start and log: its own task, or its group's.
  runs_in = {
    for name, key in { for name, j in local.jobs : name => j.shares_task == "" ? name : "tick-${j.shares_task}" } : name => {
      schedule   = "${var.name_prefix}-${key}"
      task_group = local.tasks[key].task_group
      log_group  = local.tasks[key].log_group
    }
  }
}
