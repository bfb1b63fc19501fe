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
#   after it, (P − m mod P) mod P minutes late; a fire is never skipped, and since P is at
#   most the member's own shortest gap, two of its fires never meet in one tick unless
#   a tick was missed (the runner then runs it once). Shown per member in the output
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
      # Same image: the members' security groups are the same.
      security_groups = local.job_security_groups[members[0]]
      family          = "${var.name_prefix}-tick-${g}"
      log_group       = "/ecs/${var.name_prefix}/run-job/tick-${g}"
      # Under run-job:, so the task-state alerts (alerting.tf) cover the ticks too.
      task_group = "run-job:tick-${g}"
      schedule   = coalesce(local.group_schedule[g], "cron(0 * * * ? *)")
    }
  }

  # Jobs with a schedule of their own.
  scheduled_jobs = { for name, j in local.jobs : name => j if j.shares_task == "" }

  # Where a job's scheduled runs start and log: its own task, or its group's.
  runs_in = {
    for name, j in local.jobs : name => j.shares_task == "" ? {
      schedule   = "${var.name_prefix}-${name}"
      task_group = local.task_group[name]
      log_group  = local.log_group[name]
      } : {
      schedule   = "${var.name_prefix}-tick-${j.shares_task}"
      task_group = "run-job:tick-${j.shares_task}"
      log_group  = "/ecs/${var.name_prefix}/run-job/tick-${j.shares_task}"
    }
  }
}

#trivy:ignore:AVD-AWS-0017 Encrypted with CloudWatch's default key unless log_kms_key_arn is set.
resource "aws_cloudwatch_log_group" "tick" {
  #checkov:skip=CKV_AWS_338:Retention is a priced choice (var.log_retention_days, 7 as the original's task logs); each member's run is recorded in job_runs, not in the logs.
  for_each          = local.groups
  name              = each.value.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_task_definition" "tick" {
  for_each                 = local.groups
  family                   = each.value.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.cpu)
  memory                   = tostring(each.value.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = each.value.architecture
  }

  volume {
    name = "tmp"
  }

  depends_on = [aws_cloudwatch_log_group.tick]

  # As a job's task definition (main.tf): no capability, /tmp writable, the root
  # read-only unless a member needs it writable.
  container_definitions = jsonencode([{
    name                   = "run-job"
    image                  = each.value.image == "chromium" ? "${local.repository_url}:${var.image_tag}-chromium" : "${local.repository_url}:${var.image_tag}"
    essential              = true
    command                = ["tick", each.key]
    readonlyRootFilesystem = each.value.read_only_root_filesystem
    stopTimeout            = var.stop_timeout_seconds
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters        = { capabilities = { drop = ["ALL"] } }
    environment            = [for k, v in each.value.environment : { name = k, value = v }]
    secrets                = [for k in each.value.secrets : { name = k, valueFrom = var.secrets[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = each.value.log_group
        awslogs-region        = local.region
        awslogs-stream-prefix = "tick-${each.key}"
      }
    }
  }])

  tags = merge(var.tags, { SharedTask = each.key })

  lifecycle {
    precondition {
      condition     = length(local.group_problems[each.key]) == 0
      error_message = "Shared task ${each.key} (shares_task: ${each.key} in ${join(", ", each.value.members)}) is refused: ${join("; ", local.group_problems[each.key])}."
    }
  }
}

# One schedule per group, started as a job's is (main.tf): same network, capacity,
# retries, dead-letter queue and role.
resource "aws_cloudwatch_event_rule" "tick" {
  for_each            = var.use_scheduler ? {} : local.groups
  name                = "${var.name_prefix}-tick-${each.key}"
  description         = "Runs the jobs due among ${join(", ", each.value.members)} (run-job tick ${each.key})"
  schedule_expression = each.value.schedule
  state               = each.value.enabled ? "ENABLED" : "DISABLED"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "tick" {
  for_each  = var.use_scheduler ? {} : local.groups
  rule      = aws_cloudwatch_event_rule.tick[each.key].name
  target_id = "run-job"
  arn       = local.cluster_arn
  role_arn  = aws_iam_role.events.arn

  ecs_target {
    task_definition_arn = aws_ecs_task_definition.tick[each.key].arn
    task_count          = 1
    group               = each.value.task_group
    platform_version    = "LATEST"

    capacity_provider_strategy {
      capacity_provider = local.capacity_provider
      weight            = 1
    }

    network_configuration {
      subnets          = local.subnet_ids
      security_groups  = each.value.security_groups
      assign_public_ip = var.network.assign_public_ip
    }
  }

  retry_policy {
    maximum_retry_attempts       = var.retry_attempts
    maximum_event_age_in_seconds = var.retry_max_event_age_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.dead_letter.arn
  }
}

resource "aws_scheduler_schedule" "tick" {
  #checkov:skip=CKV_AWS_297:A schedule holds the task definition, subnets and groups to start, no secret; AWS-owned encryption is enough and a CMK would cost $1 a month.
  for_each                     = var.use_scheduler ? local.groups : {}
  name                         = "${var.name_prefix}-tick-${each.key}"
  description                  = "Runs the jobs due among ${join(", ", each.value.members)} (run-job tick ${each.key})"
  schedule_expression          = each.value.schedule
  schedule_expression_timezone = var.schedule_timezone
  state                        = each.value.enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = local.cluster_arn
    role_arn = aws_iam_role.events.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.tick[each.key].arn
      task_count          = 1
      group               = each.value.task_group
      platform_version    = "LATEST"

      capacity_provider_strategy {
        capacity_provider = local.capacity_provider
        weight            = 1
      }

      network_configuration {
        subnets          = local.subnet_ids
        security_groups  = each.value.security_groups
        assign_public_ip = var.network.assign_public_ip
      }
    }

    retry_policy {
      maximum_retry_attempts       = var.retry_attempts
      maximum_event_age_in_seconds = var.retry_max_event_age_seconds
    }

    dead_letter_config {
      arn = aws_sqs_queue.dead_letter.arn
    }
  }
}
