variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `revendiste-prod`."
  type        = string
  validation {
    # The longest derived name, `<prefix>-run-job-execution` as an IAM role, may have 64.
    condition     = can(regex("^[a-z][a-z0-9-]{0,35}$", var.name_prefix))
    error_message = "name_prefix must be 1 to 36 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "jobs_dir" {
  description = "Directory of the job declarations (`<name>.yaml` / `.json`), the same files the binary embeds. Defaults to the repository's `jobs/`."
  type        = string
  default     = null
}

variable "image_repository_url" {
  description = "ECR repository URL holding the run-job images. Null: the module creates a repository."
  type        = string
  default     = null
  validation {
    condition     = var.image_repository_url == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com/[a-z0-9._/-]+$", var.image_repository_url))
    error_message = "image_repository_url must be an ECR repository URL (<account>.dkr.ecr.<region>.amazonaws.com/<name>), without a tag."
  }
}

variable "image_tag" {
  description = "Tag of the slim image; the Chromium image is `<image_tag>-chromium`. Deploy a new build by changing it."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,118}$", var.image_tag))
    error_message = "image_tag must be a Docker tag of at most 119 characters (the Chromium image adds -chromium)."
  }
}

variable "cluster_arn" {
  description = "Existing ECS cluster (with FARGATE and FARGATE_SPOT capacity providers). Null: the module creates one."
  type        = string
  default     = null
  validation {
    condition     = var.cluster_arn == null || can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]+$", var.cluster_arn))
    error_message = "cluster_arn must be an ECS cluster ARN (arn:aws:ecs:<region>:<account>:cluster/<name>)."
  }
}

variable "network" {
  description = <<-EOT
    Where the tasks run. Next to the marketplace: `vpc_id` and `subnet_ids` (its public
    subnets, with `assign_public_ip`, or private subnets with a NAT gateway of its own),
    and `database_security_group_id`, the database's group, which then admits the jobs'
    group on `database_port`. `security_group_ids`: more groups for the tasks, beside the
    module's own (which allows no ingress). Jobs that run the browser get a group of their
    own that reaches only the web and the database: the database's group, or else
    `database_cidr_blocks` (default: a created VPC's CIDR). In a fresh account: `create_vpc = true`, with
    `vpc_cidr`, `nat_gateway`, `vpc_endpoints` and `ipv6` (network.tf; each choice's
    monthly cost in docs/deploying.md).
  EOT
  type = object({
    create_vpc                 = optional(bool, false)
    vpc_id                     = optional(string)
    subnet_ids                 = optional(list(string), [])
    security_group_ids         = optional(list(string), [])
    database_security_group_id = optional(string)
    database_port              = optional(number, 5432)
    database_cidr_blocks       = optional(list(string))
    assign_public_ip           = optional(bool, true)
    vpc_cidr                   = optional(string, "10.40.0.0/16")
    nat_gateway                = optional(bool, false)
    vpc_endpoints              = optional(bool, false)
    ipv6                       = optional(bool, false)
  })

  validation {
    condition     = !(length(var.network.subnet_ids) > 0 && var.network.vpc_id == null && !var.network.create_vpc)
    error_message = "network.subnet_ids is set but network.vpc_id is not: give the VPC those subnets are in as network.vpc_id (the jobs' security group is created there; without it, it would land in the default VPC)."
  }
  validation {
    condition     = !(var.network.vpc_id != null && length(var.network.subnet_ids) == 0)
    error_message = "network.vpc_id is set but network.subnet_ids is empty: give the subnets of that VPC the tasks run in as network.subnet_ids."
  }
  validation {
    condition     = var.network.create_vpc || var.network.vpc_id != null || length(var.network.subnet_ids) > 0
    error_message = "No network: give network.vpc_id and network.subnet_ids (the marketplace's VPC, so the tasks can reach its database), or set network.create_vpc = true in a fresh account."
  }
  validation {
    condition     = !(var.network.create_vpc && (var.network.vpc_id != null || length(var.network.subnet_ids) > 0))
    error_message = "network.create_vpc is true but network.vpc_id or network.subnet_ids is set too: choose the given VPC or a created one."
  }
  validation {
    condition     = var.network.create_vpc || !(var.network.nat_gateway || var.network.vpc_endpoints || var.network.ipv6)
    error_message = "network.nat_gateway, network.vpc_endpoints and network.ipv6 shape a VPC the module creates (network.create_vpc = true); a given VPC keeps its own routes, NAT and endpoints."
  }
  validation {
    condition     = !(var.network.create_vpc && !var.network.assign_public_ip && !var.network.nat_gateway)
    error_message = "network.assign_public_ip = false in a created VPC needs network.nat_gateway = true: without a public IP or a NAT gateway the tasks reach no IPv4 provider (VPC endpoints reach only AWS services)."
  }
  validation {
    condition     = !(var.network.nat_gateway && var.network.assign_public_ip)
    error_message = "network.nat_gateway = true puts the tasks in private subnets, where a public IP does nothing but cost: set network.assign_public_ip = false."
  }
  validation {
    condition     = var.network.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.network.vpc_id))
    error_message = "network.vpc_id is not a VPC id (vpc-0123456789abcdef0)."
  }
  validation {
    condition     = alltrue([for s in var.network.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))]) && length(distinct(var.network.subnet_ids)) == length(var.network.subnet_ids)
    error_message = "network.subnet_ids must be distinct subnet ids (subnet-0123456789abcdef0)."
  }
  validation {
    condition = alltrue([
      for g in concat(var.network.security_group_ids, var.network.database_security_group_id == null ? [] : [var.network.database_security_group_id]) :
      can(regex("^sg-[0-9a-f]{8,17}$", g))
    ]) && length(var.network.security_group_ids) <= 4
    error_message = "network.security_group_ids (at most 4, beside the module's own: a task takes 5) and network.database_security_group_id must be security group ids (sg-0123456789abcdef0)."
  }
  validation {
    condition     = alltrue([for c in var.network.database_cidr_blocks == null ? [] : var.network.database_cidr_blocks : can(cidrhost(c, 0)) && length(split(":", c)) == 1])
    error_message = "network.database_cidr_blocks must be IPv4 CIDRs (10.0.0.0/16)."
  }
  validation {
    condition     = var.network.database_port >= 1 && var.network.database_port <= 65535 && floor(var.network.database_port) == var.network.database_port
    error_message = "network.database_port must be a TCP port, 1 to 65535."
  }
  validation {
    condition     = can(cidrhost(var.network.vpc_cidr, 0)) && tonumber(split("/", var.network.vpc_cidr)[1]) <= 20
    error_message = "network.vpc_cidr must be an IPv4 CIDR of /20 or larger (the subnets are /8 steps of it, two public and two private)."
  }
}

