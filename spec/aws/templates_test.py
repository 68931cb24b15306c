"""What each tier of ops/aws/ promises beyond the three-tier rules: the
addresses, NAT, HTTPS, the database, the registry, the tasks, the service,
scaling, alarms, the Learner Lab mode and the exports that join the stacks.

Checks that depend on a parameter look at the templates rendered for both
of its values (Stacks.render), as CloudFormation would see them. As in
three_tier_test, each check returns problems and BrokenOnPurpose proves that
each one notices the fault it exists for.
"""

import json
import re
import unittest
from datetime import date, timedelta

from cfn import TIERS, Stacks, broken_on_purpose, container, listed, only

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f0f0f0f-1111-2222-3333-444455556666"


def target_name(stacks, tier, node):
    """"tier.Name" (or "tier.Resource.Attribute") that node comes from."""
    target = stacks.resolve(tier, node)
    return f"{target.tier}.{target.name}" + (f".{target.value}" if target.kind == "resource" and target.value else "")


def zone_index(node):
    """0 for !Select [0, !GetAZs ""], and so on; None otherwise."""
    select = node.get("Fn::Select") if isinstance(node, dict) else None
    return int(select[0]) if select and select[1] == {"Fn::GetAZs": ""} else None


# ---- network --------------------------------------------------------------

def check_addresses(stacks):
    problems = []
    if stacks.default("network", "VpcCidr") != "10.0.0.0/16" or \
            stacks.value("network", stacks.props("network", "Vpc")["CidrBlock"]) != "10.0.0.0/16":
        problems.append("the VPC is not 10.0.0.0/16")
    for kind, subnets, wanted in (("public", stacks.public_subnets(), ["10.0.1.0/24", "10.0.2.0/24"]),
                                  ("private", stacks.private_subnets(), ["10.0.3.0/24", "10.0.4.0/24"])):
        props = [stacks.props(tier, name) for tier, name in sorted(subnets)]
        cidrs = sorted(str(stacks.value("network", p["CidrBlock"])) for p in props)
        if cidrs != wanted:
            problems.append(f"the {kind} subnets are {cidrs}, not {wanted}")
        if sorted(str(zone_index(p.get("AvailabilityZone"))) for p in props) != ["0", "1"]:
            problems.append(f"the {kind} subnets are not in the first and second zone")
    return problems


