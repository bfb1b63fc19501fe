"""Structural tests of the Terraform module, offline.

tfparse evaluates the configuration the way `terraform plan` would up to provider
calls: variables, locals, fileset/yamldecode of the job declarations, for_each. No
provider, no AWS. These tests assert, for every declaration in jobs/, the resources
Terraform would create and how they are scoped, and that a new declaration needs no .tf
edit. Run by scripts/check-infra.
"""

import json
import os
import pathlib
import re
import shutil

import pytest
import tfparse
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "terraform" / "examples" / "production"
PREFIX = "revendiste-prod"
REPO = "111122223333.dkr.ecr.sa-east-1.amazonaws.com/revendiste-prod-run-job"
DB_SECRET = "arn:aws:secretsmanager:sa-east-1:111122223333:secret:db-AbCdEf"
BACKEND_SECRET = "arn:aws:secretsmanager:sa-east-1:111122223333:secret:backend-XyZ123"


def declarations(jobs_dir):
    out = {}
    for f in sorted(pathlib.Path(jobs_dir).iterdir()):
        if f.suffix in (".yaml", ".yml", ".json"):
            d = yaml.safe_load(f.read_text())
            out[d["name"]] = d
    return out


def load(tmp_path, **overrides):
    values = {
        "image_tag": "abc123",
        "image_repository_url": REPO,
        "db_credentials_secret_arn": DB_SECRET,
        "backend_secrets_arn": BACKEND_SECRET,
        "feu_auth_url": "https://feu.example/auth/token",
        "feu_api_base_url": "https://feu.example/api",
        "feu_emisor_rut": "219999830019",
        **overrides,
    }
    tfvars = tmp_path / "test.tfvars"
    tfvars.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return tfparse.load_from_path(str(EXAMPLE), vars_paths=[os.path.relpath(tfvars, EXAMPLE)])


def by_key(model, kind):
    """Resources of a kind, by their for_each key (module.run_job.kind.name["key"])."""
    out = {}
    for r in model.get(kind, []):
        m = re.search(r'\["([^"]+)"\]$', r["__tfmeta"]["path"])
        out[m.group(1) if m else r["__tfmeta"]["path"]] = r
    return out


def single(model, kind):
    items = model.get(kind, [])
    assert len(items) == 1, f"{kind}: {len(items)}"
    return items[0]


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    return load(tmp_path_factory.mktemp("prod"))


