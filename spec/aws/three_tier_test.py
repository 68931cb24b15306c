"""The three-tier rules of ops/aws/, read from the templates themselves.

  internet -> load balancer (80, 443) -> tasks (app port) -> database (3306)

The groups are found by what uses them (the load balancer's, the ECS
service's, the RDS primary's), not by their names, and subnets count as
public when their route table leads to an internet gateway.

Every check returns a list of problems. BrokenOnPurpose, at the bottom,
feeds each check a copy of the templates with one such fault and expects it
to be reported, so no check here can pass vacuously.
"""

import re
import unittest

from cfn import Stacks, broken_on_purpose, container, listed, only

WORLD = ("0.0.0.0/0", "::/0")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL", re.I)


# ---- who is who -----------------------------------------------------------

def roles(stacks):
    """{"lb"|"app"|"database": (tier, security group)} from the resources that use them."""
    lb_tier, _, lb = only(stacks.all_resources("AWS::ElasticLoadBalancingV2::LoadBalancer"), "load balancer")
    svc_tier, _, svc = only(stacks.all_resources("AWS::ECS::Service"), "ECS service")
    db_tier, _, db = only(
        [r for r in stacks.all_resources("AWS::RDS::DBInstance")
         if "SourceDBInstanceIdentifier" not in r[2].get("Properties", {})], "RDS primary")
    svc_groups = svc["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    return {
        "lb": stacks.locate(lb_tier, only(lb["Properties"]["SecurityGroups"], "load balancer group")),
        "app": stacks.locate(svc_tier, only(svc_groups, "service group")),
        "database": stacks.locate(db_tier, only(db["Properties"]["VPCSecurityGroups"], "database group")),
    }


def ingress_rules(stacks):
    """Every inbound rule, inline or stand-alone, as
    {group, protocol, from, to, from_node, cidr, source, where}."""
    rules = []

    def add(tier, group, rule, where):
        rules.append({
            "group": group,
            "protocol": str(rule.get("IpProtocol")),
            "from": stacks.value(tier, rule.get("FromPort")),
            "to": stacks.value(tier, rule.get("ToPort")),
            "from_node": stacks.resolve(tier, rule.get("FromPort")),
            "to_node": stacks.resolve(tier, rule.get("ToPort")),
            "cidr": rule.get("CidrIp") or rule.get("CidrIpv6") or rule.get("SourcePrefixListId"),
            "source": stacks.locate(tier, rule["SourceSecurityGroupId"])
            if "SourceSecurityGroupId" in rule else None,
            "where": where,
        })

    for tier, name, sg in stacks.all_resources("AWS::EC2::SecurityGroup"):
        for rule in listed(sg.get("Properties", {}).get("SecurityGroupIngress")):
            add(tier, (tier, name), rule, f"{tier}/{name}")
    for tier, name, res in stacks.all_resources("AWS::EC2::SecurityGroupIngress"):
        props = res.get("Properties", {})
        add(tier, stacks.locate(tier, props.get("GroupId")), props, f"{tier}/{name}")
    return rules


def origin(rule):
    """Where a rule admits traffic from, for a message."""
    return rule["cidr"] or "/".join(rule["source"] or ("?", "?"))


def rules_into(stacks, role):
    group = roles(stacks)[role]
    return [r for r in ingress_rules(stacks) if r["group"] == group]


def app_port(stacks):
    """Where the container's port comes from (a Target) and its value."""
    tier, _, task = only(stacks.all_resources("AWS::ECS::TaskDefinition"), "task definition")
    definition = only(task["Properties"]["ContainerDefinitions"], "container")
    node = only(definition["PortMappings"], "port mapping")["ContainerPort"]
    return stacks.resolve(tier, node), stacks.value(tier, node)


def subnets_of(stacks, tier, nodes):
    return {stacks.locate(tier, n) for n in listed(nodes)}


# ---- the checks -------------------------------------------------------------

def check_database_admits_only_mysql_from_app(stacks):
    app = roles(stacks)["app"]
    rules = rules_into(stacks, "database")
    problems = [] if rules else ["the database group admits nothing (the app cannot reach it)"]
    for r in rules:
        if (r["protocol"], r["from"], r["to"], r["source"], r["cidr"]) != ("tcp", 3306, 3306, app, None):
            problems.append(f"{r['where']}: database admits {r['protocol']} {r['from']}-{r['to']} "
                            f"from {origin(r)}; only tcp 3306 from the app group is allowed")
    return problems