def check_nat(stacks):
    problems = []
    for nat_gateways, count in (("one", 1), ("per-az", 2)):
        s = stacks.render({"network": {"NatGateways": nat_gateways}})
        nats = s.resources("network", "AWS::EC2::NatGateway")
        if len(nats) != count:
            problems.append(f"NatGateways={nat_gateways} makes {len(nats)} NAT gateways, not {count}")
        public = {name for _, name in s.public_subnets()}
        if any(s.resolve("network", n["Properties"]["SubnetId"]).name not in public for n in nats.values()):
            problems.append(f"NatGateways={nat_gateways}: a NAT gateway is not in a public subnet")
        used = set()
        for _, name in s.private_subnets():
            table = only([a["Properties"]["RouteTableId"] for a in s.resources(
                "network", "AWS::EC2::SubnetRouteTableAssociation").values()
                if s.resolve("network", a["Properties"]["SubnetId"]).name == name], f"route table of {name}")
            routes = [r["Properties"] for r in s.resources("network", "AWS::EC2::Route").values()
                      if r["Properties"]["RouteTableId"] == table
                      and r["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"]
            nat = s.resolve("network", only(routes, f"default route of {name}").get("NatGatewayId")).name
            if nat not in nats:
                problems.append(f"NatGateways={nat_gateways}: {name} does not go out through a NAT gateway")
            used.add(nat)
        if len(used) != count:
            problems.append(f"NatGateways={nat_gateways}: the private subnets use {len(used)} NAT gateways")
    return problems


# ---- front ----------------------------------------------------------------

def listeners(stacks):
    return {l["Properties"]["Port"]: l["Properties"]
            for l in stacks.resources("service", "AWS::ElasticLoadBalancingV2::Listener").values()}


def forwards_to_target_group(stacks, action):
    return action.get("Type") == "forward" and \
        stacks.resolve("service", action.get("TargetGroupArn")).name == "TargetGroup"


def check_https(stacks):
    problems = []
    with_cert = stacks.render({"service": {"CertificateArn": CERT}})
    ports = listeners(with_cert)
    https, http = ports.get(443), ports.get(80)
    if not https or https.get("Protocol") != "HTTPS" or \
            [c.get("CertificateArn") for c in https.get("Certificates", [])] != [{"Ref": "CertificateArn"}] or \
            not forwards_to_target_group(with_cert, only(https["DefaultActions"], "action")):
        problems.append("with a certificate there is no HTTPS listener on 443 with it, forwarding to the tasks")
    elif not str(https.get("SslPolicy", "")).startswith(("ELBSecurityPolicy-TLS13-1-2", "ELBSecurityPolicy-TLS-1-2")):
        problems.append("the HTTPS listener allows TLS older than 1.2")
    redirect = (http or {}).get("DefaultActions", [{}])[0]
    config = redirect.get("RedirectConfig", {})
    if redirect.get("Type") != "redirect" or (config.get("Protocol"), str(config.get("Port")),
                                              config.get("StatusCode")) != ("HTTPS", "443", "HTTP_301"):
        problems.append("with a certificate port 80 does not redirect (301) to HTTPS on 443")
    without = stacks.render({"service": {"CertificateArn": ""}})
    ports = listeners(without)
    if set(ports) != {80} or not forwards_to_target_group(without, only(ports[80]["DefaultActions"], "action")):
        problems.append("without a certificate there is not exactly plain HTTP on 80, forwarding to the tasks")
    for s, scheme in ((with_cert, "https"), (without, "http")):
        url = s.templates["service"]["Outputs"]["LoadBalancerUrl"]["Value"]
        if not str(url.get("Fn::Sub", "")).startswith(scheme + "://"):
            problems.append(f"LoadBalancerUrl is not {scheme}:// when it should be")
    return problems


# ---- database ---------------------------------------------------------------

def check_database(stacks):
    problems = []
    primary = stacks.props("database", "Primary")
    value = lambda key: str(stacks.value("database", primary.get(key))).lower()  # noqa: E731
    if value("Engine") != "mysql" or not value("EngineVersion").startswith("8."):
        problems.append("the database is not MySQL 8")
    if value("StorageEncrypted") != "true":
        problems.append("the database storage is not encrypted")
    retention = stacks.parameters("database").get("BackupRetentionDays", {})
    if stacks.resolve("database", primary.get("BackupRetentionPeriod")).name != "BackupRetentionDays" or \
            int(retention.get("MinValue", 0)) < 1 or int(retention.get("Default", 0)) < 1:
        problems.append("automated backups can be off (BackupRetentionPeriod must be at least 1)")
    for key, param in (("MultiAZ", "MultiAZ"), ("DeletionProtection", "DeletionProtection")):
        if stacks.resolve("database", primary.get(key)) != stacks.resolve("database", {"Ref": param}) or \
                sorted(stacks.parameters("database")[param].get("AllowedValues", [])) != ["false", "true"]:
            problems.append(f"{key} is not set by a true/false parameter")
    if value("DBName") != "flaskcrud":
        problems.append("the database name does not default to flaskcrud")
    for replica, count in (("true", 1), ("false", 0)):
        s = stacks.render({"database": {"ReadReplica": replica}})
        replicas = [p["Properties"] for p in s.resources("database", "AWS::RDS::DBInstance").values()
                    if "SourceDBInstanceIdentifier" in p["Properties"]]
        if len(replicas) != count or any(s.resolve("database", r["SourceDBInstanceIdentifier"]).name != "Primary"
                                         for r in replicas):
            problems.append(f"ReadReplica={replica} makes {len(replicas)} replicas of the primary, not {count}")
    return problems


# ---- registry ---------------------------------------------------------------

def check_registry(stacks):
    problems = []
    repo = only(stacks.resources("registry", "AWS::ECR::Repository").values(), "repository")["Properties"]
    if str(repo.get("ImageScanningConfiguration", {}).get("ScanOnPush")).lower() != "true":
        problems.append("images are not scanned on push")
    text = repo.get("LifecyclePolicy", {}).get("LifecyclePolicyText", {})
    text = text.get("Fn::Sub", "") if isinstance(text, dict) else text
    text = re.sub(r"\$\{(\w+)\}", lambda m: str(stacks.default("registry", m.group(1))), text)
    try:
        rules = json.loads(text)["rules"]
    except (ValueError, KeyError, TypeError):
        rules = []
    if not rules or not all(r.get("action", {}).get("type") == "expire" for r in rules):
        problems.append("the repository has no lifecycle policy expiring images")
    return problems


# ---- tasks and service --------------------------------------------------------

REQUIRED_ENV = {"APP_ENV", "LOG_FORMAT", "PORT", "WORKERS", "DB_POOL_SIZE", "REQ_TIMEOUT", "DRAIN_TIMEOUT",
                "DATABASE_URL", "DATABASE_PORT", "DATABASE_USERNAME", "DATABASE_NAME"}
# max_connections of the default instance class, db.t3.micro (1 GiB / 12 MiB, less what RDS keeps).
MICRO_CONNECTIONS = 60
# Connections a deploy's tasks leave free: the admin's, RDS's own (rdsadmin), a migration.
ADMIN_CONNECTIONS = 10


def check_task(stacks):
    problems = []
    task = only(stacks.resources("service", "AWS::ECS::TaskDefinition").values(), "task")["Properties"]
    c = only(task["ContainerDefinitions"], "container")
    if task.get("RequiresCompatibilities") != ["FARGATE"] or task.get("NetworkMode") != "awsvpc":
        problems.append("the task is not a Fargate (awsvpc) task")
    logs = c.get("LogConfiguration", {})
    group = stacks.resolve("service", logs.get("Options", {}).get("awslogs-group"))
    if logs.get("LogDriver") != "awslogs" or group.kind != "resource" or \
            "RetentionInDays" not in stacks.props("service", group.name):
        problems.append("the container does not log with awslogs to a log group with a retention")
    if c.get("HealthCheck", {}).get("Command") != ["CMD", "/usr/local/bin/h2lua", "healthcheck"]:
        problems.append("the container health check is not `h2lua healthcheck`")
    if c.get("StopTimeout") != 30:
        problems.append("the container's stopTimeout is not 30 s")
    with_replica = stacks.render({"database": {"ReadReplica": "true"}, "service": {"ReadReplica": "true"}})
    for s, replica in ((with_replica, True), (stacks.render(), False)):
        cs = container(s.templates)
        env = {e["Name"]: e["Value"] for e in cs.get("Environment", [])}
        missing = REQUIRED_ENV - set(env)
        if missing:
            problems.append(f"the environment lacks {sorted(missing)}")
            continue
        if (env["APP_ENV"], env["LOG_FORMAT"]) != ("production", "json"):
            problems.append("the environment is not APP_ENV=production, LOG_FORMAT=json")
        wanted = {"DATABASE_URL": "database.Primary.Endpoint.Address",
                  "DATABASE_PORT": "database.Primary.Endpoint.Port",
                  "DATABASE_NAME": "database.DBName", "DATABASE_USERNAME": "database.MasterUsername",
                  "PORT": "security.AppPort", "WORKERS": "service.Workers"}
        if replica:
            wanted["DATABASE_READ_URL"] = "database.Replica.Endpoint.Address"
        elif "DATABASE_READ_URL" in env and env["DATABASE_READ_URL"] != "":
            problems.append("without a replica DATABASE_READ_URL is set")
        for name, source in wanted.items():
            if target_name(s, "service", env.get(name)) != source:
                problems.append(f"ReadReplica={str(replica).lower()}: {name} does not come from {source}")
        number = lambda node: int(s.value("service", node))  # noqa: E731
        if number(env["REQ_TIMEOUT"]) <= int(s.default("service", "IdleTimeout")):
            problems.append("h2lua closes idle connections (REQ_TIMEOUT) before the load balancer does (502s)")
        if number(env["DRAIN_TIMEOUT"]) >= cs.get("StopTimeout", 0):
            problems.append("DRAIN_TIMEOUT is not shorter than StopTimeout (in-flight requests are killed)")
    return problems


def check_trusted_proxies(stacks):
    """TRUSTED_PROXIES is the address ranges of the public subnets, where the load balancer's nodes
    are, and nothing else: h2lua reads X-Forwarded-For from them only."""
    stacks = stacks.render()
    env = {e["Name"]: e["Value"] for e in container(stacks.templates).get("Environment", [])}
    node = env.get("TRUSTED_PROXIES")
    join = node.get("Fn::Join") if isinstance(node, dict) else None
    if not join or join[0] != ",":
        return ["the task has no TRUSTED_PROXIES joined from the public subnets' ranges"]
    # what each public subnet's CidrBlock comes from (a parameter of the network stack)
    public = {stacks.resolve(tier, stacks.props(tier, name)["CidrBlock"]): name for tier, name in stacks.public_subnets()}
    ranges = [stacks.resolve("service", part) for part in join[1]]
    strays = [target_name(stacks, "service", part) for part, r in zip(join[1], ranges) if r not in public]
    if strays:
        return [f"TRUSTED_PROXIES holds {strays}, not the range of a public subnet (the load balancer's)"]
    if set(ranges) != set(public):
        return [f"TRUSTED_PROXIES is the range of {sorted(public[r] for r in set(ranges))}, not of every public subnet "
                f"{sorted(public.values())}"]
    return []


def check_connections_at_deploy_peak(stacks):
    """A deploy at MaxTasks starts MaximumPercent of the tasks before it stops the old ones: their
    pools (WORKERS x DB_POOL_SIZE each, to the primary and to the replica alike) must fit the
    default instance class's max_connections, less room for the admin and RDS's own connections."""
    problems = []
    for s in (stacks.render(), stacks.render({"database": {"ReadReplica": "true"}, "service": {"ReadReplica": "true"}})):
        env = {e["Name"]: e["Value"] for e in container(s.templates).get("Environment", [])}
        svc = only(s.resources("service", "AWS::ECS::Service").values(), "service")["Properties"]
        percent = int(s.value("service", svc.get("DeploymentConfiguration", {}).get("MaximumPercent", 200)))
        peak_tasks = int(s.default("service", "MaxTasks")) * percent // 100
        connections = peak_tasks * int(s.value("service", env["WORKERS"])) * int(s.value("service", env["DB_POOL_SIZE"]))
        for cls in ("DBInstanceClass", "ReplicaInstanceClass"):
            if s.default("database", cls) != "db.t3.micro":
                problems.append(f"{cls} is not db.t3.micro: MICRO_CONNECTIONS does not apply")
        if connections > MICRO_CONNECTIONS - ADMIN_CONNECTIONS:
            problems.append(f"a deploy at MaxTasks runs {peak_tasks} tasks ({percent}%) whose pools open {connections} "
                            f"connections, more than db.t3.micro's {MICRO_CONNECTIONS} less {ADMIN_CONNECTIONS} kept free")
    return problems


def check_task_role(stacks):
    """The h2lua process calls no AWS API: a task role only for ECS Exec, which needs one (its SSM
    channels), whether the roles are created or LabRole is used."""
    problems = []
    for role in ("", "LabRole"):
        for exec_ in ("false", "true"):
            s = stacks.render({"service": {"ExistingRoleName": role, "ExecuteCommand": exec_}})
            task = only(s.resources("service", "AWS::ECS::TaskDefinition").values(), "task")["Properties"]
            svc = only(s.resources("service", "AWS::ECS::Service").values(), "service")["Properties"]
            where = f"ExistingRoleName={role!r}, ExecuteCommand={exec_}"
            if str(svc.get("EnableExecuteCommand")).lower() != exec_:
                problems.append(f"{where}: EnableExecuteCommand is {svc.get('EnableExecuteCommand')}")
            if exec_ == "false" and "TaskRoleArn" in task:
                problems.append(f"{where}: the task has a role ({task['TaskRoleArn']}) though nothing needs one")
            if exec_ == "true" and "TaskRoleArn" not in task:
                problems.append(f"{where}: ECS Exec without a task role cannot open its channels")
            if exec_ == "false" and "TaskRole" in s.resources("service"):
                problems.append(f"{where}: the stack creates a task role nothing uses")
    return problems


def check_service(stacks):
    problems = []
    svc = only(stacks.resources("service", "AWS::ECS::Service").values(), "service")["Properties"]
    breaker = svc.get("DeploymentConfiguration", {}).get("DeploymentCircuitBreaker", {})
    if (str(breaker.get("Enable")).lower(), str(breaker.get("Rollback")).lower()) != ("true", "true"):
        problems.append("deployments are not rolled back by the circuit breaker")
    fixed = only(stacks.render({"service": {"Autoscaling": "false"}}).resources(
        "service", "AWS::ECS::Service").values(), "service")["Properties"]
    if svc.get("LaunchType") != "FARGATE" or stacks.value("service", fixed.get("DesiredCount")) != 2:
        problems.append("the service does not run 2 Fargate tasks by default without autoscaling")
    if not stacks.value("service", svc.get("HealthCheckGracePeriodSeconds")):
        problems.append("the service has no health-check grace period")
    tg = stacks.props("service", stacks.resolve("service", only(svc["LoadBalancers"], "target")["TargetGroupArn"]).name)
    attrs = {a["Key"]: a["Value"] for a in tg.get("TargetGroupAttributes", [])}
    if tg.get("TargetType") != "ip" or tg.get("HealthCheckPath") != "/healthz":
        problems.append("the target group is not of type ip with its health check on /healthz")
    delay = int(attrs.get("deregistration_delay.timeout_seconds", 300))
    if not delay < container(stacks.templates).get("StopTimeout", 0):
        problems.append("the deregistration delay is not shorter than the container's stopTimeout")
    return problems


def check_autoscaling(stacks):
    policies = stacks.resources("service", "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    metrics = {p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
        "PredefinedMetricType"] for p in policies if p["Properties"].get("PolicyType") == "TargetTrackingScaling"}
    wanted = {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    return [] if wanted <= metrics else [f"no target tracking on {sorted(wanted - metrics)}"]


def check_alarms(stacks):
    problems = []
    for replica in ("true", "false"):
        s = stacks.render({"database": {"ReadReplica": replica}, "service": {"ReadReplica": replica}})
        metrics = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"])
                   for a in s.resources("service", "AWS::CloudWatch::Alarm").values()}
        wanted = {("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"), ("AWS/ApplicationELB", "UnHealthyHostCount"),
                  ("AWS/ApplicationELB", "TargetResponseTime"), ("AWS/RDS", "CPUUtilization"),
                  ("AWS/RDS", "FreeStorageSpace")}
        if replica == "true":
            wanted.add(("AWS/RDS", "ReplicaLag"))
        elif ("AWS/RDS", "ReplicaLag") in metrics:
            problems.append("a replica-lag alarm exists without a replica")
        if not wanted <= metrics:
            problems.append(f"ReadReplica={replica}: no alarm on {sorted(wanted - metrics)}")
        problems += check_dashboard(s, replica == "true")
    return problems


