"""Structural tests of the Terraform module, offline.

tfparse evaluates the configuration the way `terraform plan` would up to provider
calls: variables, locals, fileset/yamldecode of the job declarations, for_each. No
provider, no AWS. These tests assert, for every declaration in jobs/, the resources
Terraform would create and how they are scoped, and that a new declaration needs no .tf
edit. Run by scripts/check-infra.
"""

import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import subprocess

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


# The module reads its account, region and partition in context.tf only; the tests put
# this stand-in in its place, so every ARN and aws:SourceAccount condition built from them
# is evaluated and checked (tfparse cannot call the provider's data sources).
ACCOUNT = "111122223333"
REGION = "sa-east-1"
STAND_IN_CONTEXT = f"""
locals {{
  region             = "{REGION}"
  account_id         = "{ACCOUNT}"
  partition          = "aws"
  availability_zones = ["{REGION}a", "{REGION}b", "{REGION}c"]
}}
"""
VPC = "vpc-0a1b2c3d4e5f60718"
SUBNETS = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
DB_SG = "sg-0ddddddddddddddd1"
EXISTING_NETWORK = {"vpc_id": VPC, "subnet_ids": SUBNETS, "database_security_group_id": DB_SG}


def make_tree(tmp_path, extra_jobs=None):
    """A copy of terraform/ (stand-in context) and jobs/, with more declarations if given."""
    root = tmp_path / "tree"
    shutil.rmtree(root, ignore_errors=True)
    module = root / "terraform"
    module.mkdir(parents=True)
    for f in (ROOT / "terraform").glob("*.tf"):
        shutil.copy(f, module / f.name)
    (module / "context.tf").write_text(STAND_IN_CONTEXT)
    shutil.copytree(EXAMPLE, module / "examples" / "production")
    shutil.copytree(ROOT / "jobs", root / "jobs")
    for name, text in (extra_jobs or {}).items():
        (root / "jobs" / f"{name}.yaml").write_text(text)
    return root


def tfvars_text(values):
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def load(tmp_path, extra_jobs=None, **overrides):
    """The production example evaluated over the stand-in tree; `None` drops a variable."""
    values = {
        "image_tag": "abc123",
        "image_repository_url": REPO,
        "db_credentials_secret_arn": DB_SECRET,
        "backend_secrets_arn": BACKEND_SECRET,
        "feu_auth_url": "https://feu.example/auth/token",
        "feu_api_base_url": "https://feu.example/api",
        "feu_emisor_rut": "219999830019",
        "r2_account_id": "0123456789abcdef0123456789abcdef",
        "whatsapp_phone_number_id": "106540352242922",
        "vapid_public_key": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
        **EXISTING_NETWORK,
        **overrides,
    }
    values = {k: v for k, v in values.items() if v is not None}
    root = make_tree(tmp_path, extra_jobs)
    example = root / "terraform" / "examples" / "production"
    tfvars = example / "test.tfvars"
    tfvars.write_text(tfvars_text(values))
    model = tfparse.load_from_path(str(example), vars_paths=["test.tfvars"])
    model["__jobs_dir"] = root / "jobs"
    return model


def load_module(tmp_path, text):
    """The module alone over the stand-in tree, with these tfvars."""
    module = make_tree(tmp_path) / "terraform"
    (module / "test.tfvars").write_text(text)
    return tfparse.load_from_path(str(module), vars_paths=["test.tfvars"])


def by_key(model, kind, name=None):
    """Resources of a kind, by their for_each key (module.run_job.kind.name["key"]). With
    `job`: a job's, by job; with `tick`: a shared task's, by group. Both are kind.job,
    a shared task's under tick-<group>, the group its task definition's SharedTask tag."""
    groups = {
        f"tick-{t['tags']['SharedTask']}": t["tags"]["SharedTask"]
        for t in model.get("aws_ecs_task_definition", [])
        if isinstance(t.get("tags"), dict) and "SharedTask" in t["tags"]
    }
    out = {}
    for r in model.get(kind, []):
        if name is not None and f"{kind}.job[" not in r["__tfmeta"]["path"]:
            continue
        m = re.search(r'\["([^"]+)"\]$', r["__tfmeta"]["path"])
        key = m.group(1) if m else r["__tfmeta"]["path"]
        if name == "tick" and key in groups:
            out[groups[key]] = r
        elif name != "tick" and (name is None or key not in groups):
            out[key] = r
    return out


def single(model, kind):
    items = model.get(kind, [])
    assert len(items) == 1, f"{kind}: {len(items)}"
    return items[0]


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    return load(tmp_path_factory.mktemp("prod"))


# What the runner reads for every job (src/config.rs: RUNNER_SECRETS, RUNNER_ENVIRONMENT),
# read from the Rust source so that the three lists cannot drift apart.
CONFIG_RS = (ROOT / "src" / "config.rs").read_text()


def rust_list(name):
    body = re.search(rf"pub(?:\(crate\))? const {name}: &\[&str\] =\s*&\[(.*?)\];", CONFIG_RS, re.S).group(1)
    return re.findall(r'"([A-Z0-9_]+)"', body)


RUNNER_SECRETS = rust_list("RUNNER_SECRETS")
RUNNER_ENVIRONMENT = rust_list("RUNNER_ENVIRONMENT")
MODULE_ENVIRONMENT = {"RUN_JOB_LOG_FORMAT", "RUN_JOB_TRIGGER", "RUN_JOB_TASK_MEMORY_MB"}


def module_inputs(model):
    """The module block's evaluated arguments (what the example passes)."""
    module = single(model, "module")
    return {"secrets": module.get("secrets") or {}, "environment": module.get("environment") or {}}


def reads(d):
    r = d.get("reads") or {}
    return (r.get("secrets") or [], r.get("optional_secrets") or [], r.get("environment") or [])


def expected_secrets(d, given):
    """Name => ARN a job's task should receive: its declared secrets, the optional and
    the runner's ones that were given, its check-in URL; computed here from the YAML."""
    required, optional, _ = reads(d)
    names = set(required) | {n for n in optional + RUNNER_SECRETS if n in given}
    if d.get("heartbeat_url_env"):
        names.add(d["heartbeat_url_env"])
    return {n: given[n] for n in names if n in given}


def expected_environment(d, given):
    _, _, environment = reads(d)
    return {n for n in given if n in environment or n in RUNNER_ENVIRONMENT} | MODULE_ENVIRONMENT


def container_of(model, name, kind="job"):
    (container,) = json.loads(by_key(model, "aws_ecs_task_definition", kind)[name]["container_definitions"])
    return container


def shares(d):
    return d.get("shares_task")