def check_job(model, name, d, scheduler=False):
    task = by_key(model, "aws_ecs_task_definition")[name]
    assert task["family"] == f"{PREFIX}-{name}"
    assert task["cpu"] == str(d["size"]["cpu"]) and task["memory"] == str(d["size"]["memory"])
    assert task["runtime_platform"]["cpu_architecture"] == {"arm64": "ARM64", "x86_64": "X86_64"}[d["architecture"]]
    assert task["requires_compatibilities"] == ["FARGATE"] and task["network_mode"] == "awsvpc"
    assert task["volume"]["name"] == "tmp"
    (container,) = json.loads(task["container_definitions"])
    assert container["command"] == [name], "ENTRYPOINT run-job + command = `run-job <name>`"
    tag = "abc123-chromium" if d.get("image") == "chromium" else "abc123"
    assert container["image"] == f"{REPO}:{tag}"
    assert container["readonlyRootFilesystem"] == d.get("read_only_root_filesystem", True)
    assert container["mountPoints"] == [{"containerPath": "/tmp", "readOnly": False, "sourceVolume": "tmp"}]
    assert container["stopTimeout"] == 30
    log = container["logConfiguration"]
    assert log["logDriver"] == "awslogs"
    group = f"/ecs/{PREFIX}/run-job/{name}"
    assert log["options"]["awslogs-group"] == group
    assert log["options"]["awslogs-stream-prefix"] == name
    logs = by_key(model, "aws_cloudwatch_log_group")[name]
    assert logs["name"] == group and logs["retention_in_days"] == 7
    assert {"name": "RUN_JOB_LOG_FORMAT", "value": "json"} in container["environment"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["DB_CREDENTIALS_JSON"] == DB_SECRET
    env = {e["name"]: e["value"] for e in container["environment"]}
    if env.get("DATABASE_SSLMODE") == "verify-full":
        # rustls trusts only public roots: the RDS bundle must be named, and the image ships it.
        docker = (ROOT / "Dockerfile").read_text()
        assert env["DATABASE_SSLROOTCERT"] in docker
    assert not any("PASSWORD" in e["name"] or "SECRET" in e["name"] for e in container["environment"])

    state = "ENABLED" if d["enabled"] else "DISABLED"
    if scheduler:
        s = by_key(model, "aws_scheduler_schedule")[name]
        assert s["schedule_expression"] == d["schedule"] and s["state"] == state
        assert s["schedule_expression_timezone"] == "UTC"
        ecs = s["target"]["ecs_parameters"]
        target = s["target"]
    else:
        rule = by_key(model, "aws_cloudwatch_event_rule")[name]
        assert rule["name"] == f"{PREFIX}-{name}"
        assert rule["schedule_expression"] == d["schedule"] and rule["state"] == state
        target = by_key(model, "aws_cloudwatch_event_target")[name]
        assert target["rule"] == rule["name"]
        ecs = target["ecs_target"]
    assert ecs["task_count"] == 1
    assert ecs["group"] == f"run-job:{name}"
    assert ecs["network_configuration"]["assign_public_ip"] is True
    assert ecs["capacity_provider_strategy"]["capacity_provider"] == "FARGATE_SPOT"
    assert target["retry_policy"]["maximum_retry_attempts"] == 3
    assert target["dead_letter_config"]["arn"] == single(model, "aws_sqs_queue")["id"]
    assert {"name": "RUN_JOB_TRIGGER", "value": "eventbridge"} in container["environment"]


def test_every_declaration_gets_its_task_definition_log_group_and_rule(prod):
    jobs = declarations(ROOT / "jobs")
    assert jobs, "jobs/ has declarations"
    assert set(by_key(prod, "aws_ecs_task_definition")) == set(jobs)
    assert set(by_key(prod, "aws_cloudwatch_log_group")) == set(jobs)
    for name, d in jobs.items():
        check_job(prod, name, d)
    assert "aws_scheduler_schedule" not in prod


def test_a_new_declaration_needs_no_tf_edit(tmp_path):
    # Inside the tree tfparse reads (it resolves paths below the configuration's root).
    jobs_dir = ROOT / "terraform" / "tests" / ".work" / "jobs"
    shutil.rmtree(jobs_dir, ignore_errors=True)
    shutil.copytree(ROOT / "jobs", jobs_dir)
    (jobs_dir / "report-sales.yaml").write_text(
        "name: report-sales\n"
        "description: Nightly sales report.\n"
        "schedule: cron(30 3 * * ? *)\n"
        "size: {cpu: 1024, memory: 2048}\n"
        "architecture: x86_64\n"
        "timeout_seconds: 900\n"
        "overlap: forbid\n"
        "enabled: false\n"
        "image: chromium\n"
        "read_only_root_filesystem: false\n"
    )
    model = load(tmp_path, jobs_dir=os.path.relpath(jobs_dir, EXAMPLE))
    jobs = declarations(jobs_dir)
    assert "report-sales" in by_key(model, "aws_ecs_task_definition")
    for name, d in jobs.items():
        check_job(model, name, d)


def test_the_scheduler_variant_schedules_every_job_with_a_time_zone(tmp_path):
    model = load(tmp_path, use_scheduler=True)
    jobs = declarations(ROOT / "jobs")
    assert set(by_key(model, "aws_scheduler_schedule")) == set(jobs)
    assert "aws_cloudwatch_event_target" not in model or set(by_key(model, "aws_cloudwatch_event_target")) <= {"failed", "not_started"}
    for name, d in jobs.items():
        check_job(model, name, d, scheduler=True)


def statements_all(model):
    for doc in model["aws_iam_policy_document"]:
        st = doc.get("statement")
        for s in st if isinstance(st, list) else [st]:
            if s:
                yield s


def statements(model, sid):
    for s in statements_all(model):
        if s.get("sid") == sid:
            return s
    raise AssertionError(f"no statement {sid}")


def test_iam_is_least_privilege(prod):
    roles = {r["name"]: r["id"] for r in prod["aws_iam_role"]}
    execution, task = roles[f"{PREFIX}-run-job-execution"], roles[f"{PREFIX}-run-job-task"]
    cluster = single(prod, "aws_ecs_cluster")["id"]

    run = statements(prod, "RunTheseTaskDefinitions")
    assert run["actions"] == ["ecs:RunTask"]
    assert run["condition"]["test"] == "ArnEquals" and run["condition"]["variable"] == "ecs:cluster"
    assert run["condition"]["values"] == [cluster]
    iam_tf = (ROOT / "terraform" / "iam.tf").read_text()
    assert 'resources = [for t in aws_ecs_task_definition.job : "${t.arn_without_revision}:*"]' in iam_tf

    passrole = statements(prod, "PassTheTwoTaskRoles")
    assert passrole["actions"] == ["iam:PassRole"]
    assert sorted(passrole["resources"]) == sorted([execution, task])
    assert passrole["condition"]["variable"] == "iam:PassedToService"
    assert passrole["condition"]["values"] == ["ecs-tasks.amazonaws.com"]

    secrets = statements(prod, "ReadGivenSecrets")
    assert secrets["actions"] == ["secretsmanager:GetSecretValue"]
    assert sorted(secrets["resources"]) == sorted([DB_SECRET, BACKEND_SECRET]), "JSON keys stripped, nothing else"
    logs = statements(prod, "WriteLogs")
    assert logs["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert all(r.endswith(":*") for r in logs["resources"])
    pull = statements(prod, "PullImage")
    assert "ecr:BatchGetImage" in pull["actions"] and pull["resources"] != ["*"]
    # No bucket access given: the task role has no policy at all.
    assert not [p for p in prod["aws_iam_role_policy"] if p["name"] == "run-job-task"]


def test_bucket_access_is_limited_to_the_given_prefixes(tmp_path):
    module = ROOT / "terraform"
    tfvars = tmp_path / "module.tfvars"
    tfvars.write_text(
        'name_prefix = "t"\nimage_tag = "x"\n'
        f'image_repository_url = "{REPO}"\n'
        'bucket_access = [{ bucket = "revendiste-images", prefixes = ["events/", "venues/"], write = true },\n'
        '                 { bucket = "revendiste-private", prefixes = ["invoices/"] }]\n'
    )
    model = tfparse.load_from_path(str(module), vars_paths=[os.path.relpath(tfvars, module)])
    objects = [s for s in statements_all(model) if (s.get("sid") or "").startswith("Objects")]
    lists = [s for s in statements_all(model) if (s.get("sid") or "").startswith("List")]
    assert [(s["actions"], [r.rsplit(":::", 1)[1] for r in s["resources"]]) for s in objects] == [
        (["s3:GetObject", "s3:PutObject"], ["revendiste-images/events/*", "revendiste-images/venues/*"]),
        (["s3:GetObject"], ["revendiste-private/invoices/*"]),
    ]
    assert [(s["condition"]["variable"], s["condition"]["values"]) for s in lists] == [
        ("s3:prefix", ["events/*", "venues/*"]),
        ("s3:prefix", ["invoices/*"]),
    ]
    assert [p for p in model["aws_iam_role_policy"] if p["name"] == "run-job-task"]


def test_failures_reach_the_alerts_topic(prod):
    rules = {r["name"]: json.loads(r["event_pattern"]) for r in prod["aws_cloudwatch_event_rule"] if r.get("event_pattern")}
    failed = rules[f"{PREFIX}-run-job-failed"]["detail"]
    assert failed["containers"]["exitCode"] == [{"anything-but": 0}]
    assert failed["group"] == [{"prefix": "run-job:"}] and failed["lastStatus"] == ["STOPPED"]
    not_started = rules[f"{PREFIX}-run-job-not-started"]["detail"]
    assert not_started["stopCode"] == ["TaskFailedToStart"]
    topic_resource = single(prod, "aws_sns_topic")
    topic = topic_resource["id"]
    key = single(prod, "aws_kms_key")
    assert topic_resource["kms_master_key_id"] == key["id"], "a key EventBridge may use, not alias/aws/sns"
    assert key["enable_key_rotation"] is True
    # The key policy names the account (unknown offline), so it is checked as written.
    alerting = (ROOT / "terraform" / "alerting.tf").read_text()
    publishers = alerting.split('Sid       = "PublishersEncrypt"', 1)[1].split("}", 2)
    assert 'Service = ["events.amazonaws.com", "cloudwatch.amazonaws.com"]' in "".join(publishers[:2])
    alert_targets = [t for t in prod["aws_cloudwatch_event_target"] if t.get("target_id") == "sns"]
    assert len(alert_targets) == 2 and all(t["arn"] == topic for t in alert_targets)
    alarm = single(prod, "aws_cloudwatch_metric_alarm")
    assert alarm["metric_name"] == "ApproximateNumberOfMessagesVisible" and alarm["alarm_actions"] == [topic]


def test_the_dockerfile_runs_what_terraform_and_the_jobs_expect():
    docker = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", docker, re.M)
    assert {"slim", "chromium"} <= set(stages)
    # `image: slim | chromium` in a declaration names a Dockerfile target.
    rust = (ROOT / "src" / "declarations.rs").read_text()
    assert re.search(r"pub enum Image \{\s*#\[default\]\s*Slim,\s*Chromium,\s*\}", rust)
    entry = re.findall(r"^ENTRYPOINT (.+)$", docker, re.M)
    assert entry == ['["/usr/bin/tini", "--", "/usr/local/bin/run-job"]'], "tini as PID 1, then run-job"
    users = re.findall(r"^USER (\S+)$", docker, re.M)
    assert users[-1] == "10001:10001", "the final image runs as a non-root numeric user"
    chromium_stage = docker.split("AS chromium", 1)[1]
    assert re.search(r"chromium=\d", chromium_stage), "Debian's Chromium, pinned"
    assert "ENV SCRAPER_CHROMIUM_PATH=/usr/lib/chromium/chromium" in chromium_stage
    assert "--features" not in docker.split("AS builder", 1)[1].split("FROM", 1)[0], "no test or sandbox features"
    # arm64 is cross-compiled on the build machine, not compiled under emulation.
    assert "FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS chef" in docker
    assert '--target "$triple"' in docker