def check_app_admits_only_app_port_from_lb(stacks):
    lb = roles(stacks)["lb"]
    port_source, port = app_port(stacks)
    rules = rules_into(stacks, "app")
    problems = [] if rules else ["the app group admits nothing (the load balancer cannot reach it)"]
    for r in rules:
        if r["protocol"] != "tcp" or r["source"] != lb or r["cidr"] is not None:
            problems.append(f"{r['where']}: app admits {r['protocol']} from {origin(r)}; "
                            "only tcp from the load balancer group is allowed")
        if r["from_node"] != port_source or r["to_node"] != port_source or r["from"] != port:
            problems.append(f"{r['where']}: app admits ports {r['from']}-{r['to']}; only the container port "
                            f"({port}, {port_source.kind} {port_source.tier}.{port_source.name}) is allowed")
    if port != 8080:
        problems.append(f"the app port defaults to {port}, not 8080")
    return problems


def check_lb_admits_only_web_from_anywhere(stacks):
    rules = rules_into(stacks, "lb")
    problems = []
    for r in rules:
        if r["protocol"] != "tcp" or r["from"] != r["to"] or r["from"] not in (80, 443) or r["cidr"] not in WORLD:
            problems.append(f"{r['where']}: load balancer admits {r['protocol']} {r['from']}-{r['to']} from "
                            f"{origin(r)}; only tcp 80 and 443 from anywhere are allowed")
    for port in (80, 443):
        if not any(r["from"] == port for r in rules):
            problems.append(f"the load balancer does not admit port {port}")
    return problems


def check_nothing_else_open(stacks):
    groups = set(roles(stacks).values())
    problems = [f"{tier}/{name}: a security group that is none of load balancer, app, database"
                for tier, name, _ in stacks.all_resources("AWS::EC2::SecurityGroup") if (tier, name) not in groups]
    problems += [f"{r['where']}: a rule into {'/'.join(r['group'])}, which is none of the three groups"
                 for r in ingress_rules(stacks) if r["group"] not in groups]
    return problems


