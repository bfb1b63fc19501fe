# Least privilege, three roles:
# - execution: what ECS needs to start a job's container (pull the image, write its log
#   groups, read exactly the secrets and parameters given, decrypt with exactly the
#   KMS keys given, and only through Secrets Manager and SSM). One role for every job:
#   it may read every given secret, but only ECS uses it, to start a container, and
#   never hands its credentials to one; what each container receives is its own job's
#   (main.tf, task_secrets). A role per job would only narrow what someone allowed to
#   register task definitions and pass the role could inject, which iam:PassRole decides.
# - task: what a running job may do in AWS (only the buckets and prefixes given; S3
#   ARNs are written for the commercial partition, where sa-east-1 is);
# - events: what EventBridge needs to start tasks (RunTask on these task definitions, the
#   jobs' and the shared tasks', in this cluster, and PassRole on the two roles above,
#   to ECS tasks only).

locals {
  # A Secrets Manager reference may carry a JSON key (`arn:...:secret:name:key::`):
  # grant the secret. An SSM reference is the parameter's ARN, granted as it is.
  secret_arns    = distinct([for v in values(var.secrets) : join(":", slice(split(":", v), 0, 7)) if split(":", v)[2] == "secretsmanager"])
  parameter_arns = distinct([for v in values(var.secrets) : v if split(":", v)[2] == "ssm"])
  repository_arn = var.image_repository_url == null ? aws_ecr_repository.this[0].arn : "arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/${join("/", slice(split("/", var.image_repository_url), 1, length(split("/", var.image_repository_url))))}"
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-run-job-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # this action has no resource-level permissions
  }
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [local.repository_arn]
  }
  statement {
    sid     = "WriteLogs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    # The streams of these log groups (`<group ARN>:*`, written from known values).
    resources = [for g in values(aws_cloudwatch_log_group.job) : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${g.name}:*"]
  }
  dynamic "statement" {
    for_each = length(local.secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadGivenSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_arns
    }
  }
  dynamic "statement" {
    for_each = length(local.parameter_arns) > 0 ? [1] : []
    content {
      sid       = "ReadGivenParameters"
      actions   = ["ssm:GetParameters"]
      resources = local.parameter_arns
    }
  }
  # A secret or SecureString under a customer-managed key: ECS's read fails without
  # Decrypt on that key. Only through the two services, so the role cannot decrypt
  # anything else the key protects.
  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptGivenSecrets"
      actions   = ["kms:Decrypt"]
      resources = distinct(var.secrets_kms_key_arns)
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com", "ssm.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "run-job-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${var.name_prefix}-run-job-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  dynamic "statement" {
    for_each = var.bucket_access
    content {
      sid       = "Objects${replace(title(replace(statement.value.bucket, "/[^a-zA-Z0-9]/", " ")), " ", "")}"
      actions   = statement.value.write ? ["s3:GetObject", "s3:PutObject"] : ["s3:GetObject"]
      resources = [for p in statement.value.prefixes : "arn:aws:s3:::${statement.value.bucket}/${p}*"]
    }
  }
  dynamic "statement" {
    for_each = var.bucket_access
    content {
      sid       = "List${replace(title(replace(statement.value.bucket, "/[^a-zA-Z0-9]/", " ")), " ", "")}"
      actions   = ["s3:ListBucket"]
      resources = ["arn:aws:s3:::${statement.value.bucket}"]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = [for p in statement.value.prefixes : "${p}*"]
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  count  = length(var.bucket_access) > 0 ? 1 : 0
  name   = "run-job-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${var.name_prefix}-run-job-events"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "events" {
  statement {
    sid     = "RunTheseTaskDefinitions"
    actions = ["ecs:RunTask"]
    # Every revision of each job's and each shared task's family (what
    # arn_without_revision + ":*" is, written from known values so that a plan, and the
    # tests, can read it).
    resources = [for t in values(aws_ecs_task_definition.job) : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${t.family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }
  statement {
    sid       = "PassTheTwoTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
    condition {
      test     = "StringLike"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "run-job-events"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}
