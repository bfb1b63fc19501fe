variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `revendiste-prod`."
  type        = string
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
}

variable "image_tag" {
  description = "Tag of the slim image; the Chromium image is `<image_tag>-chromium`. Deploy a new build by changing it."
  type        = string
}

variable "cluster_arn" {
  description = "Existing ECS cluster (with FARGATE and FARGATE_SPOT capacity providers). Null: the module creates one."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the tasks. Null together with empty `subnet_ids`: the module creates a VPC with public subnets and no NAT gateway."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Public subnets for the tasks (they get public IPs; there is no NAT gateway)."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR of the VPC the module creates when none is given."
  type        = string
  default     = "10.40.0.0/16"
}

variable "security_group_ids" {
  description = "Security groups for the tasks. Empty: the module creates one that allows no ingress."
  type        = list(string)
  default     = []
}

variable "environment" {
  description = "Plain environment variables for every job (no secrets here)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variable name => Secrets Manager ARN (optionally `arn:...:secret:name:json-key::`). The execution role may read only these secrets. E.g. `DB_CREDENTIALS_JSON`."
  type        = map(string)
  default     = {}
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
  description = "Days CloudWatch keeps each job's logs."
  type        = number
  default     = 7
}

variable "log_kms_key_arn" {
  description = "KMS key for the log groups. Null: CloudWatch's default encryption."
  type        = string
  default     = null
}

variable "stop_timeout_seconds" {
  description = "Seconds between SIGTERM and SIGKILL when ECS stops a task (Fargate allows up to 120). run-job stops within twice its grace (10 s by default: the job's grace, then retries of its final job_runs write), plus 5 s for a heartbeat's last ping."
  type        = number
  default     = 30
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
}

variable "retry_max_event_age_seconds" {
  description = "How long EventBridge keeps retrying a RunTask before it goes to the dead-letter queue."
  type        = number
  default     = 600
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