variable "container_insights" {
  description = "Container Insights on a cluster the module creates: `disabled` (as the original's), `enabled` or `enhanced`. Its metrics are billed as CloudWatch custom metrics per cluster and per task family (docs/deploying.md; `run-job cost --container-insights`)."
  type        = string
  default     = "disabled"
  validation {
    condition     = contains(["disabled", "enabled", "enhanced"], var.container_insights)
    error_message = "container_insights must be disabled, enabled or enhanced."
  }
}

variable "environment" {
  description = "Plain environment variables for every job (no secrets here)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variable name => where ECS reads its value: a Secrets Manager secret ARN, whole (`arn:aws:secretsmanager:<region>:<account>:secret:<name>`) or one JSON key of it (`<secret ARN>:<json-key>::`), or an SSM Parameter Store parameter ARN (`arn:aws:ssm:<region>:<account>:parameter/<name>`). The execution role may read only these. E.g. `DB_CREDENTIALS_JSON`."
  type        = map(string)
  default     = {}
  validation {
    condition = alltrue([
      for v in values(var.secrets) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^:]+(:[^:]*:[^:]*:[^:]*)?$", v)) || can(regex("^arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[^:]+$", v))
    ])
    error_message = "Each secrets value must be a Secrets Manager secret ARN (optionally `:<json-key>:<version-stage>:<version-id>`, e.g. `:KEY::`) or an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)."
  }
  validation {
    condition     = alltrue([for k in keys(var.secrets) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "Each secrets key must be an environment variable name (letters, digits, _)."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt the secrets or SecureString parameters in `secrets`: the execution role gets kms:Decrypt on exactly these, only through Secrets Manager and SSM. Empty when they use the AWS-managed keys (aws/secretsmanager, aws/ssm), which need no grant."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/mrk-[0-9a-f]{32}$", k))])
    error_message = "secrets_kms_key_arns must be KMS key ARNs (arn:aws:kms:<region>:<account>:key/<key-id>), not aliases: a grant on an alias does not cover Decrypt."
  }
}

variable "bucket_access" {
  description = "What the jobs may do in S3/R2-on-AWS buckets: bucket name, key prefixes, and whether they may write."
  type = list(object({
    bucket   = string
    prefixes = list(string)
    write    = optional(bool, false)
  }))
  default = []
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps each job's logs (stored logs are billed per GB-month: `run-job cost --log-retention-days`)."
  type        = number
  default     = 7
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention periods: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key for the log groups. Null: CloudWatch's default encryption."
  type        = string
  default     = null
  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>)."
  }
}

variable "stop_timeout_seconds" {
  description = "Seconds between SIGTERM and SIGKILL when ECS stops a task (Fargate allows up to 120). run-job stops within twice its grace (10 s by default: the job's grace, then retries of its final job_runs write), plus 5 s for a heartbeat's last ping."
  type        = number
  default     = 30
  validation {
    condition     = var.stop_timeout_seconds >= 2 && var.stop_timeout_seconds <= 120
    error_message = "stop_timeout_seconds must be 2 to 120 (Fargate's limit)."
  }
}

variable "use_fargate_spot" {
  description = "Run the jobs on FARGATE_SPOT (about 70 % cheaper; a Spot interruption is a SIGTERM, which run-job handles)."
  type        = bool
  default     = true
}

variable "use_scheduler" {
  description = "Use EventBridge Scheduler schedules (with `schedule_timezone`) instead of EventBridge rules (UTC only)."
  type        = bool
  default     = false
}

variable "schedule_timezone" {
  description = "IANA time zone of the schedules when `use_scheduler` is true."
  type        = string
  default     = "UTC"
}

variable "retry_attempts" {
  description = "How many times EventBridge retries a RunTask that fails (throttling, capacity)."
  type        = number
  default     = 3
  validation {
    condition     = var.retry_attempts >= 0 && var.retry_attempts <= 185 && floor(var.retry_attempts) == var.retry_attempts
    error_message = "retry_attempts must be a whole number from 0 to 185 (EventBridge's range)."
  }
}

variable "retry_max_event_age_seconds" {
  description = "How long EventBridge keeps retrying a RunTask before it goes to the dead-letter queue."
  type        = number
  default     = 600
  validation {
    condition     = var.retry_max_event_age_seconds >= 60 && var.retry_max_event_age_seconds <= 86400
    error_message = "retry_max_event_age_seconds must be 60 to 86400 (EventBridge's range)."
  }
}

variable "alert_email" {
  description = "Email subscribed to the alerts topic. Null: no subscription."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
