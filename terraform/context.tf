# Where the module runs: the account, region and partition, and the zones a created VPC
# may use. Kept in a file of its own so that the structural tests (tests/test_module.py)
# can put a stand-in account and region in its place and check the ARNs and conditions
# built from them; nothing else in the module reads a data source for these.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# Zones that need no opt-in: the Availability Zones proper. Local Zones and Wavelength
# Zones are opt-in, lack Fargate in most places, and would be picked here if the account
# had opted into one.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only a created VPC (fresh account) reads this, and it takes the first two names in order; a zone AWS adds later sorts after them, so the subnets stay where they are. Next to the marketplace the given subnets decide.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  region             = data.aws_region.current.name
  account_id         = data.aws_caller_identity.current.account_id
  partition          = data.aws_partition.current.partition
  availability_zones = data.aws_availability_zones.available.names
}
