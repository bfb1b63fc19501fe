# One task definition and log group per job declaration in jobs/ and per group of jobs
# that share a task (tick.tf derives the groups), and a schedule for each group and each
# job that does not share one. Adding a job is adding a declaration: nothing here names a
# job.

locals {
  jobs_dir = coalesce(var.jobs_dir, "${path.module}/../jobs")
  # yamldecode reads JSON too (YAML is a superset).
  declarations = {
    for f in fileset(local.jobs_dir, "*.{yaml,yml,json}") :
    yamldecode(file("${local.jobs_dir}/${f}")).name => yamldecode(file("${local.jobs_dir}/${f}"))
  }
  jobs = {
    for name, d in local.declarations : name => {
      schedule                  = d.schedule
      cpu                       = d.size.cpu
      memory                    = d.size.memory
      architecture              = d.architecture == "arm64" ? "ARM64" : "X86_64"
      enabled                   = d.enabled
      description               = d.description
      image                     = try(d.image, "slim")
      read_only_root_filesystem = try(d.read_only_root_filesystem, true)
      # reads: what the job's code reads; a declaration without it reads nothing.
      secrets           = try([for v in d.reads.secrets : v], [])
      optional_secrets  = try([for v in d.reads.optional_secrets : v], [])
      environment_reads = try([for v in d.reads.environment : v], [])
      # The shared task the job runs in (tick.tf), "" for none, and what one run of it
      # holds at its peak, from which that task is sized, 0 when not declared (absent or
      # null; no null here: these objects are for_each values).
      shares_task     = try(coalesce(tostring(d.shares_task), ""), "")
      peak_memory_mib = try(coalesce(tonumber(d.peak_memory_mib), 0), 0)
    }
  }

  # Job => the variable holding its check-in URL, for jobs that declare one.
  heartbeat_variables = {
    for name, d in local.declarations : name => d.heartbeat_url_env if can(d.heartbeat_url_env)
  }

  # What each task receives, and nothing more: a task whose page or provider is turned
  # against it holds only its own job's keys. Secrets: the declared ones (a missing
  # required one stops the plan, below), the optional and the runner's ones the operator
  # supplied, and the check-in URL. Plain settings: those of var.environment that the
  # job or the runner reads, and the module's own.
  task_secrets = {
    for name, j in local.jobs : name => sort([
      for v in distinct(concat(
        j.secrets,
        j.optional_secrets,
        local.runner_secrets,
        try([local.heartbeat_variables[name]], []),
      )) : v if contains(keys(var.secrets), v)
    ])
  }
  task_environment = {
    for name, j in local.jobs : name => merge(
      { for k, v in var.environment : k => v if contains(concat(j.environment_reads, local.runner_environment), k) },
      {
        # Scheduled runs record trigger `eventbridge`; a hand-started task overrides it
        # (docs/deploying.md: "Run a job by hand").
        RUN_JOB_LOG_FORMAT = "json"
        RUN_JOB_TRIGGER    = "eventbridge"
        # What the declaration gave the task, from which the scraping job sizes its
        # image memory budget.
        RUN_JOB_TASK_MEMORY_MB = tostring(j.memory)
      },
    )
  }
  missing_secrets = {
    for name, j in local.jobs : name => [for v in j.secrets : v if !contains(keys(var.secrets), v)]
  }
  # Names given that no declaration and not the runner read: most likely a typo, or a
  # setting a job's declaration forgot to list; either way no task would receive it.
  unread_secrets = sort([
    for k in keys(var.secrets) : k
    if !contains(flatten(values(local.task_secrets)), k)
  ])
  unread_environment = sort([
    for k in keys(var.environment) : k
    if !contains(flatten([for name, _ in local.jobs : keys(local.task_environment[name])]), k)
  ])

  repository_url = coalesce(var.image_repository_url, try(aws_ecr_repository.this[0].repository_url, null))
  cluster_arn    = coalesce(var.cluster_arn, try(aws_ecs_cluster.this[0].arn, null))

  capacity_provider = var.use_fargate_spot ? "FARGATE_SPOT" : "FARGATE"
}

