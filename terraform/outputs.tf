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
  value       = { for k, t in aws_ecs_task_definition.job : k => t.arn }
}

output "schedule_names" {
  description = "Job name => EventBridge rule (or Scheduler schedule) name."
  value = merge(
    { for k, r in aws_cloudwatch_event_rule.job : k => r.name },
    { for k, s in aws_scheduler_schedule.job : k => s.name },
  )
}

output "log_groups" {
  description = "Job name => CloudWatch log group."
  value       = { for k, g in aws_cloudwatch_log_group.job : k => g.name }
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
  description = "Security groups of the tasks (for `aws ecs run-task`)."
  value       = local.security_groups
}