def check_dashboard(stacks, replica):
    """The dashboard body is JSON once substituted, with a replica-lag graph only with a replica."""
    dashboards = list(stacks.resources("service", "AWS::CloudWatch::Dashboard").values())
    if len(dashboards) != 1:
        return ["there is no dashboard"]
    body, variables = dashboards[0]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name, node in variables.items():
        text = node["Fn::Sub"][0] if isinstance(node, dict) and "Fn::Sub" in node else node
        body = body.replace("${%s}" % name, text if isinstance(text, str) else "X")
    try:
        widgets = json.loads(re.sub(r"\$\{[^}]+\}", "X", body))["widgets"]
    except (ValueError, KeyError):
        return ["the dashboard body is not JSON"]
    lag = any("ReplicaLag" in json.dumps(w) for w in widgets)
    return [] if lag == replica else [f"the dashboard {'lacks' if replica else 'has'} a replica-lag graph"]


def check_learner_lab_mode(stacks):
    problems = []
    for role, iam_count in (("LabRole", 0), ("", 1)):
        s = stacks.render({"service": {"ExistingRoleName": role}})
        iam = [f"{t}/{n}" for t in TIERS for n, r in s.resources(t).items() if r["Type"].startswith("AWS::IAM::")]
        if len(iam) != iam_count:
            problems.append(f"ExistingRoleName={role!r} creates {len(iam)} IAM resources ({iam}), not {iam_count}")
        task = only(s.resources("service", "AWS::ECS::TaskDefinition").values(), "task")["Properties"]
        for key in ("ExecutionRoleArn",):
            arn = task.get(key)
            uses_lab = isinstance(arn, dict) and str(arn.get("Fn::Sub", "")).endswith(":role/${ExistingRoleName}")
            if uses_lab != bool(role):
                problems.append(f"ExistingRoleName={role!r}: {key} does not use {'it' if role else 'a created role'}")
    return problems