locals {
  # What the runner itself reads for every job, whatever its declaration says: exactly
  # RUNNER_SECRETS and RUNNER_ENVIRONMENT in src/config.rs (a Rust test holds this list
  # to those).
  runner_secrets = ["DATABASE_URL", "DB_CREDENTIALS_JSON", "POSTGRES_PASSWORD"]
  runner_environment = [
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_DB",
    "DATABASE_SSLMODE",
    "DATABASE_SSLROOTCERT",
    "DATABASE_CONNECT_TIMEOUT_SECONDS",
    "RUN_JOB_NOW",
    "RUN_JOB_TRIGGER",
    "RUN_JOB_ONLY",
    "RUN_JOB_GRACE_SECONDS",
    "RUN_JOB_LOG_FORMAT",
    "RUST_LOG",
  ]
}

# ---------------------------------------------------------------------------------------
# Image repository and cluster (created unless given)

resource "aws_ecr_repository" "this" {
  count                = var.image_repository_url == null ? 1 : 0
  name                 = "${var.name_prefix}-run-job"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  #trivy:ignore:AVD-AWS-0033 AWS-managed encryption (AES256) is enough: the image holds no secrets.
  encryption_configuration {
    encryption_type = "AES256"
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  count      = var.image_repository_url == null ? 1 : 0
  repository = aws_ecr_repository.this[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  count = var.cluster_arn == null ? 1 : 0
  name  = "${var.name_prefix}-jobs"

  # Off unless asked for (var.container_insights): its metrics are billed as custom
  # metrics per cluster and per task family, about what the six jobs cost (docs/cost.md,
  # "What the fleet costs"); the RunJob metrics and the dashboard cover the runs.
  #checkov:skip=CKV_AWS_65:Container Insights is a priced choice (var.container_insights, default disabled, as the original's cluster); the jobs publish their own metrics (monitoring.tf).
  #trivy:ignore:AVD-AWS-0034 Container Insights is a priced choice (var.container_insights, default disabled, as the original's cluster); the jobs publish their own metrics.
  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  count              = var.cluster_arn == null ? 1 : 0
  cluster_name       = aws_ecs_cluster.this[0].name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
}

# ---------------------------------------------------------------------------------------
# Per task: log group and task definition, for each job (a job that shares a task keeps
# its own, for runs by hand) and each group's shared task, under tick-<group>

locals {
  # Task key (a job's name, or tick-<group>) => what its task definition is made of. The
  # key is in every name the task carries: family, log group and stream prefix, task
  # group and schedule.
  tasks = {
    for key, t in merge(local.job_tasks, local.group_tasks) : key => merge(t, {
      family    = "${var.name_prefix}-${key}"
      log_group = "/ecs/${var.name_prefix}/run-job/${key}"
      # Under run-job:, so the task-state alerts (alerting.tf) cover every task and name
      # its job or group.
      task_group = "run-job:${key}"
    })
  }
  job_tasks = {
    for name, j in local.jobs : name => {
      cpu                       = j.cpu
      memory                    = j.memory
      architecture              = j.architecture
      image                     = j.image
      read_only_root_filesystem = j.read_only_root_filesystem
      # The image's ENTRYPOINT is run-job, so ECS runs `run-job <name>`.
      command     = [name]
      secrets     = local.task_secrets[name]
      environment = local.task_environment[name]
      tags        = { Job = name }
      # A secret the job cannot run without: refused here rather than by every run. A
      # disabled job may lack it until it is enabled.
      refused = j.enabled && length(local.missing_secrets[name]) > 0
      refusal = "Job ${name} declares reads.secrets that var.secrets does not supply: ${join(", ", local.missing_secrets[name])} (each a Secrets Manager or SSM ARN in var.secrets, under that name)."
    }
  }
  group_tasks = {
    for g, s in local.groups : "tick-${g}" => {
      cpu                       = s.cpu
      memory                    = s.memory
      architecture              = s.architecture
      image                     = s.image
      read_only_root_filesystem = s.read_only_root_filesystem
      command                   = ["tick", g]
      secrets                   = s.secrets
      environment               = s.environment
      tags                      = { SharedTask = g }
      refused                   = length(local.group_problems[g]) > 0
      refusal                   = "Shared task ${g} (shares_task: ${g} in ${join(", ", s.members)}) is refused: ${join("; ", local.group_problems[g])}."
    }
  }

  # Task key => its schedule: the groups' and those of the jobs that do not share a task.
  # security_groups_of: the job whose security groups the task carries, the group's first
  # member for a shared task (its members have one image, which decides the groups).
  schedules = merge(
    {
      for name, j in local.jobs : name => {
        description        = j.description
        schedule           = j.schedule
        enabled            = j.enabled
        security_groups_of = name
      } if j.shares_task == ""
    },
    {
      for g, s in local.groups : "tick-${g}" => {
        description        = "Runs the jobs due among ${join(", ", s.members)} (run-job tick ${g})"
        schedule           = s.schedule
        enabled            = s.enabled
        security_groups_of = s.members[0]
      }
    },
  )
}

#trivy:ignore:AVD-AWS-0017 Encrypted with CloudWatch's default key unless log_kms_key_arn is set.
resource "aws_cloudwatch_log_group" "job" {
  #checkov:skip=CKV_AWS_338:Retention is a priced choice (var.log_retention_days, 7 as the original's task logs; stored GB-months in `run-job cost`); each run's record lives in job_runs, not in the logs.
  for_each          = local.tasks
  name              = each.value.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_task_definition" "job" {
  for_each                 = local.tasks
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

  # A writable /tmp on the task's ephemeral storage; the root filesystem stays read-only
  # unless the declaration (for a shared task, any member's) says otherwise.
  volume {
    name = "tmp"
  }

  # The log group exists before any task runs.
  depends_on = [aws_cloudwatch_log_group.job]

  container_definitions = jsonencode([{
    name                   = "run-job"
    image                  = each.value.image == "chromium" ? "${local.repository_url}:${var.image_tag}-chromium" : "${local.repository_url}:${var.image_tag}"
    essential              = true
    command                = each.value.command
    readonlyRootFilesystem = each.value.read_only_root_filesystem
    stopTimeout            = var.stop_timeout_seconds
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    # No Linux capability, even in the bounding set: run-job runs as a non-root user and
    # Chromium runs without its sandbox, so nothing needs one, and a process that takes
    # over the container cannot regain one through a setuid or file-capability binary.
    # Fargate accepts any drop (it allows adding only SYS_PTRACE). tini, PID 1 from the
    # image's ENTRYPOINT, reaps the children: no initProcessEnabled. No `add`, not even
    # an empty one, which ECS would not echo back (a plan that never settles).
    linuxParameters = { capabilities = { drop = ["ALL"] } }
    environment     = [for k, v in each.value.environment : { name = k, value = v }]
    secrets         = [for k in each.value.secrets : { name = k, valueFrom = var.secrets[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = each.value.log_group
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
      }
    }
  }])

  tags = merge(var.tags, each.value.tags)

  lifecycle {
    precondition {
      condition     = !each.value.refused
      error_message = each.value.refusal
    }
  }
}

# ---------------------------------------------------------------------------------------
# Schedules: EventBridge rules (UTC) or EventBridge Scheduler (time zone)

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-run-job-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeDeadLetters"
      Effect    = "Allow"
      Principal = { Service = ["events.amazonaws.com", "scheduler.amazonaws.com"] }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.dead_letter.arn
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_cloudwatch_event_rule" "job" {
  for_each            = var.use_scheduler ? {} : local.schedules
  name                = "${var.name_prefix}-${each.key}"
  description         = each.value.description
  schedule_expression = each.value.schedule
  state               = each.value.enabled ? "ENABLED" : "DISABLED"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "job" {
  for_each  = var.use_scheduler ? {} : local.schedules
  rule      = aws_cloudwatch_event_rule.job[each.key].name
  target_id = "run-job"
  arn       = local.cluster_arn
  role_arn  = aws_iam_role.events.arn

  ecs_target {
    task_definition_arn = aws_ecs_task_definition.job[each.key].arn
    task_count          = 1
    group               = local.tasks[each.key].task_group
    platform_version    = "LATEST"

    capacity_provider_strategy {
      capacity_provider = local.capacity_provider
      weight            = 1
    }

    network_configuration {
      subnets          = local.subnet_ids
      security_groups  = local.job_security_groups[each.value.security_groups_of]
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

resource "aws_scheduler_schedule" "job" {
  #checkov:skip=CKV_AWS_297:A schedule holds the task definition, subnets and groups to start, no secret; AWS-owned encryption is enough and a CMK would cost $1 a month.
  for_each                     = var.use_scheduler ? local.schedules : {}
  name                         = "${var.name_prefix}-${each.key}"
  description                  = each.value.description
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
      task_definition_arn = aws_ecs_task_definition.job[each.key].arn
      task_count          = 1
      group               = local.tasks[each.key].task_group
      platform_version    = "LATEST"

      capacity_provider_strategy {
        capacity_provider = local.capacity_provider
        weight            = 1
      }

      network_configuration {
        subnets          = local.subnet_ids
        security_groups  = local.job_security_groups[each.value.security_groups_of]
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
