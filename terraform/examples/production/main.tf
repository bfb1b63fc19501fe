# The marketplace's deployment: sa-east-1, in the marketplace's VPC and public subnets
# (public IPs, no NAT gateway, as the original's tasks), a rule on the database's
# security group admitting the jobs' group on 5432, Fargate Spot, logs kept 7 days,
# Container Insights off, secrets from Secrets Manager (or SSM Parameter Store).
# terraform.tfvars.example lists every variable a plan needs (docs/deploying.md).

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

provider "aws" {
  region = "sa-east-1"
}

variable "image_tag" {
  description = "The image build to run (git SHA)."
  type        = string
}

variable "db_credentials_secret_arn" {
  description = "The RDS credentials secret (username, password, host, port, dbname)."
  type        = string
}

variable "feu_auth_url" {
  description = "FEU's token endpoint (from FEU's documentation for the account)."
  type        = string
}

variable "feu_api_base_url" {
  description = "FEU's API base URL (from FEU's documentation for the account)."
  type        = string
}

variable "feu_emisor_rut" {
  description = "The marketplace's RUT, the issuer of its FEU e-tickets."
  type        = string
}

variable "backend_secrets_arn" {
  description = "The backend secret holding the providers' keys as JSON."
  type        = string
}

# Three identifiers the backend's secret also holds, which the jobs read as plain
# settings (their declarations list them under reads.environment): none grants anything.
variable "r2_account_id" {
  description = "The Cloudflare account of the R2 buckets (it names the R2 endpoint's host)."
  type        = string
}

variable "whatsapp_phone_number_id" {
  description = "The WhatsApp Business phone number the notifications are sent from (Meta's id for it)."
  type        = string
}

variable "vapid_public_key" {
  description = "The web push public key (base64url), the one browsers subscribed with."
  type        = string
}

variable "vpc_id" {
  description = "The marketplace's VPC (the one its RDS instance is in), e.g. the original's `revendiste-prod-vpc`. Null with create_vpc."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets of that VPC for the tasks: its public subnets (`revendiste-prod-public-1`, `-2`) with assign_public_ip."
  type        = list(string)
  default     = []
}

variable "database_security_group_id" {
  description = "The database's security group (the original's `revendiste-prod-rds-sg`): it gets a rule admitting the jobs' group on 5432. Null: no rule (then give a group the database admits in extra_security_group_ids)."
  type        = string
  default     = null
}

variable "extra_security_group_ids" {
  description = "More security groups for the tasks, beside the module's own."
  type        = list(string)
  default     = []
}

variable "create_vpc" {
  description = "A fresh account: the module creates a VPC instead (vpc_id and subnet_ids unset)."
  type        = bool
  default     = false
}

variable "assign_public_ip" {
  description = "Tasks get a public IPv4 address while they run ($0.005 an hour each). false needs a NAT gateway in the subnets' routes (or nat_gateway with create_vpc)."
  type        = bool
  default     = true
}

variable "nat_gateway" {
  description = "With create_vpc: private subnets behind one NAT gateway (docs/deploying.md for its cost)."
  type        = bool
  default     = false
}

variable "vpc_endpoints" {
  description = "With create_vpc: interface endpoints for ECR, CloudWatch Logs, Secrets Manager and SSM, and the S3 gateway endpoint."
  type        = bool
  default     = false
}

variable "ipv6" {
  description = "With create_vpc: dual-stack subnets; IPv6 leaves through the internet gateway or an egress-only gateway."
  type        = bool
  default     = false
}

variable "container_insights" {
  description = "disabled (default, as the original's cluster), enabled or enhanced: priced as CloudWatch custom metrics."
  type        = string
  default     = "disabled"
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys of the secrets (none when they use aws/secretsmanager)."
  type        = list(string)
  default     = []
}

variable "image_repository_url" {
  description = "An existing ECR repository; null creates one."
  type        = string
  default     = null
}

variable "jobs_dir" {
  description = "The job declarations; the repository's jobs/ unless overridden."
  type        = string
  default     = null
}

variable "use_scheduler" {
  description = "EventBridge Scheduler instead of rules."
  type        = bool
  default     = false
}

variable "alert_email" {
  description = "Who hears about failed jobs."
  type        = string
  default     = null
}

module "run_job" {
  source = "../.."