def check_exports(stacks):
    """Every import names an export of an earlier tier; exports are PREFIX-tier-Name."""
    problems = []
    exports = stacks.exports()
    for name in exports:
        tier = exports[name][0]
        if not name.startswith(f"${{StackPrefix}}-{tier}-"):
            problems.append(f"export {name} is not named ${{StackPrefix}}-{tier}-...")

    def imports(node):
        if isinstance(node, dict):
            if "Fn::ImportValue" in node:
                yield node["Fn::ImportValue"]
            for v in node.values():
                yield from imports(v)
        elif isinstance(node, list):
            for v in node:
                yield from imports(v)

    for tier in TIERS:
        if stacks.parameters(tier).get("StackPrefix", {}).get("AllowedPattern") != "^[a-z][a-z0-9-]{1,20}$":
            problems.append(f"{tier} has no StackPrefix parameter like the others")
        for name in imports(stacks.templates[tier]):
            name = name.get("Fn::Sub") if isinstance(name, dict) else name
            if name not in exports:
                problems.append(f"{tier} imports {name}, which no stack exports")
            elif TIERS.index(exports[name][0]) >= TIERS.index(tier):
                problems.append(f"{tier} imports {name} from a stack deployed after it")
    return problems


# ---- what the issue of the first real deployment found ------------------------

