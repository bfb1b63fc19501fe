# A fresh account: the module creates its own VPC (two public subnets in zones that need
# no opt-in, private subnets behind one NAT gateway, the VPC endpoints ECS needs,
# dual-stack), as for a staging copy with its own database. Every network option is on
# here so that scripts/check-infra's scanners see every resource the module can create;
# each one's monthly cost is in docs/deploying.md (`terraform output cost_command`).

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
  description = "The database credentials: a Secrets Manager secret or SSM parameter ARN."
  type        = string
}

variable "backend_secrets_arn" {
  description = "A Secrets Manager secret holding the providers' keys as JSON (at least those the jobs cannot run without)."
  type        = string
}

module "run_job" {
  source = "../.."

  name_prefix = "revendiste-staging"
  image_tag   = var.image_tag
  jobs_dir    = "${path.module}/../../../jobs"

  network = {
    create_vpc       = true
    assign_public_ip = false
    nat_gateway      = true
    vpc_endpoints    = true
    ipv6             = true
  }

  # The secrets every enabled job's declaration requires (jobs/*.yaml, reads.secrets):
  # without one the plan stops. Optional ones (R2, FEU, WhatsApp, push) can be added the
  # same way; each task receives only those its declaration lists.
  secrets = {
    DB_CREDENTIALS_JSON = var.db_credentials_secret_arn
    DLOCAL_API_KEY      = "${var.backend_secrets_arn}:DLOCAL_API_KEY::"
    DLOCAL_SECRET_KEY   = "${var.backend_secrets_arn}:DLOCAL_SECRET_KEY::"
    RESEND_API_KEY      = "${var.backend_secrets_arn}:RESEND_API_KEY::"
  }
}

output "cost_command" {
  value = module.run_job.cost_command
}
