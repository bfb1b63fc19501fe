# Where the tasks run and what they may reach.
#
# Next to the marketplace (var.network.vpc_id + subnet_ids): the tasks run in its VPC and
# subnets with a security group of their own (no ingress), plus any groups given; with
# database_security_group_id, one rule on the database's group admits the jobs' group
# on the database port, as the original's rds-sg admits its ecs-tasks-sg. Nothing else
# in that VPC changes: its routes, NAT and endpoints are the marketplace's.
#
# Jobs that run the browser (`image: chromium`: scraping) read pages strangers write, so
# their tasks carry another group instead: no ingress, egress only to the web (TCP 443
# and 80, IPv4 and, in a dual-stack created VPC, IPv6) and to the database port (the
# database's group, or network.database_cidr_blocks). A page that takes the browser over
# cannot reach the VPC's other services or any other port. Security groups cost nothing.
#
# In a fresh account (var.network.create_vpc): a VPC with two public subnets in zones
# that need no opt-in and an internet gateway, its default security group emptied.
# Options, each with its monthly cost (docs/deploying.md, `run-job cost`):
# - assign_public_ip (default true): each task holds a public IPv4 address while it
#   runs, priced per hour, and reaches everything directly.
# - nat_gateway: two private subnets for the tasks and one NAT gateway (one zone: a
#   zone outage stops the jobs, not the marketplace), priced per hour and per GB.
# - vpc_endpoints: interface endpoints for what ECS needs to start a task (ECR API and
#   registry, CloudWatch Logs, Secrets Manager, SSM) and the free S3 gateway endpoint,
#   priced per endpoint, per zone and hour. They do not reach the providers (dLocal,
#   Resend, Meta, R2, FEU, the scraped sites): without a public IP or NAT, the jobs
#   reach those only over IPv6, where they publish AAAA records.
# - ipv6: an IPv6 block for the VPC and every subnet; tasks get an IPv6 address and
#   leave through the internet gateway (public subnets) or an egress-only internet
#   gateway (private subnets), neither of which has an hourly charge.

locals {
  net        = var.network
  create_vpc = local.net.create_vpc
  vpc_id     = local.create_vpc ? aws_vpc.this[0].id : local.net.vpc_id

  # The tasks' subnets: the given ones, or the created private ones behind the NAT
  # gateway, or the created public ones.
  subnet_ids = (
    !local.create_vpc ? local.net.subnet_ids :
    local.net.nat_gateway ? aws_subnet.private[*].id : aws_subnet.public[*].id
  )
  security_groups = concat([aws_security_group.jobs.id], local.net.security_group_ids)

  browser_jobs = toset([for name, j in local.jobs : name if j.image == "chromium"])
  # Job => the groups its task carries. The given groups go to every task (they are how
  # a database without database_security_group_id admits the jobs): their egress adds
  # to the browser group's, so give groups without broad egress.
  job_security_groups = {
    for name, _ in local.jobs : name => concat(
      contains(local.browser_jobs, name) ? aws_security_group.browser[*].id : [aws_security_group.jobs.id],
      local.net.security_group_ids,
    )
  }
  # Where the browser group may reach the database port when the database's group is
  # not given: the CIDRs named, or the created VPC.
  database_cidr_blocks = local.net.database_cidr_blocks != null ? local.net.database_cidr_blocks : local.create_vpc ? [local.net.vpc_cidr] : []

  # Two zones from those that need no opt-in.
  zones = local.create_vpc ? slice(local.availability_zones, 0, 2) : []

  interface_endpoints = local.create_vpc && local.net.vpc_endpoints ? toset(["ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm"]) : toset([])
}

# ---------------------------------------------------------------------------------------
# Created VPC (fresh account only)

# Only created for a deployment without a VPC of its own; it carries the jobs' outbound
# calls and nothing else. Pass your VPC (with its flow logs) to use it instead.
#trivy:ignore:AVD-AWS-0178 A created VPC carries only the jobs' outbound calls; the marketplace's own VPC, which the module uses in production, keeps its flow logs.
resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:A created VPC carries only the jobs' outbound calls; deployments next to the marketplace use its VPC and its flow logs.
  count                            = local.create_vpc ? 1 : 0
  cidr_block                       = local.net.vpc_cidr
  assign_generated_ipv6_cidr_block = local.net.ipv6
  enable_dns_support               = true
  enable_dns_hostnames             = true
  tags                             = merge(var.tags, { Name = "${var.name_prefix}-jobs" })
}

# Every VPC has a default security group that admits its own members and lets them out
# anywhere; nothing here uses it, so it is emptied rather than left open to whatever
# is launched without a group.
resource "aws_default_security_group" "this" {
  count  = length(aws_vpc.this)
  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-jobs-default-unused" })
}