# End of RDS standard support of each major version (RDS User Guide, release calendars). After it a
# new instance runs on paid Extended Support unless EngineLifecycleSupport disables it.
STANDARD_SUPPORT_ENDS = {("mysql", "8.0"): date(2026, 7, 31), ("mysql", "8.4"): date(2029, 7, 31),
                         ("mariadb", "10.6"): date(2026, 7, 31), ("mariadb", "10.11"): date(2028, 2, 29),
                         ("mariadb", "11.4"): date(2029, 5, 31)}
# The day the support checks are judged on, fixed so that the suite gives the same answer every day
# (judged on the real date, the default MariaDB 10.11 would fail from 2028-02-29, and the mutation
# mysql_8_0_default was caught only after 2026-07-31). Move it forward with the calendar above.
CHECK_DATE = date(2026, 12, 1)


def check_replica_source(stacks):
    """RDS refuses a read replica of a MySQL instance whose password it manages (ManageMasterUserPassword)."""
    problems = []
    s = stacks.render({"database": {"ReadReplica": "true"}})
    for tier, name, db in s.all_resources("AWS::RDS::DBInstance"):
        source = db["Properties"].get("SourceDBInstanceIdentifier")
        if source is None:
            continue
        target = s.resolve(tier, source)
        origin = s.props(target.tier, target.name) if target.kind == "resource" else {}
        if str(origin.get("ManageMasterUserPassword")).lower() == "true":
            problems.append(f"{tier}/{name} replicates {target.name}, whose password RDS manages: RDS refuses it")
    for tier, name, db in stacks.all_resources("AWS::RDS::DBInstance"):
        if "SourceDBInstanceIdentifier" in db["Properties"]:
            continue
        attached = [a for _, _, a in stacks.all_resources("AWS::SecretsManager::SecretTargetAttachment")
                    if stacks.resolve(tier, a["Properties"].get("TargetId")).name == name]
        if not attached:
            problems.append(f"{tier}/{name}: no SecretTargetAttachment ties its secret to it")
    return problems


def check_engine_support(stacks, today=CHECK_DATE):
    """The default engine is in RDS standard support on `today`, and Extended Support is refused (MySQL)."""
    problems = []
    primary = stacks.props("database", "Primary")
    engine = str(stacks.value("database", primary.get("Engine")))
    version = str(stacks.value("database", primary.get("EngineVersion")))
    end = STANDARD_SUPPORT_ENDS.get((engine, ".".join(version.split(".")[:2])))
    if end is None or end <= today:
        problems.append(f"the default engine {engine} {version} is past RDS standard support (or unknown here)")
    for params, wanted in (({"Engine": "mysql", "EngineVersion": "8.4"}, "open-source-rds-extended-support-disabled"),
                           ({"Engine": "mariadb", "EngineVersion": "11.4"}, None)):
        p = stacks.render({"database": params}).props("database", "Primary")
        if p.get("EngineLifecycleSupport") != wanted:
            problems.append(f"Engine={params['Engine']}: EngineLifecycleSupport is {p.get('EngineLifecycleSupport')},"
                            f" not {wanted}")
    allowed = stacks.parameters("database").get("EngineVersion", {}).get("AllowedValues", [])
    for value in allowed:
        if not any(v == value and e > today for (_, v), e in STANDARD_SUPPORT_ENDS.items()):
            problems.append(f"EngineVersion allows {value}, which is past RDS standard support")
    group = stacks.resolve("database", primary.get("DBParameterGroupName"))
    settings = stacks.props("database", group.name).get("Parameters", {}) if group.kind == "resource" else {}
    for key, value in (("slow_query_log", "1"), ("require_secure_transport", "1"), ("log_output", "FILE")):
        if str(settings.get(key)) != value:
            problems.append(f"the primary's parameter group does not set {key}={value}")
    return problems


def check_desired_count(stacks):
    """With autoscaling a deploy must not reset the task count: DesiredCount is left out."""
    problems = []
    for autoscaling in ("true", "false"):
        svc = only(stacks.render({"service": {"Autoscaling": autoscaling}}).resources(
            "service", "AWS::ECS::Service").values(), "service")["Properties"]
        if autoscaling == "true" and "DesiredCount" in svc:
            problems.append("DesiredCount is set while autoscaling: every deploy resets the count")
        if autoscaling == "false" and "DesiredCount" not in svc:
            problems.append("without autoscaling the service has no DesiredCount")
    return problems


def check_front_hardening(stacks):
    problems = []
    lb = only(stacks.resources("service", "AWS::ElasticLoadBalancingV2::LoadBalancer").values(), "LB")["Properties"]
    attrs = {a["Key"]: a["Value"] for a in listed(lb.get("LoadBalancerAttributes"))}
    if attrs.get("routing.http.desync_mitigation_mode") != "strictest":
        problems.append("the load balancer's desync mitigation is not strictest")
    https = listeners(stacks.render({"service": {"CertificateArn": CERT}})).get(443, {})
    hsts = {a["Key"]: a["Value"] for a in https.get("ListenerAttributes", [])}.get(
        "routing.http.response.strict_transport_security.header_value", "")
    if not re.match(r"max-age=\d{7,}", str(hsts)):
        problems.append("HTTPS responses carry no Strict-Transport-Security of a year or so")
    for logs in ("true", "false"):
        s = stacks.render({"service": {"AccessLogs": logs}})
        a = {x["Key"]: x["Value"] for x in listed(s.props("service", "LoadBalancer").get("LoadBalancerAttributes"))}
        buckets = s.resources("service", "AWS::S3::Bucket")
        if (str(a.get("access_logs.s3.enabled")) == "true") != (logs == "true") or bool(buckets) != (logs == "true"):
            problems.append(f"AccessLogs={logs} does not turn the access logs and their bucket {'on' if logs == 'true' else 'off'}")
    # The load balancer delivers logs until it is gone, so the bucket is not empty when
    # CloudFormation would delete it: the stack keeps it, and ops/aws/destroy removes it after.
    bucket = stacks.resource("service", "AccessLogBucket")
    if (bucket.get("DeletionPolicy"), bucket.get("UpdateReplacePolicy")) != ("Retain", "Retain"):
        problems.append("the access-log bucket is deleted with the stack (DELETE_FAILED while logs still arrive)")
    return problems


