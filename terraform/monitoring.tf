# What the runs' own metrics show: every run ends with an EMF line (namespace RunJob,
# dimension job; Duration, ItemsProcessed, ItemsFailed, Failed, Skipped), so CloudWatch
# has one Duration datapoint per run, skipped runs included. The dashboard graphs them
# per job; the missed-run alarms fire when a job's datapoints stop, which the task-state
# alerts (alerting.tf) cannot see: no task, no event. Both are generated from the
# declarations: a new job appears here without a .tf edit. Both stay per job when jobs
# share a task (tick.tf): the tick ends each member's run with that job's own line.

locals {
  metric_namespace = "RunJob"

  # Per job, side by side: runs by outcome, duration percentiles, items. Hourly, so
  # jobs of every cadence compare.
  dashboard_graphs = {
    for name, _ in local.jobs : name => [
      {
        title = "runs per hour by outcome"
        metrics = [
          [local.metric_namespace, "Duration", "job", name, { stat = "SampleCount", label = "runs" }],
          [local.metric_namespace, "Failed", "job", name, { stat = "Sum", label = "failed" }],
          [local.metric_namespace, "Skipped", "job", name, { stat = "Sum", label = "skipped" }],
        ]
      },
      {
        title = "duration (ms)"
        metrics = [
          [local.metric_namespace, "Duration", "job", name, { stat = "p50", label = "p50" }],
          [local.metric_namespace, "Duration", "job", name, { stat = "p95", label = "p95" }],
        ]
      },
      {
        title = "items per hour"
        metrics = [
          [local.metric_namespace, "ItemsProcessed", "job", name, { stat = "Sum", label = "processed" }],
          [local.metric_namespace, "ItemsFailed", "job", name, { stat = "Sum", label = "failed" }],
        ]
      },
    ]
  }

  # One row per job, in name order: a header, then its three graphs.
  dashboard_rows = [
    for i, name in sort(keys(local.jobs)) : concat(
      [{
        type   = "text"
        x      = 0
        y      = local.dashboard_top + i * 7
        width  = 24
        height = 1
        properties = {
          markdown = "### ${name} · `${local.jobs[name].schedule}`${local.jobs[name].shares_task == "" ? "" : " · shares task ${local.jobs[name].shares_task}"}${local.jobs[name].enabled ? "" : " · disabled"} · ${local.jobs[name].description}"
        }
      }],
      [for k, g in local.dashboard_graphs[name] : {
        type   = "metric"
        x      = k * 8
        y      = local.dashboard_top + 1 + i * 7
        width  = 8
        height = 6
        properties = {
          title   = "${name}: ${g.title}"
          region  = local.region
          view    = "timeSeries"
          period  = 3600
          metrics = g.metrics
        }
      }],
    )
  ]

  # Above the rows: the missed-run alarms' states at a glance (a widget takes 100).
  dashboard_alarms = length(aws_cloudwatch_metric_alarm.missed_run) == 0 ? [] : [{
    type   = "alarm"
    x      = 0
    y      = 0
    width  = 24
    height = 3
    properties = {
      title  = "Missed runs"
      alarms = slice([for a in aws_cloudwatch_metric_alarm.missed_run : a.arn], 0, min(100, length(aws_cloudwatch_metric_alarm.missed_run)))
    }
  }]
  dashboard_top = length(local.dashboard_alarms) * 3
}

resource "aws_cloudwatch_dashboard" "run_job" {
  dashboard_name = "${var.name_prefix}-run-job"
  dashboard_body = jsonencode({ widgets = concat(local.dashboard_alarms, flatten(local.dashboard_rows)) })
}

# A job whose runs stop leaves no datapoint: SampleCount of Duration below 1 over the
# job's window (schedule.tf), with missing data breaching, is exactly "no run finished".
# This catches what no task event can: a rule disabled or deleted by hand, RunTask failing
# before a task exists (Spot capacity not found, throttling, a missing role), a schedule
# that no longer matches; and runs whose summary line never reaches CloudWatch. Disabled
# jobs are not expected to run and get none.
resource "aws_cloudwatch_metric_alarm" "missed_run" {
  for_each = local.missed_run_alarms

  alarm_name        = "${var.name_prefix}-run-job-missed-${each.key}"
  alarm_description = "No run of ${each.key} has finished for ${each.value.period * each.value.evaluation_periods} s; its schedule ${local.jobs[each.key].schedule} leaves at most ${each.value.gap} s between fires. Check that the schedule ${local.runs_in[each.key].schedule} is enabled, the dead-letter queue, stopped tasks in group ${local.runs_in[each.key].task_group}, and the log group ${local.runs_in[each.key].log_group}."
  namespace         = local.metric_namespace
  metric_name       = "Duration"
  dimensions        = { job = each.key }
  statistic         = "SampleCount"
  period            = each.value.period
  # Over a day the window is whole days: alarm only when none of them had a run.
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.evaluation_periods
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}
