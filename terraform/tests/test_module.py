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
    assert {"name": "RUN_JOB_TASK_MEMORY_MB", "value": str(d["size"]["memory"])} in container["environment"]


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
        "heartbeat_url_env: REPORT_SALES_HEARTBEAT_URL\n"
    )
    model = load(tmp_path, jobs_dir=os.path.relpath(jobs_dir, EXAMPLE))
    jobs = declarations(jobs_dir)
    assert "report-sales" in by_key(model, "aws_ecs_task_definition")
    # Its check-in variable is listed (the output's precondition wants it in var.secrets).
    assert module_output(model, "heartbeat_variables") == {"report-sales": "REPORT_SALES_HEARTBEAT_URL"}
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
    (value,) = [o["value"] for o in model["output"] if o["__tfmeta"]["path"] == f"module.run_job.output.{name}"]
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
    # No window is written by hand: the alarm takes it from the derivation.
    monitoring = (ROOT / "terraform" / "monitoring.tf").read_text()
    assert re.search(r"^  period\s+= each\.value\.period$", monitoring, re.M)


def test_missed_run_windows_follow_any_declaration(tmp_path):
    jobs_dir = ROOT / "terraform" / "tests" / ".work" / "monitoring-jobs"
    shutil.rmtree(jobs_dir, ignore_errors=True)
    shutil.copytree(ROOT / "jobs", jobs_dir)
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
    for name, schedule in extra.items():
        (jobs_dir / f"{name}.yaml").write_text(
            f"name: {name}\n"
            f"description: Fixture {name}.\n"
            f"schedule: {schedule}\n"
            "size: {cpu: 256, memory: 512}\n"
            "architecture: arm64\n"
            "timeout_seconds: 60\n"
            "overlap: forbid\n"
            f"enabled: {'false' if name == 'paused' else 'true'}\n"
        )
    model = load(tmp_path, jobs_dir=os.path.relpath(jobs_dir, EXAMPLE))
    jobs = declarations(jobs_dir)
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