def check_deployment_safety(stacks):
    problems = []
    svc = stacks.props("service", "Service")
    alarms = svc.get("DeploymentConfiguration", {}).get("Alarms", {})
    names = [stacks.resolve("service", n).name for n in alarms.get("AlarmNames", [])]
    if str(alarms.get("Rollback")).lower() != "true" or str(alarms.get("Enable")).lower() != "true" \
            or "Target5xxAlarm" not in names:
        problems.append("a deployment is not rolled back on the tasks' 5xx alarm")
    for exec_on in ("true", "false"):
        s = stacks.render({"service": {"ExecuteCommand": exec_on}})
        if str(s.props("service", "Service").get("EnableExecuteCommand")).lower() != exec_on:
            problems.append(f"ExecuteCommand={exec_on} does not set EnableExecuteCommand")
    env = {e["Name"]: e["Value"] for e in listed(container(stacks.templates).get("Environment"))}
    if stacks.value("service", env.get("DATABASE_TLS")) != "verify-identity" or \
            not str(env.get("DATABASE_CA", "")).endswith(".pem"):
        problems.append("the tasks do not connect to RDS with DATABASE_TLS=verify-identity and a CA bundle")
    if outputs_missing := {"TaskDefinitionArn", "TargetGroupArn"} - set(stacks.templates["service"]["Outputs"]):
        problems.append(f"the service stack lacks the outputs deploy reads: {sorted(outputs_missing)}")
    return problems


def check_s3_endpoint(stacks):
    endpoints = [e["Properties"] for e in stacks.resources("network", "AWS::EC2::VPCEndpoint").values()
                 if e["Properties"].get("VpcEndpointType") == "Gateway"
                 and ".s3" in json.dumps(e["Properties"].get("ServiceName"))]
    tables = {stacks.resolve("network", a["Properties"]["RouteTableId"]).name
              for a in stacks.resources("network", "AWS::EC2::SubnetRouteTableAssociation").values()
              if ("network", stacks.resolve("network", a["Properties"]["SubnetId"]).name) in stacks.private_subnets()}
    if not endpoints or {stacks.resolve("network", t).name for t in endpoints[0].get("RouteTableIds", [])} != tables:
        return ["no S3 gateway endpoint on the private route tables (image layers would go through the NAT)"]
    return []


def check_webhook(stacks):
    """WebhookUrl: empty, the tasks know of no webhook; an https:// URL, the task gets it as
    WEBHOOK_URL and a key generated in Secrets Manager as WEBHOOK_SECRET, which the execution role
    may read and an output names; an http:// URL is refused (the tasks may only send HTTPS out)."""
    problems = []
    url = "https://hooks.example.com/h2lua"
    pattern = stacks.templates["service"]["Parameters"].get("WebhookUrl", {}).get("AllowedPattern", "")
    if not pattern or not re.fullmatch(pattern, url) or re.fullmatch(pattern, "http://hooks.example.com/h2lua") \
            or not re.fullmatch(pattern, ""):
        problems.append("WebhookUrl does not take exactly '' and https:// URLs")
    for s, on in ((stacks.render(), False), (stacks.render({"service": {"WebhookUrl": url}}), True)):
        c = container(s.templates)
        env = {e["Name"]: e["Value"] for e in c.get("Environment", [])}
        secrets = {e["Name"]: e["ValueFrom"] for e in c.get("Secrets", [])}
        made = s.resources("service", "AWS::SecretsManager::Secret")
        if not on:
            if "WEBHOOK_URL" in env or "WEBHOOK_SECRET" in secrets or "WebhookSecret" in made:
                problems.append("without WebhookUrl the task still gets a webhook")
            continue
        if target_name(s, "service", env.get("WEBHOOK_URL")) != "service.WebhookUrl":
            problems.append("WebhookUrl does not reach the task as WEBHOOK_URL")
        source = s.resolve("service", secrets.get("WEBHOOK_SECRET"))
        if source.kind != "resource" or source.name != "WebhookSecret" or "WebhookSecret" not in made:
            problems.append("WEBHOOK_SECRET is not the generated WebhookSecret")
        role = s.props("service", "ExecutionRole")
        readable = [s.resolve("service", r).name for p in role.get("Policies", [])
                    for st in p["PolicyDocument"]["Statement"] for r in listed(st.get("Resource", []))
                    if "secretsmanager:GetSecretValue" in str(st.get("Action"))]
        if "WebhookSecret" not in readable:
            problems.append("the execution role may not read WebhookSecret (tasks would not start)")
        if "WebhookSecretArn" not in s.templates["service"].get("Outputs", {}):
            problems.append("no output names the webhook secret for the receiver")
    return problems


CHECKS = [check_addresses, check_nat, check_https, check_database, check_registry, check_task,
          check_service, check_autoscaling, check_alarms, check_learner_lab_mode, check_exports,
          check_replica_source, check_engine_support, check_desired_count, check_front_hardening,
          check_deployment_safety, check_s3_endpoint, check_connections_at_deploy_peak, check_task_role,
          check_trusted_proxies, check_webhook]


