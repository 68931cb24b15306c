"""ops/aws/deploy and ops/aws/destroy, end to end, with the real AWS CLI v2
(Debian's awscli, /usr/bin/aws) against moto's ThreadedMotoServer on
127.0.0.1: every CLI call, its order, its arguments and its --query run for
real against an implementation of the AWS APIs, from five empty stacks to a
deployed service, then a destroy that leaves nothing.

What is not AWS here, and why (every shim moto needs):
  1. awscli 2.9 (Debian 12) knows no AWS_ENDPOINT_URL: `aws` on PATH is a
     two-line wrapper adding --endpoint-url of the moto server.
  2. moto's YAML loader drops a short-form tag on a flow mapping
     (`!ImportValue {"Fn::Sub": ...}`) and splits `!GetAtt A.Endpoint.Address`
     at every dot: shim_yaml_tags constructs the mapping and splits once.
  3. moto publishes no exports from a stack made or updated through a change
     set, gives such a stack no view of other stacks' exports, and keeps only
     the parameters given (UsePreviousValue on a defaulted one is a KeyError):
     shim_change_set_exports does what CloudFormation does in the three cases.
  4. moto's CloudFormation has no AWS::SecretsManager::Secret (the stack's
     generated secrets): shim_stack_secrets adds one that creates the secret in
     moto's Secrets Manager, generating the password as GenerateSecretString
     says. It leaves {{resolve:secretsmanager:...}} unresolved and ignores
     AWS::SecretsManager::SecretTargetAttachment (moto warns and skips it).
  5. moto's Ref of an AWS::RDS::DBParameterGroup is an object, not the group's
     name: shim_rds_parameter_group_ref.
  6. moto's target group answers no Fn::GetAtt (TargetGroupFullName):
     shim_target_group_attributes.
  7. moto's ECS service never runs a task (runningCount 0, rollout
     IN_PROGRESS), and has a null desiredCount when DesiredCount is left out:
     shim_ecs_rollout sets moto's MOTO_ECS_SERVICE_RUNNING=1 and CloudFormation's
     default of 1 task, so the deployment is COMPLETED with its task running,
     as ECS reports once the task is healthy.
  8. moto's load balancer has a DNS name nobody answers: deploy's smoke test
     goes to H2LUA_SMOKE_URL, a local HTTP server standing for the site (the
     image itself is run and checked in image_push_test.py). It answers as
     h2lua does (Site.STATES): ready, or with its database unreachable (/readyz
     and / 503), or with no healthy task behind the load balancer (502), and
     the run deploys against each: only the first passes the smoke test.
  9. docker is a recorder: the build and push are image_push_test.py's.
  10. moto deletes a primary's replicas with it, then fails on the replica
     (DBInstanceNotFound), and renders an output whose Condition is false
     (ReplicaEndpointAddress) - so the run has --replica, and
     shim_rds_replica_delete lets the stack delete a replica already gone.
  11. moto's CloudFormation cannot delete an AWS::EC2::VPCEndpoint or an
     AWS::EC2::NatGateway (their routes keep the route tables, and so the
     VPC), and gives up on the VPC while one of the stack's route tables is
     left: shim_vpc_endpoint_delete deletes those, has the VPC take its unused
     route tables with it, and counts a route table, route or association
     already gone as deleted.
  12. moto names the service-linked role of ecs.application-autoscaling.amazonaws.com
     AWSServiceRoleForApplicationAutoScaling_Ecs; IAM names it ..._ECSService, the name deploy
     looks for: shim_autoscaling_role_name. (The run has no such role at first: deploy creates
     it, and the second deploy finds it.)
  13. moto's load balancer keeps none of the template's LoadBalancerAttributes and writes no
     access log: shim_access_log_delivery keeps them and, as an ALB does until it is gone, writes
     a last log file into its access-log bucket as its stack's delete starts. (moto's CloudFormation then
     skips a bucket that is not empty instead of failing the stack, DELETE_FAILED: scripts_test
     has that; here the run has --access-logs and destroy must leave no bucket.)
Left out: the update of the
database stack that turns deletion protection off (moto loses the instance
from the stack on an update with UsePreviousTemplate); the deploy here has
--no-deletion-protection, and scripts_test.States covers that update.
Anything moto does not model (the RDS instance booting, tasks starting,
health checks, ACM, HSTS, the desync mode) is in ops/aws/README.md's list of
what only a real account can prove.
"""

