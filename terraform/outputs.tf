output "ecr_repository_url" {
  description = "Where to push the images (`<tag>` slim, `<tag>-chromium`)."
  value       = local.repository_url
}

output "cluster_arn" {
  description = "The ECS cluster the jobs run in."
  value       = local.cluster_arn
}

output "task_definition_arns" {
  description = "Job name => task definition ARN (for `aws ecs run-task`)."
  value       = { for name, _ in local.jobs : name => aws_ecs_task_definition.job[name].arn }
}

output "schedule_names" {
  description = "Job name => EventBridge rule (or Scheduler schedule) name, for jobs that do not share a task (shared_tasks has the others')."
  value = merge(
    { for k, r in aws_cloudwatch_event_rule.job : k => r.name if contains(keys(local.job_tasks), k) },
    { for k, s in aws_scheduler_schedule.job : k => s.name if contains(keys(local.job_tasks), k) },
  )
}

output "log_groups" {
  description = "Job name => CloudWatch log group."
  value       = { for name, _ in local.jobs : name => aws_cloudwatch_log_group.job[name].name }
}

output "alerts_topic_arn" {
  description = "SNS topic of failure alerts."
  value       = aws_sns_topic.alerts.arn
}

output "dead_letter_queue_url" {
  description = "RunTask requests EventBridge gave up on."
  value       = aws_sqs_queue.dead_letter.id
}

output "subnet_ids" {
  description = "Subnets the tasks run in (for `aws ecs run-task`)."
  value       = local.subnet_ids
}

output "security_group_ids" {
  description = "Security groups of the tasks of the jobs that do not run the browser (for `aws ecs run-task`); job_security_group_ids has every job's."
  value       = local.security_groups
}

output "dashboard_name" {
  description = "CloudWatch dashboard of every job's runs, durations and items."
  value       = aws_cloudwatch_dashboard.run_job.dashboard_name
}

output "missed_run_alarm_windows" {
  description = "Job name => seconds without a finished run before its missed-run alarm fires (whole days above one day)."
  value       = { for name, a in local.missed_run_alarms : name => a.period * a.evaluation_periods }
}

output "jobs_without_missed_run_alarm" {
  description = "Job name => why it has no missed-run alarm (disabled; a schedule the window cannot be derived from; a window over CloudWatch's 7 days)."
  value       = local.jobs_without_missed_run_alarm
}

output "heartbeat_variables" {
  description = "Job => the environment variable its declaration reads its check-in URL from (heartbeat_url_env), for jobs that declare one."
  value       = local.heartbeat_variables

  # A check-in URL is a secret: a declaration that names its variable needs it in
  # var.secrets, or the job's runs would never check in.
  precondition {
    condition     = alltrue([for v in values(local.heartbeat_variables) : contains(keys(var.secrets), v)])
    error_message = "A job declares heartbeat_url_env without a matching entry in var.secrets (its Secrets Manager ARN and key); see output heartbeat_variables."
  }
}

output "cost_command" {
  description = "The `run-job cost` command whose fixed items match these choices (Container Insights, NAT gateway, endpoints, public IPs, log retention)."
  value = join(" ", compact([
    "run-job cost",
    var.use_fargate_spot ? "" : "--capacity on-demand",
    var.container_insights == "disabled" || var.cluster_arn != null ? "" : "--container-insights",
    var.network.create_vpc && var.network.nat_gateway ? "--nat" : "",
    length(local.interface_endpoints) > 0 ? "--endpoints ${length(local.interface_endpoints)} --zones ${length(local.zones)}" : "",
    !var.network.assign_public_ip && !(var.network.create_vpc && var.network.nat_gateway) ? "--no-public-ip" : "",
    "--log-retention-days ${var.log_retention_days}",
  ]))
}

output "job_security_group_ids" {
  description = "Job name => the security groups its task carries (for `aws ecs run-task`): the browser group for jobs that run the browser, the jobs' group for the others, and network.security_group_ids."
  value       = local.job_security_groups
}

output "task_variables" {
  description = "Job name => the secret and plain variable names its task definition receives (its declaration's reads that were supplied, the runner's own, its check-in URL, and the module's RUN_JOB_* settings)."
  value = {
    for name, _ in local.jobs : name => {
      secrets     = local.task_secrets[name]
      environment = sort(keys(local.task_environment[name]))
    }
  }

  # A name no task would receive is a typo or a declaration that forgot to list it:
  # refused rather than silently dropped.
  precondition {
    condition     = length(local.unread_secrets) == 0
    error_message = "var.secrets names variables that no job's declaration (reads.secrets, reads.optional_secrets, heartbeat_url_env) and not the runner reads, so no task would receive them: ${join(", ", local.unread_secrets)}. Remove them, or list them in the declaration of the job that reads them."
  }
  precondition {
    condition     = length(local.unread_environment) == 0
    error_message = "var.environment names variables that no job's declaration (reads.environment) and not the runner reads, so no task would receive them: ${join(", ", local.unread_environment)}. Remove them, or list them in the declaration of the job that reads them (a secret goes in var.secrets and reads.secrets)."
  }
}

output "shared_tasks" {
  description = "Group => its members, the shared task's derived cpu and memory, its tick period in minutes and schedule expression, each member's most minutes of delay behind its own schedule, and the task definition, schedule and log group (tick.tf)."
  value = {
    for g, s in local.groups : g => {
      members             = s.members
      cpu                 = s.cpu
      memory              = local.group_memory[g]
      period_minutes      = local.group_period[g]
      schedule_expression = local.group_schedule[g]
      max_delay_minutes   = local.group_delay[g]
      enabled             = s.enabled
      task_definition_arn = aws_ecs_task_definition.job["tick-${g}"].arn
      schedule_name       = "${var.name_prefix}-tick-${g}"
      log_group           = aws_cloudwatch_log_group.job["tick-${g}"].name
    }
  }
}