  name_prefix          = "revendiste-prod"
  image_tag            = var.image_tag
  image_repository_url = var.image_repository_url
  jobs_dir             = coalesce(var.jobs_dir, "${path.module}/../../../jobs")
  use_scheduler        = var.use_scheduler

  network = {
    create_vpc                 = var.create_vpc
    vpc_id                     = var.vpc_id
    subnet_ids                 = var.subnet_ids
    database_security_group_id = var.database_security_group_id
    security_group_ids         = var.extra_security_group_ids
    assign_public_ip           = var.assign_public_ip
    nat_gateway                = var.nat_gateway
    vpc_endpoints              = var.vpc_endpoints
    ipv6                       = var.ipv6
  }
  container_insights   = var.container_insights
  secrets_kms_key_arns = var.secrets_kms_key_arns
  # UTC, as `run-job next`, `list` and `--schedule` compute: a schedule then means the
  # same in production and locally. Another zone shifts production only.
  schedule_timezone = "UTC"

  environment = {
    DLOCAL_BASE_URL = "https://api.dlocalgo.com"
    APP_BASE_URL    = "https://revendiste.com"
    # check-payout-hold-periods: the original's hold.
    PAYOUT_HOLD_PERIOD_HOURS = "48"
    # invoices: FEU's endpoints and the issuer (the credentials are secrets below).
    FEU_AUTH_URL      = var.feu_auth_url
    FEU_API_BASE_URL  = var.feu_api_base_url
    FEU_EMISOR_RUT    = var.feu_emisor_rut
    EMAIL_FROM        = "noreply@revendiste.com"
    STORAGE_TYPE      = "r2"
    R2_PUBLIC_BUCKET  = "prod-revendiste-public"
    R2_PRIVATE_BUCKET = "prod-revendiste-private"
    R2_CDN_DOMAIN     = "cdn.revendiste.com"
    R2_ACCOUNT_ID     = var.r2_account_id
    # notifications: the WhatsApp sender and the web push public key (their secret
    # halves are secrets below).
    WHATSAPP_PHONE_NUMBER_ID = var.whatsapp_phone_number_id
    VAPID_PUBLIC_KEY         = var.vapid_public_key
    DATABASE_SSLMODE         = "verify-full"
    # The Amazon RDS CA bundle baked into the image: rustls trusts only public roots.
    DATABASE_SSLROOTCERT = "/etc/ssl/certs/rds-global-bundle.pem"
  }
  # Each task receives only the ones its job's declaration lists (jobs/*.yaml, reads):
  # scraping gets the database, R2, Google Places and IndexNow keys, not dLocal's, FEU's,
  # Resend's, Meta's or the push key. A job's required secret missing here stops the plan.
  secrets = {
    DB_CREDENTIALS_JSON   = var.db_credentials_secret_arn
    DLOCAL_API_KEY        = "${var.backend_secrets_arn}:DLOCAL_API_KEY::"
    DLOCAL_SECRET_KEY     = "${var.backend_secrets_arn}:DLOCAL_SECRET_KEY::"
    RESEND_API_KEY        = "${var.backend_secrets_arn}:RESEND_API_KEY::"
    WHATSAPP_ACCESS_TOKEN = "${var.backend_secrets_arn}:WHATSAPP_ACCESS_TOKEN::"
    VAPID_PRIVATE_KEY     = "${var.backend_secrets_arn}:VAPID_PRIVATE_KEY::"
    R2_ACCESS_KEY_ID      = "${var.backend_secrets_arn}:R2_ACCESS_KEY_ID::"
    R2_SECRET_ACCESS_KEY  = "${var.backend_secrets_arn}:R2_SECRET_ACCESS_KEY::"
    GOOGLE_PLACES_API_KEY = "${var.backend_secrets_arn}:GOOGLE_PLACES_API_KEY::"
    INDEXNOW_KEY          = "${var.backend_secrets_arn}:INDEXNOW_KEY::"
    FEU_REFRESH_TOKEN     = "${var.backend_secrets_arn}:FEU_REFRESH_TOKEN::"
    FEU_USERNAME          = "${var.backend_secrets_arn}:FEU_USERNAME::"
    FEU_PASSWORD          = "${var.backend_secrets_arn}:FEU_PASSWORD::"
  }

  use_fargate_spot = true
  alert_email      = var.alert_email

  tags = {
    Project     = "revendiste"
    Environment = "production"
    ManagedBy   = "terraform"
  }
}

output "run_job" {
  value = module.run_job
}