import http.server
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

from cfn import AWS_DIR

AWS_CLI = "/usr/bin/aws"


def aws_cli_v2():
    """The version of Debian's awscli, if it is v2."""
    if not os.path.exists(AWS_CLI):
        return None
    out = subprocess.run([AWS_CLI, "--version"], capture_output=True, text=True).stdout
    match = re.match(r"aws-cli/(2\.\S+)", out)
    return match.group(1) if match else None


def shim_yaml_tags():
    import yaml
    from moto.cloudformation import models, responses, utils

    original = utils.yaml_tag_constructor

    def constructor(loader, tag, node):
        if tag == "!GetAtt" and isinstance(node, yaml.ScalarNode):
            return {"Fn::GetAtt": node.value.split(".", 1)}
        if isinstance(node, yaml.MappingNode):
            key = "Ref" if tag == "!Ref" else f"Fn::{tag[1:]}"
            return {key: loader.construct_mapping(node, deep=True)}
        return original(loader, tag, node)

    utils.yaml_tag_constructor = models.yaml_tag_constructor = responses.yaml_tag_constructor = constructor


def shim_change_set_exports():
    from moto.cloudformation.models import CloudFormationBackend

    create, execute = CloudFormationBackend.create_change_set, CloudFormationBackend.execute_change_set

    def create_change_set(self, *args, **kwargs):
        change_set_id, stack_id = create(self, *args, **kwargs)
        stack = self.stacks[stack_id]
        stack.cross_stack_resources = self.exports
        stack.resource_map.cross_stack_resources = self.exports
        return change_set_id, stack_id

    def execute_change_set(self, change_set_name, stack_name=None):
        execute(self, change_set_name, stack_name)
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()
        for export in stack.exports:
            self.exports[export.name] = export

    CloudFormationBackend.create_change_set = create_change_set
    CloudFormationBackend.execute_change_set = execute_change_set

    # moto keeps only the parameters given, not the defaults CloudFormation filled in, so
    # UsePreviousValue on a defaulted one fails (KeyError); left out, it takes the same default.
    resolve = CloudFormationBackend._resolve_update_parameters

    def resolve_update_parameters(self, instance, incoming_params):
        kept = [p for p in incoming_params if not p.get("UsePreviousValue") or p["ParameterKey"] in instance.parameters]
        return resolve(self, instance, kept)

    CloudFormationBackend._resolve_update_parameters = resolve_update_parameters


def shim_rds_parameter_group_ref():
    # moto's Ref of an AWS::RDS::DBParameterGroup is the Python object, not its name.
    from moto.rds.models import DBParameterGroup

    DBParameterGroup.physical_resource_id = property(lambda self: self.name)


def shim_rds_replica_delete():
    from moto.rds.exceptions import DBInstanceNotFoundError
    from moto.rds.models import DBInstance

    delete = DBInstance.delete

    def delete_if_there(self, account_id, region_name):
        try:
            delete(self, account_id, region_name)
        except DBInstanceNotFoundError:
            if not self.is_replica:
                raise

    DBInstance.delete = delete_if_there