class Templates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stacks = Stacks.load()


class EngineSupportDates(unittest.TestCase):
    """check_engine_support judges the day it is given: the boundaries of the default engine's support."""

    @classmethod
    def setUpClass(cls):
        cls.stacks = Stacks.load()

    def default_end(self):
        primary = self.stacks.props("database", "Primary")
        engine = str(self.stacks.value("database", primary.get("Engine")))
        version = str(self.stacks.value("database", primary.get("EngineVersion")))
        return STANDARD_SUPPORT_ENDS[(engine, ".".join(version.split(".")[:2]))]

    def past_support(self, today):
        return [p for p in check_engine_support(self.stacks, today) if p.startswith("the default engine")]

    def test_the_check_date_is_within_the_default_engines_support(self):
        self.assertLess(CHECK_DATE, self.default_end())

    def test_the_default_engine_is_refused_from_the_day_its_support_ends(self):
        end = self.default_end()
        self.assertEqual([], self.past_support(end - timedelta(days=1)))
        self.assertNotEqual([], self.past_support(end))


def _holds(check):
    def test(self):
        self.assertEqual([], check(self.stacks))
    return test


for _check in CHECKS:
    setattr(Templates, "test_" + _check.__name__[len("check_"):], _holds(_check))


# ---- each check catches what it is for --------------------------------------

def res(t, tier, name):
    return t[tier]["Resources"][name]


def props(t, tier, name):
    return res(t, tier, name)["Properties"]


def second_nat_always(t):
    res(t, "network", "NatGateway2").pop("Condition")
    res(t, "network", "NatAddress2").pop("Condition")


def dashboard_not_json(t):
    sub = props(t, "service", "Dashboard")["DashboardBody"]["Fn::Sub"]
    sub[0] = sub[0].replace('"widgets": [', '"widgets": [,')


def import_from_a_later_stack(t):
    t["service"]["Outputs"]["ClusterName"]["Export"] = {"Name": {"Fn::Sub": "${StackPrefix}-service-ClusterName"}}
    props(t, "security", "AppSecurityGroup")["VpcId"] = {
        "Fn::ImportValue": {"Fn::Sub": "${StackPrefix}-service-ClusterName"}}


def managed_password(t):
    """The first version: RDS manages the password (and rotates it); the replica cannot be made."""
    p = props(t, "database", "Primary")
    p.pop("MasterUserPassword")
    p["ManageMasterUserPassword"] = True