def check_job(model, name, d, scheduler=False):
    task = by_key(model, "aws_ecs_task_definition", "job")[name]
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
    logs = by_key(model, "aws_cloudwatch_log_group", "job")[name]
    assert logs["name"] == group and logs["retention_in_days"] == 7
    assert {"name": "RUN_JOB_LOG_FORMAT", "value": "json"} in container["environment"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["DB_CREDENTIALS_JSON"] == DB_SECRET
    given = module_inputs(model)
    assert secrets == expected_secrets(d, given["secrets"]), name
    assert {e["name"] for e in container["environment"]} == expected_environment(d, given["environment"]), name
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    assert "add" not in container["linuxParameters"]["capabilities"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    if env.get("DATABASE_SSLMODE") == "verify-full":
        # rustls trusts only public roots: the RDS bundle must be named, and the image ships it.
        docker = (ROOT / "Dockerfile").read_text()
        assert env["DATABASE_SSLROOTCERT"] in docker
    assert not any("PASSWORD" in e["name"] or "SECRET" in e["name"] for e in container["environment"])

    assert {"name": "RUN_JOB_TASK_MEMORY_MB", "value": str(d["size"]["memory"])} in container["environment"]
    assert {"name": "RUN_JOB_TRIGGER", "value": "eventbridge"} in container["environment"]

    if shares(d):
        # Its group's schedule starts it: no rule or schedule of its own, only the task
        # definition, for runs by hand.
        for kind in ("aws_scheduler_schedule", "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target"):
            assert name not in by_key(model, kind, "job"), (kind, name)
        return
    state = "ENABLED" if d["enabled"] else "DISABLED"
    if scheduler:
        s = by_key(model, "aws_scheduler_schedule", "job")[name]
        assert s["schedule_expression"] == d["schedule"] and s["state"] == state
        assert s["schedule_expression_timezone"] == "UTC"
        ecs = s["target"]["ecs_parameters"]
        target = s["target"]
    else:
        rule = by_key(model, "aws_cloudwatch_event_rule", "job")[name]
        assert rule["name"] == f"{PREFIX}-{name}"
        assert rule["schedule_expression"] == d["schedule"] and rule["state"] == state
        target = by_key(model, "aws_cloudwatch_event_target", "job")[name]
        assert target["rule"] == rule["name"]
        ecs = target["ecs_target"]
    assert ecs["task_count"] == 1
    assert ecs["group"] == f"run-job:{name}"
    assert ecs["network_configuration"]["assign_public_ip"] is True
    assert ecs["capacity_provider_strategy"]["capacity_provider"] == "FARGATE_SPOT"
    assert target["retry_policy"]["maximum_retry_attempts"] == 3
    assert target["dead_letter_config"]["arn"] == single(model, "aws_sqs_queue")["id"]


def test_every_declaration_gets_its_task_definition_log_group_and_rule_unless_it_shares(prod):
    jobs = declarations(ROOT / "jobs")
    assert jobs, "jobs/ has declarations"
    assert set(by_key(prod, "aws_ecs_task_definition", "job")) == set(jobs)
    assert set(by_key(prod, "aws_cloudwatch_log_group", "job")) == set(jobs)
    for name, d in jobs.items():
        check_job(prod, name, d)
    assert set(by_key(prod, "aws_cloudwatch_event_rule", "job")) == {n for n, d in jobs.items() if not shares(d)}
    assert "scraping" in by_key(prod, "aws_cloudwatch_event_rule", "job"), "scraping does not share"
    assert "aws_scheduler_schedule" not in prod


def test_a_new_declaration_needs_no_tf_edit(tmp_path):
    extra = {
        "report-sales": "name: report-sales\n"
        "description: Nightly sales report.\n"
        "schedule: cron(30 3 * * ? *)\n"
        "size: {cpu: 1024, memory: 2048}\n"
        "architecture: x86_64\n"
        "timeout_seconds: 900\n"
        "overlap: forbid\n"
        "enabled: false\n"
        "image: chromium\n"
        "read_only_root_filesystem: false\n"
        "heartbeat_url_env: REPORT_SALES_HEARTBEAT_URL\n"
    }
    model = load(tmp_path, extra_jobs=extra)
    jobs = declarations(model["__jobs_dir"])
    assert "report-sales" in by_key(model, "aws_ecs_task_definition")
    # Its check-in variable is listed (the output's precondition wants it in var.secrets).
    assert module_output(model, "heartbeat_variables") == {"report-sales": "REPORT_SALES_HEARTBEAT_URL"}
    for name, d in jobs.items():
        check_job(model, name, d)


def test_the_scheduler_variant_schedules_every_job_with_a_time_zone(tmp_path):
    model = load(tmp_path, use_scheduler=True)
    jobs = declarations(ROOT / "jobs")
    assert set(by_key(model, "aws_scheduler_schedule", "job")) == {n for n, d in jobs.items() if not shares(d)}
    assert set(by_key(model, "aws_scheduler_schedule", "tick")) == {d["shares_task"] for d in jobs.values() if shares(d)}
    assert "aws_cloudwatch_event_target" not in model or set(by_key(model, "aws_cloudwatch_event_target")) <= {"failed", "not_started"}
    for name, d in jobs.items():
        check_job(model, name, d, scheduler=True)
    for group in by_key(model, "aws_scheduler_schedule", "tick"):
        check_group(model, group, declarations(ROOT / "jobs"), scheduler=True)


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
    # Every revision of each job's and each shared task's family, in this account and
    # region, and nothing else.
    jobs = declarations(ROOT / "jobs")
    families = [f"{PREFIX}-{name}" for name in jobs] + [f"{PREFIX}-tick-light"]
    assert sorted(run["resources"]) == sorted(
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:*" for family in families
    )

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
    assert sorted(logs["resources"]) == sorted(
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/{PREFIX}/run-job/{name}:*" for name in list(jobs) + ["tick-light"]
    )
    pull = statements(prod, "PullImage")
    assert "ecr:BatchGetImage" in pull["actions"]
    assert pull["resources"] == [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{PREFIX}-run-job"]
    assert "ReadGivenParameters" not in {s.get("sid") for s in statements_all(prod)}
    assert "DecryptGivenSecrets" not in {s.get("sid") for s in statements_all(prod)}
    # Both roles may be assumed only by their service on behalf of this account.
    for sid_less in prod["aws_iam_policy_document"]:
        st = sid_less.get("statement")
        for s in st if isinstance(st, list) else [st]:
            if s and s.get("actions") == ["sts:AssumeRole"]:
                assert s["condition"]["variable"] == "aws:SourceAccount"
                assert s["condition"]["values"] == [ACCOUNT]
    # No bucket access given: the task role has no policy at all.
    assert not [p for p in prod["aws_iam_role_policy"] if p["name"] == "run-job-task"]


def test_bucket_access_is_limited_to_the_given_prefixes(tmp_path):
    model = load_module(
        tmp_path,
        'name_prefix = "t"\nimage_tag = "x"\n'
        f'image_repository_url = "{REPO}"\n'
        "network = { create_vpc = true }\n"
        'bucket_access = [{ bucket = "revendiste-images", prefixes = ["events/", "venues/"], write = true },\n'
        '                 { bucket = "revendiste-private", prefixes = ["invoices/"] }]\n',
    )
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
    # The key policy as evaluated for the stand-in account: the account administers it,
    # EventBridge and CloudWatch alarms may encrypt with it, nobody else.
    policy = {st["Sid"]: st for st in json.loads(key["policy"])["Statement"]}
    assert set(policy) == {"AccountAdministers", "PublishersEncrypt"}
    assert policy["AccountAdministers"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert policy["PublishersEncrypt"]["Principal"] == {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]}
    assert policy["PublishersEncrypt"]["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    alert_targets = [t for t in prod["aws_cloudwatch_event_target"] if t.get("target_id") == "sns"]
    assert len(alert_targets) == 2 and all(t["arn"] == topic for t in alert_targets)
    alarm = by_key(prod, "aws_cloudwatch_metric_alarm")["module.run_job.aws_cloudwatch_metric_alarm.dead_letters"]
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
    assert re.search(r"chromium-headless-shell=\d", chromium_stage), "Debian's headless shell, pinned"
    assert "ENV SCRAPER_CHROMIUM_PATH=/usr/lib/chromium/chromium-headless-shell" in chromium_stage
    assert "--features" not in docker.split("AS builder", 1)[1].split("FROM", 1)[0], "no test or sandbox features"
    # arm64 is cross-compiled on the build machine, not compiled under emulation.
    assert "FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS chef" in docker
    assert '--target "$triple"' in docker


# Missed-run alarms per schedule, computed by hand: the longest gap between fires (s),
# then W = max(2 × gap, 600 s) as (period, evaluation_periods); over a day, whole days.
MISSED_RUN = {
    "cron(0/5 * * * ? *)": (300, 600, 1),  # W = 600 s: the 10-minute floor
    "cron(0/2 * * * ? *)": (120, 600, 1),
    "cron(0/30 * * * ? *)": (1800, 3600, 1),
    "cron(0 * * * ? *)": (3600, 7200, 1),
    "rate(1 day)": (86400, 86400, 2),
    "cron(0 9 ? * MON-FRI *)": (3 * 86400, 86400, 6),  # Friday 09:00 to Monday 09:00
    # 15 min in the day, 795 min overnight, 3,675 min over the weekend: W = 441,000 s.
    "cron(0/15 8-18 ? * MON-FRI *)": (3675 * 60, 86400, 6),
    # Hours 20..23, 0..2 every day: 02:00 to 20:00 is 1,080 min, W = 129,600 s.
    "cron(0 20-2 * * ? *)": (1080 * 60, 86400, 2),
    # Minutes 20 and 0 (20-2 wraps, step 40), hours 22..2, FRI-MON: Monday 23:40 to
    # Friday 00:00 is 4,360 min, W = 523,200 s.
    "cron(20-2/40 22-2 ? * fri-mon *)": (4360 * 60, 86400, 7),
}
UNSUPPORTED = "day-of-month/month/L/W/# schedules are not supported by the missed-run alarm"


def module_output(model, name):
    found = [o["value"] for o in model["output"] if o["__tfmeta"]["path"] == f"module.run_job.output.{name}"]
    (value,) = found or [o["value"] for o in model["output"] if o["__tfmeta"]["path"] == f"output.{name}"]
    return value


def check_missed_run_alarms(model, jobs):
    alarms = by_key(model, "aws_cloudwatch_metric_alarm")
    missed = {k: a for k, a in alarms.items() if not k.startswith("module.")}
    without = module_output(model, "jobs_without_missed_run_alarm")
    assert set(missed) | set(without) == set(jobs) and not set(missed) & set(without)
    topic = single(model, "aws_sns_topic")["id"]
    for name, d in jobs.items():
        if not d["enabled"]:
            assert name not in missed and without[name].startswith("disabled")
            continue
        if name in without:
            continue
        a = missed[name]
        assert a["alarm_name"] == f"{PREFIX}-run-job-missed-{name}"
        assert (a["namespace"], a["metric_name"], a["dimensions"]) == ("RunJob", "Duration", {"job": name})
        assert (a["statistic"], a["comparison_operator"], a["threshold"]) == ("SampleCount", "LessThanThreshold", 1)
        assert a["treat_missing_data"] == "breaching"
        assert a["alarm_actions"] == [topic] and a["ok_actions"] == [topic]
        gap, period, evaluation_periods = MISSED_RUN[d["schedule"]]
        assert (a["period"], a["evaluation_periods"]) == (period, evaluation_periods), name
        assert f"leaves at most {gap} s between fires" in a["alarm_description"], name
        assert a["datapoints_to_alarm"] == a["evaluation_periods"], "every period of the window without a run"
        # CloudWatch's limits on what an alarm may evaluate.
        assert a["period"] % 60 == 0 and a["period"] * a["evaluation_periods"] <= 7 * 86400
        assert a["period"] >= 3600 or a["period"] * a["evaluation_periods"] <= 86400
    return missed, without


def test_every_enabled_job_has_a_missed_run_alarm_on_its_derived_window(prod):
    jobs = declarations(ROOT / "jobs")
    missed, without = check_missed_run_alarms(prod, jobs)
    assert set(missed) == {n for n, d in jobs.items() if d["enabled"]}, without
    windows = module_output(prod, "missed_run_alarm_windows")
    assert windows == {n: MISSED_RUN[d["schedule"]][1] * MISSED_RUN[d["schedule"]][2] for n, d in jobs.items()}
    # No window is written by hand: each alarm's evaluated period and periods are the
    # derivation's (the output), job by job.
    alarms = by_key(prod, "aws_cloudwatch_metric_alarm")
    assert {n: alarms[n]["period"] * alarms[n]["evaluation_periods"] for n in missed} == windows


def test_missed_run_windows_follow_any_declaration(tmp_path):
    extra = {
        "daily": "rate(1 day)",
        "weekday-mornings": "cron(0 9 ? * MON-FRI *)",
        "office-hours": "cron(0/15 8-18 ? * MON-FRI *)",
        "nights": "cron(0 20-2 * * ? *)",
        "long-weekends": "cron(20-2/40 22-2 ? * fri-mon *)",
        "weekly": "rate(7 days)",
        "sundays": "cron(0 3 ? * SUN *)",
        "monthly": "cron(0 12 1 * ? *)",
        "last-friday": "cron(0 3 ? * 6L *)",
        "paused": "cron(0/5 * * * ? *)",
    }
    files = {
        name: f"name: {name}\n"
        f"description: Fixture {name}.\n"
        f"schedule: {schedule}\n"
        "size: {cpu: 256, memory: 512}\n"
        "architecture: arm64\n"
        "timeout_seconds: 60\n"
        "overlap: forbid\n"
        f"enabled: {'false' if name == 'paused' else 'true'}\n"
        for name, schedule in extra.items()
    }
    model = load(tmp_path, extra_jobs=files)
    jobs = declarations(model["__jobs_dir"])
    missed, without = check_missed_run_alarms(model, jobs)
    assert set(without) == {"weekly", "sundays", "monthly", "last-friday", "paused"}
    assert "paused" not in missed
    for name in ("weekly", "sundays"):  # 14 days: longer than an alarm can look back
        assert without[name].startswith("the window (1209600 s") and "7 days" in without[name]
    assert without["monthly"] == without["last-friday"] == UNSUPPORTED
    assert set(missed) == set(jobs) - set(without)
    # The dashboard shows every declaration, the disabled one too.
    headers = [w["properties"]["markdown"] for w in json.loads(single(model, "aws_cloudwatch_dashboard")["dashboard_body"])["widgets"] if w["type"] == "text"]
    assert len(headers) == len(jobs) and any(h.startswith("### paused ") and "disabled" in h for h in headers)


def test_one_dashboard_graphs_every_job(prod):
    jobs = declarations(ROOT / "jobs")
    dashboard = single(prod, "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == f"{PREFIX}-run-job"
    widgets = json.loads(dashboard["dashboard_body"])["widgets"]
    region = by_key(prod, "aws_ecs_task_definition")
    region = json.loads(next(iter(region.values()))["container_definitions"])[0]["logConfiguration"]["options"]["awslogs-region"]
    graphs = {}
    for w in widgets:
        if w["type"] == "metric":
            assert w["properties"]["region"] == region
            for m in w["properties"]["metrics"]:
                namespace, metric, dimension, job, options = m
                assert (namespace, dimension) == ("RunJob", "job")
                graphs.setdefault(job, set()).add((metric, options["stat"]))
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24
    assert set(graphs) == set(jobs)
    for name in jobs:
        assert graphs[name] == {
            ("Duration", "SampleCount"),
            ("Failed", "Sum"),
            ("Skipped", "Sum"),
            ("Duration", "p50"),
            ("Duration", "p95"),
            ("ItemsProcessed", "Sum"),
            ("ItemsFailed", "Sum"),
        }
        assert any(w["type"] == "text" and f"### {name} " in w["properties"]["markdown"] for w in widgets)
    (status,) = [w for w in widgets if w["type"] == "alarm"]
    missed = [a["id"] for k, a in by_key(prod, "aws_cloudwatch_metric_alarm").items() if not k.startswith("module.")]
    assert sorted(status["properties"]["alarms"]) == sorted(missed)


def source_account(policy_json):
    (st,) = json.loads(policy_json)["Statement"]
    return st["Condition"]["StringEquals"]["aws:SourceAccount"]


def test_resource_policies_admit_only_this_account(prod):
    assert source_account(single(prod, "aws_sqs_queue_policy")["policy"]) == ACCOUNT
    assert source_account(single(prod, "aws_sns_topic_policy")["policy"]) == ACCOUNT


def targets(model):
    """Every schedule's network configuration (rules or Scheduler)."""
    out = [t["ecs_target"]["network_configuration"] for t in model.get("aws_cloudwatch_event_target", []) if t.get("ecs_target")]
    out += [s["target"]["ecs_parameters"]["network_configuration"] for s in model.get("aws_scheduler_schedule", [])]
    return out


def task_groups(model):
    """Job, or tick-<group> for a shared task => its schedule's network configuration
    (rules or Scheduler)."""
    out = {}
    for kind, prefix in (("job", ""), ("tick", "tick-")):
        for k, t in by_key(model, "aws_cloudwatch_event_target", kind).items():
            out[prefix + k] = t["ecs_target"]["network_configuration"]
        for k, s in by_key(model, "aws_scheduler_schedule", kind).items():
            out[prefix + k] = s["target"]["ecs_parameters"]["network_configuration"]
    return out


def scheduled_image(jobs, key):
    """The image of what a schedule starts: a job, or tick-<group> (its members')."""
    if key in jobs:
        return jobs[key].get("image", "slim")
    (image,) = {d.get("image", "slim") for d in jobs.values() if "tick-" + str(shares(d)) == key}
    return image


def jobs_group(model):
    (group,) = [g for g in model["aws_security_group"] if g["name"] == f"{PREFIX}-jobs"]
    return group


def browser_group(model):
    (group,) = [g for g in model["aws_security_group"] if g["name"] == f"{PREFIX}-jobs-browser"]
    return group


def egress_rules(model, group):
    """(protocol, port, destination) of every egress rule of a group; ports are single."""
    out = set()
    for r in model.get("aws_vpc_security_group_egress_rule", []):
        if r["security_group_id"] != group["id"]:
            continue
        assert r["from_port"] == r["to_port"]
        found = [v for v in (r.get("cidr_ipv4"), r.get("cidr_ipv6"), r.get("referenced_security_group_id"), r.get("prefix_list_id")) if isinstance(v, str)]
        assert len(found) == 1, r
        out.add((r["ip_protocol"], r["from_port"], found[0]))
    return out


def network_validations(model):
    (network,) = [v for v in model["variable"] if v["__tfmeta"]["path"] == "module.run_job.variable.network"]
    return network["validation"]


def refused(model):
    return [v["error_message"] for v in network_validations(model) if v["condition"] is not True]


def test_next_to_the_marketplace_the_tasks_use_its_vpc_subnets_and_database_rule(prod):
    assert refused(prod) == []
    for kind in ("aws_vpc", "aws_subnet", "aws_internet_gateway", "aws_route_table", "aws_nat_gateway", "aws_default_security_group", "aws_vpc_endpoint"):
        assert kind not in prod, f"{kind} created next to the marketplace"
    jobs = declarations(ROOT / "jobs")
    group, browser = jobs_group(prod), browser_group(prod)
    assert group["vpc_id"] == VPC and "ingress" not in group
    assert browser["vpc_id"] == VPC and "ingress" not in browser
    configs = task_groups(prod)
    assert set(configs) == {n for n, d in jobs.items() if not shares(d)} | {"tick-light"}
    for name, c in configs.items():
        assert c["subnets"] == SUBNETS
        want = browser["id"] if scheduled_image(jobs, name) == "chromium" else group["id"]
        assert c["security_groups"] == [want], name
        assert c["assign_public_ip"] is True
    # The database's group admits both groups on its port, and nothing else.
    rules = prod["aws_vpc_security_group_ingress_rule"]
    assert sorted((r["security_group_id"], r["referenced_security_group_id"], r["ip_protocol"], r["from_port"], r["to_port"]) for r in rules) == sorted(
        (DB_SG, g["id"], "tcp", 5432, 5432) for g in (group, browser)
    )
    assert module_output(prod, "subnet_ids") == SUBNETS
    assert module_output(prod, "cost_command") == "run-job cost --log-retention-days 7"


def test_extra_groups_and_a_private_subnet_without_a_public_ip(tmp_path):
    model = load(tmp_path, extra_security_group_ids=["sg-0eeeeeeeeeeeeeee2"], assign_public_ip=False, use_scheduler=True)
    assert refused(model) == []
    group, browser = jobs_group(model)["id"], browser_group(model)["id"]
    jobs = declarations(ROOT / "jobs")
    for name, c in task_groups(model).items():
        own = browser if scheduled_image(jobs, name) == "chromium" else group
        assert c["security_groups"] == [own, "sg-0eeeeeeeeeeeeeee2"], name
        assert c["assign_public_ip"] is False and c["subnets"] == SUBNETS


def test_a_fresh_account_creates_its_own_vpc_with_the_default_group_emptied(tmp_path):
    model = load(tmp_path, vpc_id=None, subnet_ids=None, database_security_group_id=None, create_vpc=True)
    assert refused(model) == []
    vpc = single(model, "aws_vpc")
    assert vpc["cidr_block"] == "10.40.0.0/16" and vpc["assign_generated_ipv6_cidr_block"] is False
    default = single(model, "aws_default_security_group")
    assert default["vpc_id"] == vpc["id"]
    assert "ingress" not in default and "egress" not in default, "the default group keeps no rule"
    subnets = by_key(model, "aws_subnet")
    assert len(subnets) == 2
    assert sorted(s["availability_zone"] for s in subnets.values()) == [f"{REGION}a", f"{REGION}b"]
    assert all(s["vpc_id"] == vpc["id"] and s["map_public_ip_on_launch"] is False for s in subnets.values())
    assert jobs_group(model)["vpc_id"] == browser_group(model)["vpc_id"] == vpc["id"]
    ids = sorted(s["id"] for s in subnets.values())
    for c in targets(model):
        assert sorted(c["subnets"]) == ids and c["assign_public_ip"] is True
    assert "aws_vpc_security_group_ingress_rule" not in model
    # No database group given: the browser group reaches the database port in the VPC only.
    assert egress_rules(model, browser_group(model)) == {
        ("tcp", 443, "0.0.0.0/0"), ("tcp", 80, "0.0.0.0/0"), ("tcp", 5432, "10.40.0.0/16"),
    }
    assert "aws_nat_gateway" not in model and "aws_vpc_endpoint" not in model


def test_the_zones_are_those_that_need_no_opt_in():
    # The real module (not the stand-in): its data source as tfparse reads it.
    model = tfparse.load_from_path(str(ROOT / "terraform"))
    zones = single(model, "aws_availability_zones")
    assert zones["state"] == "available"
    assert zones["filter"]["name"] == "opt-in-status" and zones["filter"]["values"] == ["opt-in-not-required"]


def test_nat_gateway_endpoints_and_ipv6_in_a_created_vpc(tmp_path):
    model = load(
        tmp_path, vpc_id=None, subnet_ids=None, database_security_group_id=None,
        create_vpc=True, assign_public_ip=False, nat_gateway=True, vpc_endpoints=True, ipv6=True,
    )
    assert refused(model) == []
    vpc = single(model, "aws_vpc")
    assert vpc["assign_generated_ipv6_cidr_block"] is True
    subnets = model["aws_subnet"]
    private = [s for s in subnets if "private" in s["__tfmeta"]["path"]]
    assert len(private) == 2 and all(s["assign_ipv6_address_on_creation"] is True for s in private)
    for c in targets(model):
        assert sorted(c["subnets"]) == sorted(s["id"] for s in private)
        assert c["assign_public_ip"] is False
    nat = single(model, "aws_nat_gateway")
    routes = {r["__tfmeta"]["path"].rsplit(".", 1)[-1].split("[")[0]: r for r in model["aws_route"]}
    assert routes["private_ipv4"]["nat_gateway_id"] == nat["id"]
    egress_only = single(model, "aws_egress_only_internet_gateway")
    assert routes["private_ipv6"]["egress_only_gateway_id"] == egress_only["id"]
    assert routes["private_ipv6"]["destination_ipv6_cidr_block"] == "::/0"
    endpoints = {e["service_name"]: e for e in model["aws_vpc_endpoint"]}
    assert set(endpoints) == {f"com.amazonaws.{REGION}.{s}" for s in ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "s3")}
    assert endpoints[f"com.amazonaws.{REGION}.s3"]["vpc_endpoint_type"] == "Gateway"
    assert module_output(model, "cost_command") == "run-job cost --nat --endpoints 5 --zones 2 --log-retention-days 7"
    assert jobs_group(model)["egress"]["ipv6_cidr_blocks"] == ["::/0"]
    # Dual-stack: the browser group reaches the web over IPv6 too, the database over IPv4.
    browser = browser_group(model)
    assert egress_rules(model, browser) == {
        ("tcp", 443, "0.0.0.0/0"), ("tcp", 80, "0.0.0.0/0"), ("tcp", 443, "::/0"), ("tcp", 80, "::/0"),
        ("tcp", 5432, "10.40.0.0/16"),
    }
    # ECS pulls the image, reads the secrets and writes the logs through the task's own
    # interface: the endpoints admit both groups.
    endpoint_group = [g for g in model["aws_security_group"] if g["name"] == f"{PREFIX}-jobs-endpoints"][0]
    admitted = sorted(
        (r["referenced_security_group_id"], r["from_port"])
        for r in model["aws_vpc_security_group_ingress_rule"]
        if r["security_group_id"] == endpoint_group["id"]
    )
    assert admitted == sorted([(jobs_group(model)["id"], 443), (browser["id"], 443)])


def test_a_network_that_cannot_work_is_refused_naming_what_to_set(tmp_path):
    # Subnets without their VPC: the jobs' group would land in the default VPC.
    msgs = refused(load(tmp_path, vpc_id=None))
    assert len(msgs) == 1 and "network.subnet_ids" in msgs[0] and "network.vpc_id" in msgs[0], msgs
    # A VPC without subnets: the tasks would have nowhere to run.
    msgs = refused(load(tmp_path, subnet_ids=None))
    assert len(msgs) == 1 and "network.vpc_id" in msgs[0] and "network.subnet_ids" in msgs[0], msgs
    # Nothing at all: no silent new VPC that cannot reach the database.
    msgs = refused(load(tmp_path, vpc_id=None, subnet_ids=None))
    assert len(msgs) == 1 and "network.create_vpc" in msgs[0], msgs
    # Both a given and a created VPC.
    assert any("choose" in m for m in refused(load(tmp_path, create_vpc=True)))
    # No public IP and no NAT gateway in a created VPC.
    msgs = refused(load(tmp_path, vpc_id=None, subnet_ids=None, create_vpc=True, assign_public_ip=False))
    assert len(msgs) == 1 and "nat_gateway" in msgs[0], msgs
    # Ids of the wrong kind.
    msgs = refused(load(tmp_path, vpc_id="subnet-0aaaaaaaaaaaaaaa1"))
    assert msgs == ["network.vpc_id is not a VPC id (vpc-0123456789abcdef0)."], msgs
    msgs = refused(load(tmp_path, database_security_group_id="vpc-0a1b2c3d4e5f60718"))
    assert len(msgs) == 1 and "database_security_group_id" in msgs[0], msgs


def variable_validations(model, name):
    # The module's variable: inside the example, or the module loaded alone.
    found = [v for v in model["variable"] if v["__tfmeta"]["path"] == f"module.run_job.variable.{name}"]
    (v,) = found or [v for v in model["variable"] if v["__tfmeta"]["path"] == f"variable.{name}"]
    found = v.get("validation", [])
    return [x["error_message"] for x in (found if isinstance(found, list) else [found]) if x["condition"] is not True]


def test_secrets_from_ssm_and_kms_encrypted_secrets_get_exactly_their_grants(tmp_path):
    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/revendiste/prod/db-credentials"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    model = load(tmp_path, db_credentials_secret_arn=parameter, secrets_kms_key_arns=[key])
    assert variable_validations(model, "secrets") == []
    assert variable_validations(model, "secrets_kms_key_arns") == []
    (container,) = json.loads(next(iter(by_key(model, "aws_ecs_task_definition").values()))["container_definitions"])
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]}["DB_CREDENTIALS_JSON"] == parameter
    sm = statements(model, "ReadGivenSecrets")
    assert sm["resources"] == [BACKEND_SECRET], "the backend secret once, its JSON keys stripped"
    ssm = statements(model, "ReadGivenParameters")
    assert (ssm["actions"], ssm["resources"]) == (["ssm:GetParameters"], [parameter])
    kms = statements(model, "DecryptGivenSecrets")
    assert (kms["actions"], kms["resources"]) == (["kms:Decrypt"], [key])
    assert kms["condition"]["variable"] == "kms:ViaService"
    assert kms["condition"]["values"] == [f"secretsmanager.{REGION}.amazonaws.com", f"ssm.{REGION}.amazonaws.com"]


def test_secret_references_and_kms_keys_of_the_wrong_shape_are_refused(tmp_path):
    model = load(
        tmp_path,
        db_credentials_secret_arn=f"arn:aws:s3:::bucket/db.json",
        secrets_kms_key_arns=[f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/secrets"],
    )
    assert any("SSM parameter ARN" in m for m in variable_validations(model, "secrets"))
    assert any("not aliases" in m for m in variable_validations(model, "secrets_kms_key_arns"))


def test_container_insights_is_off_unless_asked_for(prod, tmp_path):
    cluster = single(prod, "aws_ecs_cluster")
    assert (cluster["setting"]["name"], cluster["setting"]["value"]) == ("containerInsights", "disabled")
    on = single(load(tmp_path, container_insights="enabled"), "aws_ecs_cluster")
    assert on["setting"]["value"] == "enabled"
    # A created cluster with it on: `run-job cost` is told to price it.
    assert module_output(load(tmp_path, container_insights="enabled"), "cost_command") == "run-job cost --container-insights --log-retention-days 7"
    refused_value = load(tmp_path, container_insights="yes")
    assert variable_validations(refused_value, "container_insights") == ["container_insights must be disabled, enabled or enhanced."]


def test_the_example_tfvars_sets_every_variable_a_plan_would_ask_for(tmp_path):
    """`terraform plan` asks for each root variable without a default: the example file
    docs/deploying.md copies to terraform.tfvars must set them all, and evaluate cleanly."""
    example = tfparse.load_from_path(str(EXAMPLE))
    required = {v["__tfmeta"]["label"] for v in example["variable"] if v["__tfmeta"]["path"].startswith("variable.") and "default" not in v}
    text = (EXAMPLE / "terraform.tfvars.example").read_text()
    given = set(re.findall(r"^([a-z0-9_]+)\s*=", text, re.M))
    assert required and required <= given, f"not in terraform.tfvars.example: {required - given}"
    # Every required variable of the module is passed by the example.
    root = make_tree(tmp_path)
    prod_dir = root / "terraform" / "examples" / "production"
    (prod_dir / "terraform.tfvars").write_text(text)
    # Terraform reads terraform.tfvars by itself; tfparse is told to.
    model = tfparse.load_from_path(str(prod_dir), vars_paths=["terraform.tfvars"])
    module = single(model, "module")
    assert module["network"]["vpc_id"] == "vpc-<id>" and module["network"]["subnet_ids"] == ["subnet-<id-a>", "subnet-<id-b>"]
    assert module["network"]["database_security_group_id"] == "sg-<id>"
    for c in targets(model):
        assert c["subnets"] == ["subnet-<id-a>", "subnet-<id-b>"]


# ---------------------------------------------------------------------------------------
# Secrets and settings per job (issue 27): each task receives what its declaration reads.

PAYMENT_INVOICING_MESSAGING_PUSH = ("DLOCAL_", "FEU_", "RESEND_", "WHATSAPP_", "VAPID_")


def test_scraping_receives_no_payment_invoicing_messaging_or_push_key(prod):
    # The production example supplies every one of those keys (to the jobs that read them).
    given = module_inputs(prod)["secrets"]
    for prefix in PAYMENT_INVOICING_MESSAGING_PUSH:
        assert any(k.startswith(prefix) for k in list(given) + list(module_inputs(prod)["environment"])), prefix
    container = container_of(prod, "scraping")
    names = [s["name"] for s in container["secrets"]] + [e["name"] for e in container["environment"]]
    leaked = [n for n in names if n.startswith(PAYMENT_INVOICING_MESSAGING_PUSH)]
    assert leaked == [], leaked
    # And the jobs that do read them still get them.
    assert {"DLOCAL_API_KEY", "DLOCAL_SECRET_KEY"} <= {s["name"] for s in container_of(prod, "sync-payments")["secrets"]}
    assert {"FEU_USERNAME", "FEU_PASSWORD", "FEU_REFRESH_TOKEN"} <= {s["name"] for s in container_of(prod, "invoices")["secrets"]}
    assert {"RESEND_API_KEY", "WHATSAPP_ACCESS_TOKEN", "VAPID_PRIVATE_KEY"} <= {s["name"] for s in container_of(prod, "notifications")["secrets"]}


def test_each_task_receives_exactly_its_declarations_secrets(prod):
    jobs = declarations(ROOT / "jobs")
    given = module_inputs(prod)["secrets"]
    for name, d in jobs.items():
        required, optional, _ = reads(d)
        got = {s["name"]: s["valueFrom"] for s in container_of(prod, name)["secrets"]}
        want = set(required) | {n for n in optional if n in given} | {n for n in RUNNER_SECRETS if n in given}
        assert set(got) == want, name
        assert all(got[n] == given[n] for n in got), name
    # The production tfvars example supplies every required secret of every enabled job.
    for name, t in by_key(prod, "aws_ecs_task_definition").items():
        assert t["lifecycle"]["precondition"]["condition"] is True, t["lifecycle"]["precondition"]["error_message"]


SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:backend-XyZ123"


def module_tfvars(secrets, environment=None, network="{ create_vpc = true }"):
    return (
        'name_prefix = "revendiste-prod"\nimage_tag = "abc123"\n'
        f'image_repository_url = "{REPO}"\nnetwork = {network}\n'
        f"secrets = {json.dumps(secrets)}\nenvironment = {json.dumps(environment or {})}\n"
    )


def task_preconditions(model):
    return {k: t["lifecycle"]["precondition"] for k, t in by_key(model, "aws_ecs_task_definition").items()}


def test_runner_secrets_optional_ones_and_the_check_in_url_reach_only_when_given(tmp_path):
    extra = {
        "report-sales": "name: report-sales\ndescription: Nightly sales report.\n"
        "schedule: cron(30 3 * * ? *)\nsize: {cpu: 256, memory: 512}\narchitecture: arm64\n"
        "timeout_seconds: 900\noverlap: forbid\nenabled: true\n"
        "heartbeat_url_env: REPORT_SALES_HEARTBEAT_URL\n"
        "reads:\n  secrets: [SALES_API_KEY]\n  optional_secrets: [SALES_SIGNING_KEY, SALES_WEBHOOK_TOKEN]\n"
        "  environment: [SALES_REGION]\n",
    }
    root = make_tree(tmp_path, extra)
    secrets = {
        "DATABASE_URL": f"{SECRET}:DATABASE_URL::",  # a runner secret: every task
        "SALES_API_KEY": f"{SECRET}:SALES_API_KEY::",
        "SALES_SIGNING_KEY": f"{SECRET}:SALES_SIGNING_KEY::",  # optional, given
        "REPORT_SALES_HEARTBEAT_URL": f"{SECRET}:HEARTBEAT::",
        "DLOCAL_API_KEY": f"{SECRET}:DLOCAL_API_KEY::",
        "DLOCAL_SECRET_KEY": f"{SECRET}:DLOCAL_SECRET_KEY::",
        "RESEND_API_KEY": f"{SECRET}:RESEND_API_KEY::",
    }
    (root / "terraform" / "test.tfvars").write_text(module_tfvars(secrets))
    model = tfparse.load_from_path(str(root / "terraform"), vars_paths=["test.tfvars"])
    report = {s["name"]: s["valueFrom"] for s in container_of(model, "report-sales")["secrets"]}
    assert report == {k: secrets[k] for k in ("DATABASE_URL", "SALES_API_KEY", "SALES_SIGNING_KEY", "REPORT_SALES_HEARTBEAT_URL")}
    # Neither DB_CREDENTIALS_JSON nor POSTGRES_PASSWORD was given: no task names them.
    jobs = declarations(root / "jobs")
    for name, d in jobs.items():
        got = {s["name"] for s in container_of(model, name)["secrets"]}
        assert got == set(expected_secrets(d, secrets)), name
        assert "DATABASE_URL" in got and "REPORT_SALES_HEARTBEAT_URL" not in got or name == "report-sales", name
    assert all(p["condition"] is True for p in task_preconditions(model).values())


def test_a_missing_required_secret_is_refused_naming_the_job_and_the_variable(tmp_path):
    # A disabled job may lack its required secret until it is enabled.
    extra = {
        "paused-export": "name: paused-export\ndescription: Paused export.\n"
        "schedule: cron(0 4 * * ? *)\nsize: {cpu: 256, memory: 512}\narchitecture: arm64\n"
        "timeout_seconds: 60\noverlap: forbid\nenabled: false\n"
        "reads:\n  secrets: [EXPORT_TOKEN]\n",
    }
    root = make_tree(tmp_path, extra)
    secrets = {"DB_CREDENTIALS_JSON": DB_SECRET, "DLOCAL_API_KEY": f"{SECRET}:DLOCAL_API_KEY::"}
    (root / "terraform" / "test.tfvars").write_text(module_tfvars(secrets))
    model = tfparse.load_from_path(str(root / "terraform"), vars_paths=["test.tfvars"])
    checks = task_preconditions(model)
    failed = {k: p["error_message"] for k, p in checks.items() if p["condition"] is not True}
    assert set(failed) == {"notifications", "sync-payments"}, failed
    assert failed["notifications"].startswith("Job notifications declares reads.secrets")
    assert "RESEND_API_KEY" in failed["notifications"] and "var.secrets" in failed["notifications"]
    assert "DLOCAL_SECRET_KEY" in failed["sync-payments"] and "DLOCAL_API_KEY" not in failed["sync-payments"]
    assert checks["paused-export"]["condition"] is True


def output_preconditions(model, name):
    found = [o for o in model["output"] if o["__tfmeta"]["path"] == f"module.run_job.output.{name}"]
    (out,) = found or [o for o in model["output"] if o["__tfmeta"]["path"] == f"output.{name}"]
    found = out.get("precondition", [])
    return [p["error_message"] for p in (found if isinstance(found, list) else [found]) if p["condition"] is not True]


def test_environment_is_filtered_to_what_each_job_and_the_runner_read(tmp_path):
    environment = {
        "DLOCAL_BASE_URL": "https://api.dlocalgo.com",  # sync-payments
        "FEU_AUTH_URL": "https://feu.example/auth",  # invoices
        "SCRAPER_PLATFORMS": "entraste",  # scraping
        "APP_BASE_URL": "https://revendiste.com",  # several
        "POSTGRES_HOST": "db.internal",  # the runner: every job
        "RUST_LOG": "info",
        "RUN_JOB_LOG_FORMAT": "text",  # the module's own wins
    }
    secrets = {"DB_CREDENTIALS_JSON": DB_SECRET, **{k: f"{SECRET}:{k}::" for k in ("DLOCAL_API_KEY", "DLOCAL_SECRET_KEY", "RESEND_API_KEY")}}
    model = load_module(tmp_path, module_tfvars(secrets, environment))
    jobs = declarations(ROOT / "jobs")
    for name, d in jobs.items():
        env = {e["name"]: e["value"] for e in container_of(model, name)["environment"]}
        assert set(env) == expected_environment(d, environment), name
        assert env["POSTGRES_HOST"] == "db.internal" and env["RUST_LOG"] == "info"
        assert env["RUN_JOB_LOG_FORMAT"] == "json" and env["RUN_JOB_TRIGGER"] == "eventbridge"
        assert env["RUN_JOB_TASK_MEMORY_MB"] == str(d["size"]["memory"])
    assert "DLOCAL_BASE_URL" in {e["name"] for e in container_of(model, "sync-payments")["environment"]}
    scraping = {e["name"] for e in container_of(model, "scraping")["environment"]}
    assert "SCRAPER_PLATFORMS" in scraping and not {"DLOCAL_BASE_URL", "FEU_AUTH_URL"} & scraping
    assert output_preconditions(model, "task_variables") == []
    assert module_output(model, "task_variables")["sync-payments"]["secrets"] == ["DB_CREDENTIALS_JSON", "DLOCAL_API_KEY", "DLOCAL_SECRET_KEY"]


def test_a_name_no_job_reads_is_refused_rather_than_dropped(tmp_path):
    secrets = {
        "DB_CREDENTIALS_JSON": DB_SECRET,
        **{k: f"{SECRET}:{k}::" for k in ("DLOCAL_API_KEY", "DLOCAL_SECRET_KEY", "RESEND_API_KEY")},
        "DLOCAL_SECRT_KEY": f"{SECRET}:typo::",
        # A plain setting given as a secret: its declaration lists it under environment.
        "R2_ACCOUNT_ID": f"{SECRET}:R2_ACCOUNT_ID::",
    }
    model = load_module(tmp_path, module_tfvars(secrets, {"SCRAPPER_PLATFORMS": "entraste"}))
    messages = output_preconditions(model, "task_variables")
    assert len(messages) == 2, messages
    assert messages[0].startswith("var.secrets names") and messages[0].endswith(": DLOCAL_SECRT_KEY, R2_ACCOUNT_ID. Remove them, or list them in the declaration of the job that reads them.")
    assert messages[1].startswith("var.environment names") and "SCRAPPER_PLATFORMS" in messages[1]
    for name in declarations(ROOT / "jobs"):
        names = {s["name"] for s in container_of(model, name)["secrets"]}
        assert not {"DLOCAL_SECRT_KEY", "R2_ACCOUNT_ID"} & names


def test_the_runners_variables_are_src_configs():
    text = (ROOT / "terraform" / "main.tf").read_text()
    for local, names in (("runner_secrets", RUNNER_SECRETS), ("runner_environment", RUNNER_ENVIRONMENT)):
        body = re.search(rf"^  {local}\s*=\s*\[(.*?)\]", text, re.M | re.S).group(1)
        assert re.findall(r'"([A-Z0-9_]+)"', body) == names, local
    assert len(RUNNER_SECRETS) == 3 and "DATABASE_SSLROOTCERT" in RUNNER_ENVIRONMENT


def test_the_fresh_account_example_supplies_every_required_secret(tmp_path):
    root = make_tree(tmp_path)
    example = root / "terraform" / "examples" / "fresh-account"
    shutil.copytree(ROOT / "terraform" / "examples" / "fresh-account", example)
    (example / "test.tfvars").write_text(
        'image_tag = "abc123"\n'
        f'db_credentials_secret_arn = "{DB_SECRET}"\nbackend_secrets_arn = "{BACKEND_SECRET}"\n'
    )
    model = tfparse.load_from_path(str(example), vars_paths=["test.tfvars"])
    failed = [p["error_message"] for p in task_preconditions(model).values() if p["condition"] is not True]
    assert failed == []
    assert output_preconditions(model, "task_variables") == []
    received = module_output(model, "task_variables")
    for name, d in declarations(ROOT / "jobs").items():
        required, _, _ = reads(d)
        assert set(required) <= set(received[name]["secrets"]), name


# ---------------------------------------------------------------------------------------
# The browser's network and the containers' capabilities (issue 27)


def test_the_browser_jobs_group_reaches_only_the_web_and_the_database(prod):
    browser = browser_group(prod)
    assert browser["description"].startswith("run-job tasks that run the browser")
    # No inline rules: those below are all the group has (Terraform drops AWS's default
    # allow-all egress from a group it creates).
    assert "ingress" not in browser and "egress" not in browser
    assert egress_rules(prod, browser) == {("tcp", 443, "0.0.0.0/0"), ("tcp", 80, "0.0.0.0/0"), ("tcp", 5432, DB_SG)}
    assert browser["lifecycle"]["precondition"]["condition"] is True
    # Which jobs carry it: those whose declaration runs the browser.
    jobs = declarations(ROOT / "jobs")
    browsing = {n for n, d in jobs.items() if d.get("image") == "chromium"}
    assert browsing == {"scraping"}
    groups = module_output(prod, "job_security_group_ids")
    assert {n for n, g in groups.items() if g == [browser["id"]]} == browsing
    assert {n for n, g in groups.items() if g == [jobs_group(prod)["id"]]} == set(jobs) - browsing


def test_the_browser_group_needs_to_know_where_the_database_is(tmp_path):
    secrets = {"DB_CREDENTIALS_JSON": DB_SECRET, **{k: f"{SECRET}:{k}::" for k in ("DLOCAL_API_KEY", "DLOCAL_SECRET_KEY", "RESEND_API_KEY")}}
    given_vpc = f'{{ vpc_id = "{VPC}", subnet_ids = {json.dumps(SUBNETS)} }}'
    model = load_module(tmp_path, module_tfvars(secrets, network=given_vpc))
    precondition = browser_group(model)["lifecycle"]["precondition"]
    assert precondition["condition"] is False
    assert "scraping" in precondition["error_message"] and "network.database_cidr_blocks" in precondition["error_message"]
    # Named CIDRs: the database port there, nothing else besides the web.
    with_cidrs = f'{{ vpc_id = "{VPC}", subnet_ids = {json.dumps(SUBNETS)}, database_cidr_blocks = ["10.0.20.0/24", "10.0.21.0/24"], database_port = 6432 }}'
    model = load_module(tmp_path, module_tfvars(secrets, network=with_cidrs))
    assert browser_group(model)["lifecycle"]["precondition"]["condition"] is True
    assert egress_rules(model, browser_group(model)) == {
        ("tcp", 443, "0.0.0.0/0"), ("tcp", 80, "0.0.0.0/0"), ("tcp", 6432, "10.0.20.0/24"), ("tcp", 6432, "10.0.21.0/24"),
    }
    assert variable_validations(model, "network") == []
    wrong = f'{{ vpc_id = "{VPC}", subnet_ids = {json.dumps(SUBNETS)}, database_cidr_blocks = ["db.internal"] }}'
    assert variable_validations(load_module(tmp_path, module_tfvars(secrets, network=wrong)), "network") == [
        "network.database_cidr_blocks must be IPv4 CIDRs (10.0.0.0/16)."
    ]


def test_every_container_drops_all_linux_capabilities(prod):
    for name in declarations(ROOT / "jobs"):
        container = container_of(prod, name)
        # Fargate accepts any drop and only SYS_PTRACE as an add; nothing is added, and
        # with drop ALL the container keeps exactly what add names (ECS's KernelCapabilities).
        assert container["linuxParameters"] == {"capabilities": {"drop": ["ALL"]}}, name
        assert container["command"] == [name]


# ---------------------------------------------------------------------------------------
# The image: the RDS CA bundle is checked against a SHA-256 given to the build (issue 27)


def rds_bundle_check():
    """The Dockerfile's RUN that follows the bundle's ADD, as /bin/sh would run it."""
    docker = (ROOT / "Dockerfile").read_text()
    slim = docker.split("AS slim", 1)[1].split("\nFROM ", 1)[0]
    add = re.search(r"^ADD \$\{RDS_CA_BUNDLE_URL\} (\S+)$", slim, re.M)
    assert add and add.group(1) == "/etc/ssl/certs/rds-global-bundle.pem"
    run = re.search(r"^RUN ((?:.*\\\n)*.*)$", slim[add.end():], re.M).group(1)
    return slim, run.replace("\\\n", "")


def test_the_rds_ca_bundle_is_verified_by_its_sha256_at_build_time(tmp_path):
    slim, run = rds_bundle_check()
    # The digest is a build argument without a default: no build passes by leaving it out.
    assert re.search(r"^ARG RDS_CA_BUNDLE_SHA256$", slim, re.M)
    assert "sha256sum -c" in run
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n")
    (tmp_path / "t").mkdir()
    local = (
        run.replace("/etc/ssl/certs/rds-global-bundle.pem", str(bundle))
        .replace("/tmp/rds-global-bundle.sha256", str(tmp_path / "bundle.sha256"))
        .replace("chmod 1777 /tmp", f"chmod 1777 {tmp_path / 't'}")
    )
    # Run here, it may touch nothing but what the replacements point into tmp_path.
    assert set(re.findall(r"(?<![\w$}])/[\w./-]+", run)) == {
        "/etc/ssl/certs/rds-global-bundle.pem", "/tmp/rds-global-bundle.sha256", "/tmp",
    }, run

    def build(digest):
        env = {"PATH": os.environ["PATH"]}
        if digest is not None:
            env["RDS_CA_BUNDLE_SHA256"] = digest
        return subprocess.run(["sh", "-c", local], env=env, capture_output=True, text=True)

    good = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert build(good).returncode == 0
    for digest in (None, "", "abc", good.upper(), hashlib.sha256(b"another bundle").hexdigest()):
        result = build(digest)
        assert result.returncode != 0, digest
    assert "RDS_CA_BUNDLE_SHA256" in build(None).stderr
    # The offline build gives its stand-in certificate's digest.
    offline = (ROOT / "scripts" / "build-images-offline").read_text()
    assert '--build-arg RDS_CA_BUNDLE_SHA256="$rds_sha256"' in offline
    assert 'rds_sha256=$(sha256sum "$rds/global-bundle.pem"' in offline


# ---------------------------------------------------------------------------------------
# Shared tasks (issue 24): jobs declaring `shares_task: <group>` run in one task per tick.
# The derivation is computed here from the YAML by brute force (every fire of a week),
# independently of the HCL.

FARGATE_MEMORY = {256: [512, 1024, 2048], 512: [1024, 2048, 3072, 4096], 1024: list(range(2048, 8193, 1024))}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def cron_field(text, lo, size):
    """The values of a cron field: lists of `*`, `a`, `a-b` (wrapping), with `/n`."""
    out = set()
    for element in text.upper().split(","):
        for name, number in DAYS.items():
            element = element.replace(name, str(number))
        base, _, step = element.partition("/")
        if base in ("*", "?"):
            start, span = lo, size
        elif "-" in base:
            a, b = map(int, base.split("-"))
            start, span = a, (b - a) % size + 1
        else:
            start, span = int(base), (lo + size - int(base) if step else 1)
        out |= {lo + (start - lo + k) % size for k in range(0, span, int(step or 1))}
    return out


def week_fires(schedule):
    """Minutes of the week (0 = Sunday 00:00) a cron() fires at; None for a rate()."""
    m = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", schedule)
    if not m:
        return None
    minutes, hours, _, _, days, _ = m.groups()
    return sorted(
        (d - 1) * 1440 + h * 60 + mi
        for d in cron_field(days, 1, 7) for h in cron_field(hours, 0, 24) for mi in cron_field(minutes, 0, 60)
    )


def least_gap(schedule):
    fires = week_fires(schedule)
    if fires is None:
        n, unit = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", schedule).groups()
        return int(n) * {"minute": 1, "hour": 60, "day": 1440}[unit]
    return min((b - a) % 10080 or 10080 for a, b in zip(fires, fires[1:] + fires[:1]))


def derive(jobs, group):
    """What the module must derive for a group, from the declarations."""
    members = sorted(n for n, d in jobs.items() if d.get("shares_task") == group)
    cpu = max(jobs[m]["size"]["cpu"] for m in members)
    need = max(max(jobs[m]["size"]["memory"] for m in members), math.ceil(1.5 * sum(jobs[m]["peak_memory_mib"] for m in members)))
    memory = next(v for v in FARGATE_MEMORY[cpu] if v >= need)
    period = min(least_gap(jobs[m]["schedule"]) for m in members)
    assert 60 % period == 0
    delay = {}
    for m in members:
        fires = week_fires(jobs[m]["schedule"])
        delay[m] = period - 1 if fires is None else max((period - f % period) % period for f in fires)
    return {
        "members": members, "cpu": cpu, "memory": memory, "period_minutes": period,
        "schedule_expression": "cron(0 * * * ? *)" if period == 60 else f"cron(0/{period} * * * ? *)",
        "max_delay_minutes": delay, "enabled": any(jobs[m]["enabled"] for m in members),
    }


def shared(model, group):
    return module_output(model, "shared_tasks")[group]


def check_group(model, group, jobs, scheduler=False):
    want = derive(jobs, group)
    out = shared(model, group)
    assert {k: out[k] for k in want} == want, group
    task = by_key(model, "aws_ecs_task_definition", "tick")[group]
    assert task["lifecycle"]["precondition"]["condition"] is True, task["lifecycle"]["precondition"]["error_message"]
    assert task["family"] == f"{PREFIX}-tick-{group}" and out["task_definition_arn"] == task["id"]
    assert (task["cpu"], task["memory"]) == (str(want["cpu"]), str(want["memory"]))
    members = [jobs[m] for m in want["members"]]
    (arch,) = {d["architecture"] for d in members}
    assert task["runtime_platform"]["cpu_architecture"] == {"arm64": "ARM64", "x86_64": "X86_64"}[arch]
    assert task["requires_compatibilities"] == ["FARGATE"] and task["network_mode"] == "awsvpc"
    container = container_of(model, group, "tick")
    assert container["command"] == ["tick", group], "ENTRYPOINT run-job + command = `run-job tick <group>`"
    (image,) = {d.get("image", "slim") for d in members}
    assert container["image"] == f"{REPO}:abc123" + ("-chromium" if image == "chromium" else "")
    assert container["readonlyRootFilesystem"] == all(d.get("read_only_root_filesystem", True) for d in members)
    assert container["linuxParameters"] == {"capabilities": {"drop": ["ALL"]}}
    assert container["mountPoints"] == [{"containerPath": "/tmp", "readOnly": False, "sourceVolume": "tmp"}]
    assert container["stopTimeout"] == 30
    log = f"/ecs/{PREFIX}/run-job/tick-{group}"
    assert container["logConfiguration"]["options"]["awslogs-group"] == log == out["log_group"]
    assert container["logConfiguration"]["options"]["awslogs-stream-prefix"] == f"tick-{group}"
    assert by_key(model, "aws_cloudwatch_log_group", "tick")[group]["name"] == log
    # The members' secrets and settings, each as its own task definition receives it;
    # the memory the runner budgets from is the shared task's.
    secrets, environment = {}, {}
    for m in want["members"]:
        own = container_of(model, m)
        secrets.update({s["name"]: s["valueFrom"] for s in own["secrets"]})
        environment.update({e["name"]: e["value"] for e in own["environment"]})
    environment["RUN_JOB_TASK_MEMORY_MB"] = str(want["memory"])
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == secrets
    assert {e["name"]: e["value"] for e in container["environment"]} == environment
    assert environment["RUN_JOB_TRIGGER"] == "eventbridge"

    state = "ENABLED" if want["enabled"] else "DISABLED"
    if scheduler:
        s = by_key(model, "aws_scheduler_schedule", "tick")[group]
        assert s["schedule_expression_timezone"] == "UTC"
        target, ecs = s["target"], s["target"]["ecs_parameters"]
    else:
        s = by_key(model, "aws_cloudwatch_event_rule", "tick")[group]
        target = by_key(model, "aws_cloudwatch_event_target", "tick")[group]
        assert target["rule"] == s["name"]
        ecs = target["ecs_target"]
    assert s["name"] == out["schedule_name"] == f"{PREFIX}-tick-{group}"
    assert (s["schedule_expression"], s["state"]) == (want["schedule_expression"], state)
    assert ecs["task_definition_arn"] == task["id"] and ecs["task_count"] == 1
    # Under the task-state alerts' prefix (alerting.tf), so a failing tick is reported.
    assert ecs["group"] == f"run-job:tick-{group}"
    assert ecs["capacity_provider_strategy"]["capacity_provider"] == "FARGATE_SPOT"
    assert ecs["network_configuration"]["security_groups"] == module_output(model, "job_security_group_ids")[want["members"][0]]
    assert target["retry_policy"]["maximum_retry_attempts"] == 3
    assert target["dead_letter_config"]["arn"] == single(model, "aws_sqs_queue")["id"]
    return want


LIGHT = ["check-payout-hold-periods", "invoices", "notifications", "notify-upload-availability", "sync-payments"]


def test_the_light_jobs_share_one_task_of_the_derived_size_and_one_schedule(prod):
    jobs = declarations(ROOT / "jobs")
    assert sorted(n for n, d in jobs.items() if shares(d)) == LIGHT
    assert set(module_output(prod, "shared_tasks")) == {"light"}
    assert set(by_key(prod, "aws_ecs_task_definition", "tick")) == {"light"}
    assert set(by_key(prod, "aws_cloudwatch_event_rule", "tick")) == {"light"}
    want = check_group(prod, "light", jobs)
    # Every 2 minutes, notifications' and invoices' own cadence: they wait for nothing;
    # sync-payments (every 5) waits a minute at odd minutes; the hourly ones, none.
    assert (want["cpu"], want["period_minutes"], want["schedule_expression"]) == (256, 2, "cron(0/2 * * * ? *)")
    assert want["max_delay_minutes"] == {
        "check-payout-hold-periods": 0, "invoices": 0, "notifications": 0, "notify-upload-availability": 0, "sync-payments": 1,
    }
    # scraping keeps its own rule and task, and none of the light jobs' keys reach it.
    assert set(by_key(prod, "aws_cloudwatch_event_rule", "job")) == {"scraping"}
    assert not {s["name"] for s in container_of(prod, "light", "tick")["secrets"]} & {"GOOGLE_PLACES_API_KEY", "INDEXNOW_KEY"}
    # Missed-run alarms and the dashboard stay per job, and point at the shared task.
    alarms = by_key(prod, "aws_cloudwatch_metric_alarm")
    for name in LIGHT:
        assert alarms[name]["dimensions"] == {"job": name}
        assert f"the schedule {PREFIX}-tick-light is enabled" in alarms[name]["alarm_description"]
        assert f"group run-job:tick-light, and the log group /ecs/{PREFIX}/run-job/tick-light." in alarms[name]["alarm_description"]
    assert f"group run-job:scraping, and the log group /ecs/{PREFIX}/run-job/scraping." in alarms["scraping"]["alarm_description"]
    headers = [w["properties"]["markdown"] for w in json.loads(single(prod, "aws_cloudwatch_dashboard")["dashboard_body"])["widgets"] if w["type"] == "text"]
    assert sum("· shares task light ·" in h for h in headers) == len(LIGHT)


def declaration(name, schedule="cron(0/2 * * * ? *)", cpu=256, memory=512, extra=""):
    return (
        f"name: {name}\ndescription: Fixture {name}.\nschedule: {schedule}\n"
        f"size: {{cpu: {cpu}, memory: {memory}}}\narchitecture: arm64\n"
        f"timeout_seconds: 60\noverlap: forbid\nenabled: true\n{extra}"
    )


def with_peaks(peaks):
    """The real declarations of these jobs with their peak_memory_mib replaced."""
    out = {}
    for name, peak in peaks.items():
        text = (ROOT / "jobs" / f"{name}.yaml").read_text()
        out[name] = re.sub(r"^peak_memory_mib: .*$", f"peak_memory_mib: {peak}", text, flags=re.M)
    return out


@pytest.mark.parametrize("peaks, extra_peak, memory", [
    # Five members at 64 MiB: 1.5 × 320 = 480, under the smallest size for cpu 256.
    ([64] * 5, None, 512),
    # 1.5 × 341 = 511.5, rounded up to 512: still fits.
    ([64] * 5, 21, 512),
    # 1.5 × 342 = 513: the next valid size.
    ([64] * 5, 22, 1024),
    # 1.5 × 467 = 700.5: 1024.
    ([64] * 5, 147, 1024),
    # 1.5 × 1365 = 2047.5: 2048, the most cpu 256 can have.
    ([273] * 5, None, 2048),
])
def test_a_groups_memory_is_the_next_valid_size_above_what_its_members_need(tmp_path, peaks, extra_peak, memory):
    files = with_peaks(dict(zip(LIGHT, peaks)))
    if extra_peak is not None:
        files["render-receipts"] = declaration("render-receipts", extra=f"shares_task: light\npeak_memory_mib: {extra_peak}\n")
    model = load(tmp_path, extra_jobs=files)
    want = check_group(model, "light", declarations(model["__jobs_dir"]))
    assert (want["cpu"], want["memory"]) == (256, memory)


def test_a_groups_cpu_is_its_largest_members_and_its_memory_a_size_for_that_cpu(tmp_path):
    extra = {
        "export-a": declaration("export-a", "cron(0/10 * * * ? *)", 512, 1024, "shares_task: exports\npeak_memory_mib: 500\n"),
        "export-b": declaration("export-b", "cron(0/15 * * * ? *)", 256, 512, "shares_task: exports\npeak_memory_mib: 300\n"),
    }
    model = load(tmp_path, extra_jobs=extra)
    jobs = declarations(model["__jobs_dir"])
    want = check_group(model, "exports", jobs)
    # cpu 512; 1.5 × 800 = 1,200 MiB: 2048 (cpu 512 has 1024 to 4096 by 1024). The
    # period is the shorter of the members' own gaps, 10 minutes: export-b's :15 and :45
    # wait 5 minutes for the ticks at :20 and :50.
    assert (want["cpu"], want["memory"], want["period_minutes"]) == (512, 2048, 10)
    assert want["max_delay_minutes"] == {"export-a": 0, "export-b": 5}
    check_group(model, "light", jobs)
    assert set(by_key(model, "aws_cloudwatch_event_rule", "tick")) == {"light", "exports"}


def test_the_tick_period_is_the_shortest_gap_and_each_member_states_its_delay(tmp_path):
    extra = {
        # Minutes 0, 7, ..., 56: the shortest gap is 56 to the next hour's 0, 4 minutes.
        "every-seven": declaration("every-seven", "cron(0/7 * * * ? *)", extra="shares_task: mixed\npeak_memory_mib: 10\n"),
        "half-past": declaration("half-past", "cron(30 * * * ? *)", extra="shares_task: mixed\npeak_memory_mib: 10\n"),
        "office": declaration("office", "cron(0/20 8-18 ? * MON-FRI *)", extra="shares_task: mixed\npeak_memory_mib: 10\n"),
        "twenty": declaration("twenty", "rate(20 minutes)", extra="shares_task: mixed\npeak_memory_mib: 10\n"),
        # Hourly and a rate of an hour: one tick an hour.
        "hourly-a": declaration("hourly-a", "cron(0 * * * ? *)", extra="shares_task: hourly\npeak_memory_mib: 10\n"),
        "hourly-b": declaration("hourly-b", "rate(1 hour)", extra="shares_task: hourly\npeak_memory_mib: 10\n"),
        # Written out as null: no group, a rule of its own.
        "loner": declaration("loner", extra="shares_task: null\npeak_memory_mib: null\n"),
        # A group all of whose members are disabled has its schedule disabled.
        "paused": declaration("paused", extra="shares_task: paused\npeak_memory_mib: 10\n").replace("enabled: true", "enabled: false"),
    }
    model = load(tmp_path, extra_jobs=extra)
    jobs = declarations(model["__jobs_dir"])
    mixed = check_group(model, "mixed", jobs)
    assert (mixed["period_minutes"], mixed["schedule_expression"]) == (4, "cron(0/4 * * * ? *)")
    # :07 waits 1, :14 2, :21 3; :30 waits 2; a rate's phase is not fixed: P − 1.
    assert mixed["max_delay_minutes"] == {"every-seven": 3, "half-past": 2, "office": 0, "twenty": 3}
    hourly = check_group(model, "hourly", jobs)
    assert (hourly["period_minutes"], hourly["schedule_expression"]) == (60, "cron(0 * * * ? *)")
    assert by_key(model, "aws_cloudwatch_event_rule", "job")["loner"]["schedule_expression"] == "cron(0/2 * * * ? *)"
    assert set(module_output(model, "shared_tasks")) == {"light", "mixed", "hourly", "paused"}
    paused = check_group(model, "paused", jobs)
    assert paused["enabled"] is False and by_key(model, "aws_cloudwatch_event_rule", "tick")["paused"]["state"] == "DISABLED"
    # Each member keeps its own missed-run alarm on its own window.
    alarms = by_key(model, "aws_cloudwatch_metric_alarm")
    assert {"every-seven", "half-past", "office", "twenty", "hourly-a", "hourly-b"} <= set(alarms) and "paused" not in alarms


def refusal(model, group):
    check = by_key(model, "aws_ecs_task_definition", "tick")[group]["lifecycle"]["precondition"]
    assert check["condition"] is False, f"{group} was not refused"
    return check["error_message"]


def light_member(name, extra="", **size):
    return {name: declaration(name, extra="shares_task: light\n" + extra, **size)}


@pytest.mark.parametrize("extra, group, says", [
    (light_member("render-tickets", "peak_memory_mib: 64\nimage: chromium\n"), "light",
     ["its members differ in image", "render-tickets: chromium", "invoices: slim", "one task runs one image"]),
    (light_member("big-export", "peak_memory_mib: 64\n", cpu=2048, memory=4096), "light",
     ["job big-export is too large to share (cpu 2048, memory 4096; at most 1024 and 2048): a shared task costs every tick its size"]),
    (light_member("roomy", "peak_memory_mib: 64\n", cpu=256, memory=4096), "light", ["job roomy is too large to share"]),
    (light_member("unmeasured"), "light", ["job unmeasured lacks peak_memory_mib"]),
    (light_member("zero", "peak_memory_mib: 0\n"), "light", ["job zero lacks peak_memory_mib"]),
    ({"amd": declaration("amd", extra="shares_task: light\npeak_memory_mib: 64\n").replace("arm64", "x86_64")}, "light",
     ["its members differ in architecture", "amd: X86_64", "invoices: ARM64"]),
    ({"odd": declaration("odd", "rate(7 minutes)", extra="shares_task: odd\npeak_memory_mib: 10\n")}, "odd",
     ["its tick period, 7 minutes (the shortest gap between fires, of odd), does not divide 60"]),
    ({"daily": declaration("daily", "cron(0 3 * * ? *)", extra="shares_task: nightly\npeak_memory_mib: 10\n")}, "nightly",
     ["its tick period, 1440 minutes", "does not divide 60"]),
    ({"monthly": declaration("monthly", "cron(0 3 1 * ? *)", extra="shares_task: light\npeak_memory_mib: 10\n")}, "light",
     ["job monthly's schedule cron(0 3 1 * ? *) gives no tick period"]),
    ({"yearly": declaration("yearly", "cron(0/5 * * * ? 2027-2099)", extra="shares_task: light\npeak_memory_mib: 10\n")}, "light",
     ["job yearly's schedule cron(0/5 * * * ? 2027-2099) names years"]),
    ({n: declaration(n, extra=f"shares_task: heavy\npeak_memory_mib: 800\n") for n in ("heavy-a", "heavy-b")}, "heavy",
     ["no Fargate memory size for cpu 256 holds the 2400 MiB its members need"]),
    ({"bad-name": declaration("bad-name", extra="shares_task: Light_1\npeak_memory_mib: 10\n")}, "Light_1",
     ["its name must be a lowercase letter"]),
    ({"tick-solo": declaration("tick-solo"), "solo": declaration("solo", extra="shares_task: solo\npeak_memory_mib: 10\n")}, "solo",
     ["job tick-solo would have the same task family and log group"]),
])
def test_a_declaration_that_cannot_share_is_refused_naming_the_group_and_the_job(tmp_path, extra, group, says):
    model = load(tmp_path, extra_jobs=extra)
    message = refusal(model, group)
    members = sorted(n for n, d in declarations(model["__jobs_dir"]).items() if d.get("shares_task") == group)
    assert message.startswith(f"Shared task {group} (shares_task: {group} in {', '.join(members)}) is refused: "), message
    for part in says:
        assert part in message, message
    # Only that group is refused.
    for other, task in by_key(model, "aws_ecs_task_definition", "tick").items():
        if other != group:
            assert task["lifecycle"]["precondition"]["condition"] is True, task["lifecycle"]["precondition"]["error_message"]


def test_with_the_scheduler_a_shared_task_needs_utc(tmp_path):
    secrets = {"DB_CREDENTIALS_JSON": DB_SECRET, **{k: f"{SECRET}:{k}::" for k in ("DLOCAL_API_KEY", "DLOCAL_SECRET_KEY", "RESEND_API_KEY")}}
    text = module_tfvars(secrets) + 'use_scheduler = true\nschedule_timezone = "America/Montevideo"\n'
    model = load_module(tmp_path, text)
    assert "the tick reads its members' schedules in UTC, and schedule_timezone is America/Montevideo" in refusal(model, "light")