def shim_vpc_endpoint_delete():
    # moto's CloudFormation cannot delete an AWS::EC2::VPCEndpoint: its S3 routes stay, so the
    # route tables, then the VPC, cannot be deleted (DependencyViolation).
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.vpcs import VPCEndPoint

    def delete(self, account_id, region_name):
        ec2_backends[account_id][region_name].delete_vpc_endpoints([self.id])

    VPCEndPoint.delete = delete

    # Nor an AWS::EC2::NatGateway.
    from moto.ec2.models.nat_gateways import NatGateway

    def delete_nat(self, account_id, region_name):
        ec2_backends[account_id][region_name].delete_nat_gateway(self.id)

    NatGateway.delete = delete_nat

    # And moto's stack delete gives up (after its passes) on the VPC while a route table of the
    # stack is still there; CloudFormation deletes in dependency order. The VPC goes last with its
    # route tables that nothing uses any more.
    from moto.ec2.models.vpcs import VPC

    def delete_vpc(self, account_id, region_name):
        backend = ec2_backends[account_id][region_name]
        for table in backend.describe_route_tables(filters={"vpc-id": self.id}):
            if table.main_association_id is None and not table._associations:
                backend.delete_route_table(table.id)
        backend.delete_vpc(self.id)

    VPC.delete = delete_vpc

    # ... and then what the VPC took with it is "not found" when its own turn comes: as in
    # CloudFormation, a resource already gone counts as deleted.
    from moto.cloudformation import parsing

    delete_resource = parsing.ResourceMap._delete_resource

    def delete_if_there(self, parsed_resource, resource_json):
        try:
            delete_resource(self, parsed_resource, resource_json)
        except Exception as e:  # noqa: BLE001 - only the "not found" errors are swallowed
            if type(e).__name__ not in ("InvalidRouteTableIdError", "InvalidSubnetIdError",
                                        "InvalidAssociationIdError", "InvalidRouteError"):
                raise

    parsing.ResourceMap._delete_resource = delete_if_there


def shim_autoscaling_role_name():
    from moto.iam.models import IAMBackend

    create = IAMBackend.create_service_linked_role

    def create_service_linked_role(self, service_name, description, suffix):
        if service_name == "ecs.application-autoscaling.amazonaws.com":
            name = "AWSServiceRoleForApplicationAutoScaling_ECSService"
            if any(role.name == name for role in self.get_roles()):
                from moto.iam.exceptions import IAMException
                raise IAMException("InvalidInput", f"Service role name {name} has been taken in this account, "
                                                   "please try a different suffix.")
            role = create(self, service_name, description, suffix)
            role.name = name
            return role
        return create(self, service_name, description, suffix)

    IAMBackend.create_service_linked_role = create_service_linked_role


def shim_access_log_delivery():
    from moto.cloudformation.models import Stack
    from moto.elbv2.models import FakeLoadBalancer
    from moto.s3.models import s3_backends

    create = FakeLoadBalancer.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        balancer = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        for attribute in cloudformation_json["Properties"].get("LoadBalancerAttributes", []):
            balancer.attrs[attribute["Key"]] = str(attribute["Value"])
        return balancer

    FakeLoadBalancer.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)

    # CloudFormation deletes the load balancer before its bucket (it depends on it); moto deletes
    # in no such order, so the last delivery lands as the stack's delete starts: after anything
    # emptied the bucket, before CloudFormation reaches it.
    delete = Stack.delete

    def delete_after_a_last_delivery(self):
        for balancer in list(self.resource_map._parsed_resources.values()):
            bucket = getattr(balancer, "attrs", {}).get("access_logs.s3.bucket") \
                if isinstance(balancer, FakeLoadBalancer) else None
            if bucket and balancer.attrs.get("access_logs.s3.enabled") == "true":
                backend = s3_backends[self.account_id]["aws"]
                if bucket in backend.buckets:
                    key = (f"{balancer.attrs.get('access_logs.s3.prefix')}/AWSLogs/{self.account_id}/"
                           f"elasticloadbalancing/{self.region_name}/last.log.gz")
                    backend.put_object(bucket, key, b"h2 2026-12-03T01:00:00Z app/last ...\n")
        delete(self)

    Stack.delete = delete_after_a_last_delivery