resource "aws_internet_gateway" "this" {
  count  = length(aws_vpc.this)
  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-jobs" })
}

resource "aws_subnet" "public" {
  count             = length(local.zones)
  vpc_id            = aws_vpc.this[0].id
  cidr_block        = cidrsubnet(local.net.vpc_cidr, 8, count.index)
  ipv6_cidr_block   = local.net.ipv6 ? cidrsubnet(aws_vpc.this[0].ipv6_cidr_block, 8, count.index) : null
  availability_zone = local.zones[count.index]
  # Tasks get a public IP from their RunTask network configuration, not from the subnet.
  map_public_ip_on_launch         = false
  assign_ipv6_address_on_creation = local.net.ipv6
  tags                            = merge(var.tags, { Name = "${var.name_prefix}-jobs-public-${count.index}" })
}

resource "aws_route_table" "public" {
  count  = length(aws_vpc.this)
  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-jobs-public" })
}

resource "aws_route" "public_ipv4" {
  count                  = length(aws_vpc.this)
  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route" "public_ipv6" {
  count                       = local.create_vpc && local.net.ipv6 ? 1 : 0
  route_table_id              = aws_route_table.public[0].id
  destination_ipv6_cidr_block = "::/0"
  gateway_id                  = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count          = length(aws_subnet.public)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

# With nat_gateway: the tasks move to private subnets whose IPv4 leaves through one NAT
# gateway in the first public subnet (its address is a public IPv4, priced as one).
resource "aws_subnet" "private" {
  count                           = local.create_vpc && local.net.nat_gateway ? length(local.zones) : 0
  vpc_id                          = aws_vpc.this[0].id
  cidr_block                      = cidrsubnet(local.net.vpc_cidr, 8, 10 + count.index)
  ipv6_cidr_block                 = local.net.ipv6 ? cidrsubnet(aws_vpc.this[0].ipv6_cidr_block, 8, 10 + count.index) : null
  availability_zone               = local.zones[count.index]
  map_public_ip_on_launch         = false
  assign_ipv6_address_on_creation = local.net.ipv6
  tags                            = merge(var.tags, { Name = "${var.name_prefix}-jobs-private-${count.index}" })
}

resource "aws_eip" "nat" {
  count  = length(aws_subnet.private) > 0 ? 1 : 0
  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name_prefix}-jobs-nat" })
}

resource "aws_nat_gateway" "this" {
  count         = length(aws_eip.nat)
  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id
  tags          = merge(var.tags, { Name = "${var.name_prefix}-jobs" })
  depends_on    = [aws_internet_gateway.this]
}

resource "aws_egress_only_internet_gateway" "this" {
  count  = length(aws_subnet.private) > 0 && local.net.ipv6 ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-jobs" })
}

resource "aws_route_table" "private" {
  count  = length(aws_subnet.private) > 0 ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-jobs-private" })
}

resource "aws_route" "private_ipv4" {
  count                  = length(aws_route_table.private)
  route_table_id         = aws_route_table.private[0].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_route" "private_ipv6" {
  count                       = length(aws_egress_only_internet_gateway.this)
  route_table_id              = aws_route_table.private[0].id
  destination_ipv6_cidr_block = "::/0"
  egress_only_gateway_id      = aws_egress_only_internet_gateway.this[0].id
}