def check_only_lb_is_internet_facing(stacks):
    problems = []
    public, private = stacks.public_subnets(), stacks.private_subnets()
    if len(public) != 2 or len(private) != 2:
        problems.append(f"expected 2 public and 2 private subnets, found {len(public)} and {len(private)}")
    for kind in ("AWS::EC2::Instance", "AWS::ElasticLoadBalancing::LoadBalancer", "AWS::EC2::NetworkInterface"):
        problems += [f"{t}/{n}: {kind} is not part of the design" for t, n, _ in stacks.all_resources(kind)]
    for tier, name, lb in stacks.all_resources("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        props = lb["Properties"]
        if props.get("Scheme") != "internet-facing":
            problems.append(f"{tier}/{name}: the load balancer is not internet-facing")
        if not subnets_of(stacks, tier, props.get("Subnets")) <= public:
            problems.append(f"{tier}/{name}: the load balancer is not in the public subnets")
    for tier, name, svc in stacks.all_resources("AWS::ECS::Service"):
        vpc = svc["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        if vpc.get("AssignPublicIp") != "DISABLED":
            problems.append(f"{tier}/{name}: the tasks get a public IP")
        if subnets_of(stacks, tier, vpc.get("Subnets")) != private:
            problems.append(f"{tier}/{name}: the tasks are not in (both of) the private subnets")
    for tier, name, db in stacks.all_resources("AWS::RDS::DBInstance"):
        if str(db["Properties"].get("PubliclyAccessible")).lower() != "false":
            problems.append(f"{tier}/{name}: the database is not PubliclyAccessible: false")
    for tier, name, group in stacks.all_resources("AWS::RDS::DBSubnetGroup"):
        if subnets_of(stacks, tier, group["Properties"].get("SubnetIds")) != private:
            problems.append(f"{tier}/{name}: the database subnets are not the private subnets")
    for tier, name, subnet in stacks.all_resources("AWS::EC2::Subnet"):
        if str(stacks.value(tier, subnet["Properties"].get("MapPublicIpOnLaunch"))).lower() == "true":
            problems.append(f"{tier}/{name}: the subnet gives public IPs to what starts in it")
    return problems


def check_no_plain_secrets(stacks):
    problems = []
    for tier in stacks.templates:
        for name, param in stacks.parameters(tier).items():
            if str(param.get("NoEcho")).lower() == "true" or SECRET_NAME.search(name):
                problems.append(f"{tier}: parameter {name} carries a secret; secrets come from Secrets Manager")
    for tier, name, db in stacks.all_resources("AWS::RDS::DBInstance"):
        props = db["Properties"]
        if "SourceDBInstanceIdentifier" in props:
            continue  # a replica has the primary's users
        if master_secret(stacks, tier, props) is None:
            problems.append(f"{tier}/{name}: MasterUserPassword is not resolved from a generated secret of the stack")
    for tier, name, task in stacks.all_resources("AWS::ECS::TaskDefinition"):
        for container in task["Properties"]["ContainerDefinitions"]:
            for env in listed(container.get("Environment")):
                if SECRET_NAME.search(env["Name"]):
                    problems.append(f"{tier}/{name}: {env['Name']} is in the environment; it belongs in Secrets")
            secrets = {s["Name"]: s["ValueFrom"] for s in listed(container.get("Secrets"))}
            problems += check_database_password(stacks, tier, secrets.get("DATABASE_PASSWORD"))
            problems += check_secret_key(stacks, tier, secrets.get("SECRET_KEY"))
    return problems


RESOLVE = re.compile(r"\{\{resolve:secretsmanager:\$\{(\w+)\}:SecretString:password\}\}")


def master_secret(stacks, tier, props):
    """The logical id of the AWS::SecretsManager::Secret of tier whose generated
    password is the instance's MasterUserPassword (a dynamic reference); None
    when the password is anything else."""
    value = props.get("MasterUserPassword")
    match = RESOLVE.fullmatch(value.get("Fn::Sub", "")) if isinstance(value, dict) and \
        isinstance(value.get("Fn::Sub"), str) else None
    if not match:
        return None
    secret = stacks.resources(tier).get(match.group(1), {})
    generated = secret.get("Properties", {}).get("GenerateSecretString", {})
    if secret.get("Type") != "AWS::SecretsManager::Secret" or "SecretString" in secret.get("Properties", {}) \
            or generated.get("GenerateStringKey") != "password":
        return None
    return match.group(1)


def check_database_password(stacks, tier, value_from):
    """DATABASE_PASSWORD is the "password" key of the secret RDS manages for the primary."""
    if value_from is None:
        return ["DATABASE_PASSWORD is not among the container's Secrets"]
    template, variables = (value_from.get("Fn::Sub") or [None, {}]) if isinstance(value_from, dict) else (None, {})
    match = re.fullmatch(r"\$\{(\w+)\}:password::", template or "")
    target = stacks.resolve(tier, variables.get(match.group(1))) if match else None
    primary = stacks.props("database", "Primary")
    if not target or target.kind != "resource" or target.tier != "database" or target.value \
            or target.name != master_secret(stacks, "database", primary):
        return ["DATABASE_PASSWORD does not come from the master user secret of the database (key password)"]
    return []


def check_secret_key(stacks, tier, value_from):
    """SECRET_KEY is a Secrets Manager secret the stack generates."""
    if value_from is None:
        return ["SECRET_KEY is not among the container's Secrets"]
    target = stacks.resolve(tier, value_from)
    secret = stacks.resource(target.tier, target.name) if target.kind == "resource" else {}
    props = secret.get("Properties", {})
    if secret.get("Type") != "AWS::SecretsManager::Secret" or "GenerateSecretString" not in props \
            or "SecretString" in props:
        return ["SECRET_KEY does not come from a generated Secrets Manager secret"]
    return []


class ThreeTier(unittest.TestCase):
    """The rules hold for the templates as written (every Fn::If branch at
    once) and as deployed with every option off (the defaults) or on."""

    @classmethod
    def setUpClass(cls):
        written = Stacks.load()
        cls.variants = {"as written": written, "defaults": written.render(), "all options on": written.render({
            "network": {"NatGateways": "per-az"},
            "database": {"ReadReplica": "true", "MultiAZ": "true"},
            "service": {"ReadReplica": "true", "ExistingRoleName": "LabRole",
                        "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}})}

    def assertHolds(self, check):
        for variant, stacks in self.variants.items():
            with self.subTest(variant):
                self.assertEqual([], check(stacks))

    def test_database_admits_only_mysql_from_the_app(self):
        self.assertHolds(check_database_admits_only_mysql_from_app)

    def test_app_admits_only_its_port_from_the_load_balancer(self):
        self.assertHolds(check_app_admits_only_app_port_from_lb)

    def test_load_balancer_admits_only_80_and_443(self):
        self.assertHolds(check_lb_admits_only_web_from_anywhere)

    def test_nothing_else_is_open_inward(self):
        self.assertHolds(check_nothing_else_open)

    def test_only_the_load_balancer_is_internet_facing(self):
        self.assertHolds(check_only_lb_is_internet_facing)

    def test_no_secret_is_a_parameter_or_environment_value(self):
        self.assertHolds(check_no_plain_secrets)


# ---- each check catches what it is for --------------------------------------

def sg(t, name):
    return t["security"]["Resources"][name]["Properties"]


def add_group(t):
    t["service"]["Resources"]["DebugGroup"] = {"Type": "AWS::EC2::SecurityGroup", "Properties": {
        "GroupDescription": "debug", "SecurityGroupIngress": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}]}}


def move_tasks_to_public(t):
    t["service"]["Resources"]["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] = [
        {"Fn::ImportValue": {"Fn::Sub": "${StackPrefix}-network-PublicSubnet1Id"}},
        {"Fn::ImportValue": {"Fn::Sub": "${StackPrefix}-network-PublicSubnet2Id"}}]


FAULTS = {
    # name: (check, fault)
    "database_open_to_the_world": (check_database_admits_only_mysql_from_app, lambda t: sg(
        t, "DatabaseSecurityGroup").setdefault("SecurityGroupIngress", []).append(
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "CidrIp": "0.0.0.0/0"})),
    "database_open_to_the_load_balancer": (check_database_admits_only_mysql_from_app, lambda t: t[
        "security"]["Resources"]["DatabaseFromApp"]["Properties"].update(
        SourceSecurityGroupId={"Fn::GetAtt": ["LoadBalancerSecurityGroup", "GroupId"]})),
    "database_open_on_all_ports": (check_database_admits_only_mysql_from_app, lambda t: t[
        "security"]["Resources"]["DatabaseFromApp"]["Properties"].update(FromPort=0, ToPort=65535)),
    "app_open_on_all_ports": (check_app_admits_only_app_port_from_lb, lambda t: t[
        "security"]["Resources"]["AppFromLoadBalancer"]["Properties"].update(FromPort=0, ToPort=65535)),
    "app_open_to_the_world": (check_app_admits_only_app_port_from_lb, lambda t: sg(
        t, "AppSecurityGroup").setdefault("SecurityGroupIngress", []).append(
        {"IpProtocol": "tcp", "FromPort": {"Ref": "AppPort"}, "ToPort": {"Ref": "AppPort"}, "CidrIp": "0.0.0.0/0"})),
    "app_port_not_the_container_port": (check_app_admits_only_app_port_from_lb, lambda t: container(
        t)["PortMappings"][0].update(ContainerPort=9000)),
    "load_balancer_open_on_ssh": (check_lb_admits_only_web_from_anywhere, lambda t: sg(
        t, "LoadBalancerSecurityGroup")["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"})),
    "load_balancer_without_https": (check_lb_admits_only_web_from_anywhere, lambda t: sg(
        t, "LoadBalancerSecurityGroup")["SecurityGroupIngress"].pop()),
    "a_fourth_open_group": (check_nothing_else_open, add_group),
    "internal_load_balancer": (check_only_lb_is_internet_facing, lambda t: t["service"]["Resources"][
        "LoadBalancer"]["Properties"].update(Scheme="internal")),
    "tasks_with_public_ip": (check_only_lb_is_internet_facing, lambda t: t["service"]["Resources"]["Service"][
        "Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"].update(AssignPublicIp="ENABLED")),
    "tasks_in_public_subnets": (check_only_lb_is_internet_facing, move_tasks_to_public),
    "public_database": (check_only_lb_is_internet_facing, lambda t: t["database"]["Resources"]["Primary"][
        "Properties"].update(PubliclyAccessible=True)),
    "public_replica": (check_only_lb_is_internet_facing, lambda t: t["database"]["Resources"]["Replica"][
        "Properties"].pop("PubliclyAccessible")),
    "private_subnet_routed_to_internet": (check_only_lb_is_internet_facing, lambda t: t["network"]["Resources"][
        "PrivateSubnet1Routes"]["Properties"].update(RouteTableId={"Ref": "PublicRouteTable"})),
    "password_parameter": (check_no_plain_secrets, lambda t: t["database"]["Parameters"].update(
        DBPassword={"Type": "String", "NoEcho": True})),
    "master_password_in_template": (check_no_plain_secrets, lambda t: t["database"]["Resources"]["Primary"][
        "Properties"].update(MasterUserPassword="changeme")),
    "master_password_from_a_written_secret": (check_no_plain_secrets, lambda t: t["database"]["Resources"][
        "MasterSecret"]["Properties"].update(SecretString='{"username": "admin", "password": "changeme"}')),
    "secret_key_in_environment": (check_no_plain_secrets, lambda t: container(t)["Environment"].append(
        {"Name": "SECRET_KEY", "Value": "dev"})),
    "password_from_another_secret": (check_no_plain_secrets, lambda t: container(t)["Secrets"][0].update(
        ValueFrom={"Ref": "SecretKey"})),
    "secret_key_written_in_template": (check_no_plain_secrets, lambda t: t["service"]["Resources"]["SecretKey"][
        "Properties"].update(SecretString="dev")),
}


BrokenOnPurpose = broken_on_purpose(FAULTS)

if __name__ == "__main__":
    unittest.main()