def shim_target_group_attributes():
    # moto's target group answers no Fn::GetAtt; the service stack reads TargetGroupFullName
    # (alarms, dashboard, scaling). "targetgroup/NAME/ID" is the end of its ARN.
    from moto.elbv2.models import FakeTargetGroup

    def get_cfn_attribute(self, name):
        if name == "TargetGroupFullName":
            return self.arn.split(":")[-1]
        if name == "TargetGroupName":
            return self.name
        if name == "LoadBalancerArns":
            return list(self.load_balancer_arns)
        raise AttributeError(name)

    FakeTargetGroup.get_cfn_attribute = get_cfn_attribute


def shim_stack_secrets():
    """moto's CloudFormation has no AWS::SecretsManager::Secret: this one creates
    the secret in moto's Secrets Manager, with GenerateSecretString honoured
    (length, excluded characters, the JSON template and its key)."""
    import json
    import secrets
    import string

    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.secretsmanager.models import secretsmanager_backends

    class StackSecret(CloudFormationModel):
        __module__ = "moto.secretsmanager.stack_secret"  # moto's model registry reads the service from it

        def __init__(self, arn, account_id, region_name):
            self.arn, self.account_id, self.region_name = arn, account_id, region_name

        @property
        def physical_resource_id(self):
            return self.arn

        @staticmethod
        def cloudformation_type():
            return "AWS::SecretsManager::Secret"

        @staticmethod
        def cloudformation_name_type():
            return "Name"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            **kwargs):
            props = cloudformation_json["Properties"]
            generate = props.get("GenerateSecretString")
            if generate:
                excluded = generate.get("ExcludeCharacters", "")
                if generate.get("ExcludePunctuation"):
                    excluded += string.punctuation
                alphabet = [c for c in string.ascii_letters + string.digits + string.punctuation if c not in excluded]
                password = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
                if "GenerateStringKey" in generate:
                    value = json.loads(generate.get("SecretStringTemplate", "{}"))
                    value[generate["GenerateStringKey"]] = password
                    value = json.dumps(value)
                else:
                    value = password
            else:
                value = props["SecretString"]
            backend = secretsmanager_backends[account_id][region_name]
            created = backend.create_secret(name=resource_name, secret_string=value, secret_binary=None,
                                            description=props.get("Description"), tags=[], kms_key_id=None,
                                            client_request_token=None, replica_regions=[], force_overwrite=False)
            created = json.loads(created) if isinstance(created, str) else created
            return cls(created["ARN"], account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            backend = secretsmanager_backends[account_id][region_name]
            backend.delete_secret(resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)

        def delete(self, account_id, region_name):
            secretsmanager_backends[account_id][region_name].delete_secret(
                self.arn, recovery_window_in_days=None, force_delete_without_recovery=True)

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    return StackSecret


def shim_ecs_rollout():
    """moto's ECS service never runs a task. MOTO_ECS_SERVICE_RUNNING (moto's own switch, see
    moto.ecs.models) makes it report that many running, its deployment COMPLETED once they are as
    many as desired. And moto leaves desiredCount null when DesiredCount is left out (autoscaling);
    CloudFormation creates such a service with 1 task, which autoscaling then raises."""
    from moto.ecs.models import Service

    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "1"
    create = Service.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, *args, **kwargs):
        cloudformation_json["Properties"].setdefault("DesiredCount", 1)
        return create(cls, resource_name, cloudformation_json, *args, **kwargs)

    Service.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


class Site(http.server.BaseHTTPRequestHandler):
    """The site behind the load balancer, as h2lua and the ALB answer it in each state."""

    STATES = {
        # h2lua up, its database reachable
        "ready": {"/readyz": (200, b"ready\n"), "/": (200, b"<!doctype html><html><head><title>Entries</title></head></html>")},
        # h2lua up, its database not reachable (a wrong secret, security group or CA bundle)
        "no-database": {"/readyz": (503, b"database unavailable\n"), "/": (503, b"<title>Service Unavailable</title>")},
        # no healthy target: the ALB itself answers
        "no-target": {"/readyz": (502, b"<title>502 Bad Gateway</title>"), "/": (502, b"<title>502 Bad Gateway</title>")},
    }
    state = "ready"

    def do_GET(self):  # noqa: N802
        status, body = self.STATES[Site.state].get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if b"<" in body else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(aws_cli_v2(), "awscli v2 is not installed at /usr/bin/aws (apt-get install awscli)")
class DeployAgainstMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

        shim_yaml_tags()
        shim_change_set_exports()
        shim_ecs_rollout()
        shim_rds_parameter_group_ref()
        shim_stack_secrets()
        shim_target_group_attributes()
        shim_rds_replica_delete()
        shim_vpc_endpoint_delete()
        shim_autoscaling_role_name()
        shim_access_log_delivery()
        cls.port = free_port()
        cls.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=cls.port, verbose=False)
        cls.moto.start()
        cls.site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
        threading.Thread(target=cls.site.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.site.shutdown()
        cls.site.server_close()
        cls.moto.stop()

    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="h2lua-aws-moto-")
        self.addCleanup(shutil.rmtree, self.scratch)
        bin_dir = os.path.join(self.scratch, "bin")
        os.mkdir(bin_dir)
        self.docker_log = os.path.join(self.scratch, "docker")
        with open(os.path.join(bin_dir, "aws"), "w") as f:
            f.write(f'#!/bin/sh\nexec {AWS_CLI} --endpoint-url http://127.0.0.1:{self.port} "$@"\n')
        with open(os.path.join(bin_dir, "docker"), "w") as f:
            f.write(f'#!/bin/sh\n[ "$1" = login ] && cat >/dev/null\necho "docker $*" >> "{self.docker_log}"\n')
        for tool in ("aws", "docker"):
            os.chmod(os.path.join(bin_dir, tool), 0o755)
        bundle = os.path.join(self.scratch, "rds-ca.pem")
        with open(bundle, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        self.env = {"PATH": bin_dir + ":/usr/bin:/bin", "HOME": self.scratch, "LANG": "C.UTF-8",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "H2LUA_AWS_POLL": "0.2", "H2LUA_SMOKE_TIMEOUT": "20",
                    "H2LUA_RDS_CA": bundle, "H2LUA_SMOKE_URL": f"http://127.0.0.1:{self.site.server_port}"}

    def run_script(self, *args):
        done = subprocess.run([os.path.join(AWS_DIR, args[0]), *args[1:]], env=self.env, cwd=self.scratch,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
        return done.returncode, done.stdout, done.stderr

    def aws(self, *args):
        done = subprocess.run(["aws", *args, "--output", "text"], env=self.env, capture_output=True, text=True,
                              timeout=120)
        self.assertEqual(0, done.returncode, done.stderr)
        return done.stdout.strip()

    def test_deploy_then_destroy(self):
        prefix = "moto" + str(os.getpid() % 10000)
        code, out, err = self.run_script("deploy", "--prefix", prefix, "--tag", "t1", "--builder", "docker",
                                         "--lab-role", "--replica", "--no-deletion-protection", "--access-logs")
        self.assertEqual(0, code, out[-6000:] + err)
        self.assertIn("==> h2lua is at http://", out)
        stacks = self.aws("cloudformation", "describe-stacks", "--query",
                          f"Stacks[?starts_with(StackName, '{prefix}-')].[StackName,StackStatus]").splitlines()
        self.assertEqual(sorted(f"{prefix}-{t}\tCREATE_COMPLETE" for t in
                                ("network", "security", "database", "registry", "service")), sorted(stacks))
        # the exports joined the stacks
        exports = self.aws("cloudformation", "list-exports", "--query", "Exports[].Name").split()
        self.assertIn(f"{prefix}-database-MasterUserSecretArn", exports)
        # the stacks carry their tags
        tags = self.aws("cloudformation", "describe-stacks", "--stack-name", f"{prefix}-database", "--query",
                        "Stacks[0].Tags[].[Key,Value]")
        self.assertIn(f"stack-prefix\t{prefix}", tags)
        self.assertIn("docker build --platform linux/amd64", open(self.docker_log).read())
        self.assertRegex(out, r"(?m)^ +\d+s +\S+ +AWS::CloudFormation::Stack +CREATE_COMPLETE")
        self.assertIn("smoke test passed", out)
        # autoscaling's service-linked role was missing: deploy created it before the service stack
        self.assertIn("created arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling."
                      "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService", out)
        self.assertLess(out.index("created arn:aws:iam"), out.index(f"==> stack {prefix}-service"))
        # the rollout was followed to COMPLETED on the stack's task definition
        self.assertRegex(out, r"(?m)^ +\d+s +COMPLETED +1/1 tasks +arn:aws:ecs:\S+:task-definition/" + prefix + ":1$")

        # a second deploy with nothing new: empty change sets, one forced deployment, the role found
        code, out, err = self.run_script("deploy", "--prefix", prefix, "--tag", "t1", "--builder", "docker")
        self.assertEqual(0, code, out[-6000:] + err)
        self.assertEqual(5, out.count("nothing to change"), out[-6000:])
        self.assertRegex(out, r"(?m)^\+ aws iam get-role .*AWSServiceRoleForApplicationAutoScaling_ECSService .*\n# it exists$")
        self.assertIn("--force-new-deployment", out)

        # the same deploy while the site cannot serve: the smoke test fails it, naming what answered
        for state, status in (("no-database", "503"), ("no-target", "502")):
            Site.state = state
            try:
                env = dict(self.env, H2LUA_SMOKE_TIMEOUT="2")
                done = subprocess.run([os.path.join(AWS_DIR, "deploy"), "--prefix", prefix, "--tag", "t1", "--builder",
                                       "docker"], env=env, cwd=self.scratch, stdin=subprocess.DEVNULL,
                                      capture_output=True, text=True, timeout=900)
            finally:
                Site.state = "ready"
            self.assertEqual(1, done.returncode, f"{state}: " + done.stdout[-3000:] + done.stderr)
            self.assertNotIn("smoke test passed", done.stdout, state)
            self.assertIn(f"smoke test failed after 2s: /readyz answered {status}", done.stderr, state)
            self.assertNotIn("==> h2lua is at http://", done.stdout, state)

        code, out, err = self.run_script("destroy", "--prefix", prefix, "--yes")
        if code != 0:
            for what in (("ec2", "describe-vpc-endpoints", "--query", "VpcEndpoints[].[VpcEndpointId,State]"),
                         ("ec2", "describe-network-interfaces", "--query", "NetworkInterfaces[].[NetworkInterfaceId,Description]"),
                         ("ec2", "describe-nat-gateways", "--query", "NatGateways[].[NatGatewayId,State]"),
                         ("ec2", "describe-subnets", "--query", "Subnets[].[SubnetId,CidrBlock]"),
                         ("ec2", "describe-security-groups", "--query", "SecurityGroups[].[GroupId,GroupName]"),
                         ("ec2", "describe-internet-gateways", "--query", "InternetGateways[].[InternetGatewayId]"),
                         ("ec2", "describe-route-tables", "--query", "RouteTables[].[RouteTableId]"),
                         ("elbv2", "describe-load-balancers", "--query", "LoadBalancers[].[LoadBalancerName]")):
                err += "\n" + " ".join(what[:2]) + ":\n" + self.aws(*what)
        self.assertEqual(0, code, out[-6000:] + err)
        left = self.aws("cloudformation", "describe-stacks", "--query",
                        f"Stacks[?starts_with(StackName, '{prefix}-')].StackName")
        self.assertEqual("", left)
        # the access-log bucket, retained by the stack and filled by the load balancer's last
        # delivery, is removed after the stack
        self.assertEqual("", self.aws("s3api", "list-buckets", "--query",
                                      f"Buckets[?starts_with(Name, '{prefix}-')].Name"))
        self.assertIn(f"==> remove the access-log bucket {prefix}-service-accesslogbucket-", out)


if __name__ == "__main__":
    unittest.main()