resource "aws_route_table_association" "private" {
  count          = length(aws_subnet.private)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

# With vpc_endpoints: ECS reaches ECR, the log groups, the secrets and parameters
# without the internet (image layers come from S3, through the gateway endpoint).
resource "aws_vpc_endpoint" "interface" {
  for_each            = local.interface_endpoints
  vpc_id              = aws_vpc.this[0].id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true
  tags                = merge(var.tags, { Name = "${var.name_prefix}-jobs-${each.key}" })
}

resource "aws_vpc_endpoint" "s3" {
  count             = length(local.interface_endpoints) > 0 ? 1 : 0
  vpc_id            = aws_vpc.this[0].id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = concat(aws_route_table.public[*].id, aws_route_table.private[*].id)
  tags              = merge(var.tags, { Name = "${var.name_prefix}-jobs-s3" })
}

resource "aws_security_group" "endpoints" {
  count       = length(local.interface_endpoints) > 0 ? 1 : 0
  name        = "${var.name_prefix}-jobs-endpoints"
  description = "run-job VPC endpoints: HTTPS from the jobs only"
  vpc_id      = local.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "endpoints" {
  count                        = length(aws_security_group.endpoints)
  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the run-job tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.jobs.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_browser" {
  count                        = length(aws_security_group.endpoints) * length(aws_security_group.browser)
  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the run-job tasks that run the browser"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.browser[0].id
}

# ---------------------------------------------------------------------------------------
# The jobs' security group (always) and the database's rule

resource "aws_security_group" "jobs" {
  #checkov:skip=CKV_AWS_382:The jobs call public APIs (dLocal, Resend, Meta, R2, FEU, ticket sites) whose addresses are not fixed; there is no proxy to pin.
  name        = "${var.name_prefix}-jobs"
  description = "run-job tasks: no ingress; egress to the database and the providers"
  vpc_id      = local.vpc_id

  #trivy:ignore:AVD-AWS-0104 The jobs call public APIs (dLocal, Resend, Meta, R2, FEU, ticket sites) whose addresses are not fixed; there is no proxy to pin.
  egress {
    description      = "Providers, database, AWS APIs"
    from_port        = 0
    to_port          = 0
    protocol         = "-1"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = local.net.ipv6 ? ["::/0"] : []
  }

  tags = var.tags
}

# The original admits the database port only from its ecs-tasks group; this adds the
# jobs' group beside it, on the database's group, so the jobs need no ingress-open group
# of the marketplace's.
resource "aws_vpc_security_group_ingress_rule" "database" {
  count                        = local.net.database_security_group_id == null ? 0 : 1
  security_group_id            = local.net.database_security_group_id
  description                  = "PostgreSQL from the run-job tasks (${var.name_prefix})"
  ip_protocol                  = "tcp"
  from_port                    = local.net.database_port
  to_port                      = local.net.database_port
  referenced_security_group_id = aws_security_group.jobs.id
  tags                         = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "database_browser" {
  count                        = local.net.database_security_group_id == null ? 0 : length(aws_security_group.browser)
  security_group_id            = local.net.database_security_group_id
  description                  = "PostgreSQL from the run-job tasks that run the browser (${var.name_prefix})"
  ip_protocol                  = "tcp"
  from_port                    = local.net.database_port
  to_port                      = local.net.database_port
  referenced_security_group_id = aws_security_group.browser[0].id
  tags                         = var.tags
}

# ---------------------------------------------------------------------------------------
# The browser jobs' security group: the web and the database, nothing else

# No inline rules: Terraform removes the allow-all egress AWS gives a new group, and the
# rules below are all it gets.
resource "aws_security_group" "browser" {
  count       = length(local.browser_jobs) > 0 ? 1 : 0
  name        = "${var.name_prefix}-jobs-browser"
  description = "run-job tasks that run the browser: no ingress; egress to the web and the database only"
  vpc_id      = local.vpc_id
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = local.net.database_security_group_id != null || length(local.database_cidr_blocks) > 0
      error_message = "Jobs that run the browser (${join(", ", sort(local.browser_jobs))}) get a group that reaches only the web and the database: give network.database_security_group_id, or network.database_cidr_blocks (where the database is), so that it can reach the database."
    }
  }
}

locals {
  browser_web_egress = length(aws_security_group.browser) == 0 ? {} : merge(
    { for port in [443, 80] : "ipv4-${port}" => { port = port, ipv4 = "0.0.0.0/0", ipv6 = null } },
    local.net.ipv6 ? { for port in [443, 80] : "ipv6-${port}" => { port = port, ipv4 = null, ipv6 = "::/0" } } : {},
  )
}

# Anywhere, on the web's two ports: the ticket sites, their images and the providers
# have no fixed addresses.
resource "aws_vpc_security_group_egress_rule" "browser_web" {
  for_each          = local.browser_web_egress
  security_group_id = aws_security_group.browser[0].id
  description       = "The web (${each.value.port == 443 ? "HTTPS" : "HTTP"}): the scraped sites, their images, the providers and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.ipv4
  cidr_ipv6         = each.value.ipv6
  tags              = var.tags
}

resource "aws_vpc_security_group_egress_rule" "browser_database" {
  count                        = local.net.database_security_group_id == null ? 0 : length(aws_security_group.browser)
  security_group_id            = aws_security_group.browser[0].id
  description                  = "PostgreSQL: the database's group"
  ip_protocol                  = "tcp"
  from_port                    = local.net.database_port
  to_port                      = local.net.database_port
  referenced_security_group_id = local.net.database_security_group_id
  tags                         = var.tags
}

resource "aws_vpc_security_group_egress_rule" "browser_database_cidr" {
  for_each          = local.net.database_security_group_id == null && length(aws_security_group.browser) > 0 ? toset(local.database_cidr_blocks) : toset([])
  security_group_id = aws_security_group.browser[0].id
  description       = "PostgreSQL: where the database is"
  ip_protocol       = "tcp"
  from_port         = local.net.database_port
  to_port           = local.net.database_port
  cidr_ipv4         = each.key
  tags              = var.tags
}