FAULTS = {
    "public_subnet_moved": (check_addresses, lambda t: t["network"]["Parameters"]["PublicSubnet2Cidr"].update(
        Default="10.0.5.0/24")),
    "subnets_in_one_zone": (check_addresses, lambda t: props(t, "network", "PrivateSubnet2").update(
        AvailabilityZone={"Fn::Select": [0, {"Fn::GetAZs": ""}]})),
    "second_nat_always": (check_nat, second_nat_always),
    "private_route_shares_nat_per_az": (check_nat, lambda t: props(t, "network", "PrivateDefaultRoute2").update(
        NatGatewayId={"Ref": "NatGateway1"})),
    "http_never_redirects": (check_https, lambda t: props(t, "service", "HttpListener").update(
        DefaultActions=[{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}])),
    "https_without_certificate": (check_https, lambda t: res(t, "service", "HttpsListener").pop("Condition")),
    "redirect_to_http": (check_https, lambda t: props(t, "service", "HttpListener")["DefaultActions"][0]["Fn::If"][1][
        "RedirectConfig"].update(Protocol="HTTP")),
    "old_tls": (check_https, lambda t: props(t, "service", "HttpsListener").update(
        SslPolicy="ELBSecurityPolicy-2016-08")),
    "unencrypted_database": (check_database, lambda t: props(t, "database", "Primary").update(StorageEncrypted=False)),
    "backups_off": (check_database, lambda t: props(t, "database", "Primary").update(BackupRetentionPeriod=0)),
    "replica_always": (check_database, lambda t: res(t, "database", "Replica").pop("Condition")),
    "fixed_multi_az": (check_database, lambda t: props(t, "database", "Primary").update(MultiAZ=True)),
    "another_schema": (check_database, lambda t: t["database"]["Parameters"]["DBName"].update(Default="app")),
    "no_scan": (check_registry, lambda t: props(t, "registry", "Repository").update(
        ImageScanningConfiguration={"ScanOnPush": False})),
    "no_lifecycle": (check_registry, lambda t: props(t, "registry", "Repository").pop("LifecyclePolicy")),
    "logs_kept_forever": (check_task, lambda t: props(t, "service", "LogGroup").pop("RetentionInDays")),
    "curl_health_check": (check_task, lambda t: container(t)["HealthCheck"].update(
        Command=["CMD-SHELL", "curl -f http://localhost:8080/healthz"])),
    "long_stop_timeout": (check_task, lambda t: container(t).update(StopTimeout=120)),
    "writes_to_the_replica": (check_task, lambda t: [e.update(Value={"Fn::ImportValue": {"Fn::Sub":
        "${StackPrefix}-database-ReplicaEndpointAddress"}}) for e in container(t)["Environment"]
        if e.get("Name") == "DATABASE_URL"]),
    "development_mode": (check_task, lambda t: container(t)["Environment"][0].update(Value="development")),
    "short_keep_alive": (check_task, lambda t: t["service"]["Parameters"]["KeepAliveTimeout"].update(Default="10")),
    "drain_cut_short": (check_task, lambda t: [e.update(Value="45") for e in container(t)["Environment"]
                                                if e.get("Name") == "DRAIN_TIMEOUT"]),
    "pools_too_large": (check_connections_at_deploy_peak, lambda t: t["service"]["Parameters"]["DbPoolSize"].update(
        Default="8")),
    # the pools of issue 19: 6 tasks x 2 workers x 4 = 48 fit, but a deploy runs 12 tasks (96)
    "pools_sized_without_the_deploy": (check_connections_at_deploy_peak, lambda t: t["service"]["Parameters"][
        "DbPoolSize"].update(Default="4")),
    "task_role_without_exec": (check_task_role, lambda t: props(t, "service", "TaskDefinition").update(
        TaskRoleArn={"Fn::If": ["UseExistingRole", {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
                                                                 "${ExistingRoleName}"}, {"Fn::GetAtt": ["TaskRole", "Arn"]}]})),
    "no_rollback": (check_service, lambda t: props(t, "service", "Service")["DeploymentConfiguration"][
        "DeploymentCircuitBreaker"].update(Rollback=False)),
    "health_check_on_root": (check_service, lambda t: props(t, "service", "TargetGroup").update(HealthCheckPath="/")),
    "long_deregistration": (check_service, lambda t: props(t, "service", "TargetGroup").update(
        TargetGroupAttributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}])),
    "no_request_scaling": (check_autoscaling, lambda t: t["service"]["Resources"].pop("RequestScaling")),
    "no_unhealthy_alarm": (check_alarms, lambda t: t["service"]["Resources"].pop("UnhealthyHostsAlarm")),
    "replica_alarm_without_replica": (check_alarms, lambda t: res(t, "service", "ReplicaLagAlarm").pop("Condition")),
    "dashboard_not_json": (check_alarms, dashboard_not_json),
    "role_created_in_lab": (check_learner_lab_mode, lambda t: res(t, "service", "ExecutionRole").pop("Condition")),
    "lab_role_ignored": (check_learner_lab_mode, lambda t: props(t, "service", "TaskDefinition").update(
        ExecutionRoleArn={"Fn::GetAtt": ["ExecutionRole", "Arn"]})),
    "import_of_nothing": (check_exports, lambda t: props(t, "database", "SubnetGroup")["SubnetIds"].append(
        {"Fn::ImportValue": {"Fn::Sub": "${StackPrefix}-network-PrivateSubnet3Id"}})),
    "import_from_a_later_stack": (check_exports, import_from_a_later_stack),
    # the faults of the first version (issue 13)
    "replica_of_a_managed_password": (check_replica_source, managed_password),
    "secret_not_attached": (check_replica_source, lambda t: t["database"]["Resources"].pop("MasterSecretAttachment")),
    "mysql_8_0_default": (check_engine_support, lambda t: t["database"]["Parameters"]["EngineVersion"].update(
        Default="8.0", AllowedValues=["8.0", "8.4", "10.11", "11.4"])),
    "extended_support_left_on": (check_engine_support, lambda t: props(t, "database", "Primary").pop(
        "EngineLifecycleSupport")),
    "no_secure_transport": (check_engine_support, lambda t: props(t, "database", "ParameterGroup")[
        "Parameters"].pop("require_secure_transport")),
    "desired_count_while_autoscaling": (check_desired_count, lambda t: props(t, "service", "Service").update(
        DesiredCount={"Ref": "DesiredCount"})),
    "desync_defensive": (check_front_hardening, lambda t: [a.update(Value="defensive") for a in props(
        t, "service", "LoadBalancer")["LoadBalancerAttributes"] if isinstance(a, dict)
        and a.get("Key") == "routing.http.desync_mitigation_mode"]),
    "log_bucket_deleted_with_the_stack": (check_front_hardening, lambda t: res(t, "service", "AccessLogBucket").update(
        DeletionPolicy="Delete")),
    "no_hsts": (check_front_hardening, lambda t: props(t, "service", "HttpsListener").pop("ListenerAttributes")),
    "access_log_bucket_always": (check_front_hardening, lambda t: res(t, "service", "AccessLogBucket").pop(
        "Condition")),
    "no_alarm_rollback": (check_deployment_safety, lambda t: props(t, "service", "Service")[
        "DeploymentConfiguration"].pop("Alarms")),
    "database_without_tls": (check_deployment_safety, lambda t: t["service"]["Parameters"]["DatabaseTls"].update(
        Default="off")),
    "no_s3_endpoint": (check_s3_endpoint, lambda t: t["network"]["Resources"].pop("S3Endpoint")),
    "trusted_proxies_whole_vpc": (check_trusted_proxies, lambda t: [e.update(Value={"Fn::ImportValue": {
        "Fn::Sub": "${StackPrefix}-network-VpcCidr"}}) for e in container(t)["Environment"]
        if e.get("Name") == "TRUSTED_PROXIES"]),
    "trusted_proxies_one_zone": (check_trusted_proxies, lambda t: [e["Value"]["Fn::Join"][1].pop() for e in container(
        t)["Environment"] if e.get("Name") == "TRUSTED_PROXIES"]),
    "webhook_over_http": (check_webhook, lambda t: t["service"]["Parameters"]["WebhookUrl"].update(
        AllowedPattern="^$|^https?://[^\\s,]+$")),
    "webhook_secret_unreadable": (check_webhook, lambda t: props(t, "service", "ExecutionRole")["Policies"][0][
        "PolicyDocument"]["Statement"][0]["Resource"].pop()),
    "webhook_url_not_passed": (check_webhook, lambda t: container(t)["Environment"].remove(next(
        e for e in container(t)["Environment"] if "WEBHOOK_URL" in json.dumps(e)))),
}


BrokenOnPurpose = broken_on_purpose(FAULTS)

if __name__ == "__main__":
    unittest.main()
