terraform {
  # 1.3+ for optional() object attributes; fmt-only checks here run 1.0.3, which parses it.
  required_version = ">= 1.3"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}
