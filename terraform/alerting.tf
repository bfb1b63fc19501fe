# A job that fails tells someone: any job task that stops with a non-zero exit code
# (failed 1, timed out 4, interrupted 5, runner 6; a skip exits 0) or never starts
# (TaskFailedToStart: image pull errors, capacity, ENI limits) is published to the SNS
# topic, and so is anything landing in the dead-letter queue (a RunTask EventBridge gave
# up on). A shared task (tick.tf) is in task group run-job:tick-<group> and exits with
# its worst member's code, so the same rules cover it; which member failed is in its
# log group and in job_runs.

# The topic is encrypted with a key of its own: the AWS-managed SNS key's policy cannot
# let EventBridge and CloudWatch alarms publish, so with it the alerts would be dropped.
resource "aws_kms_key" "alerts" {
  description         = "${var.name_prefix} run-job alerts topic"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "PublishersEncrypt"
        Effect    = "Allow"
        Principal = { Service = ["events.amazonaws.com", "cloudwatch.amazonaws.com"] }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
      },
    ]
  })
  tags = var.tags
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-run-job-alerts"
  kms_master_key_id = aws_kms_key.alerts.arn
  tags              = var.tags
}

resource "aws_sns_topic_policy" "alerts" {
  arn = aws_sns_topic.alerts.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeAndAlarms"
      Effect    = "Allow"
      Principal = { Service = ["events.amazonaws.com", "cloudwatch.amazonaws.com"] }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alerts.arn
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alert_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_cloudwatch_event_rule" "job_failed" {
  name        = "${var.name_prefix}-run-job-failed"
  description = "A run-job task stopped with a non-zero exit code"
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [local.cluster_arn]
      lastStatus = ["STOPPED"]
      group      = [{ prefix = "run-job:" }]
      containers = { exitCode = [{ "anything-but" = 0 }] }
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "job_not_started" {
  name        = "${var.name_prefix}-run-job-not-started"
  description = "A run-job task failed to start (image pull, capacity, network)"
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [local.cluster_arn]
      lastStatus = ["STOPPED"]
      group      = [{ prefix = "run-job:" }]
      stopCode   = ["TaskFailedToStart"]
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "alert" {
  for_each = {
    failed      = aws_cloudwatch_event_rule.job_failed.name
    not_started = aws_cloudwatch_event_rule.job_not_started.name
  }
  rule      = each.value
  target_id = "sns"
  arn       = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths = {
      group  = "$.detail.group"
      reason = "$.detail.stoppedReason"
      task   = "$.detail.taskArn"
      exit   = "$.detail.containers[0].exitCode"
    }
    input_template = "\"<group> stopped (exit code <exit>): <reason>. Task <task>.\""
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name_prefix}-run-job-dead-letters"
  alarm_description   = "EventBridge gave up starting a run-job task; see the dead-letter queue"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}
