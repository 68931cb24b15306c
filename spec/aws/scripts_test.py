"""ops/aws/deploy and ops/aws/destroy: dry runs, and the state handling.

They run with a bare environment: no AWS credentials or settings, HOME in a
scratch directory, and a PATH whose only aws, docker and buildah are stubs
that record being called and fail. A dry run must print the whole plan, in
order, and call none of them.

The state tests (class States) put fake_aws.py in place of aws: stacks left in
ROLLBACK_COMPLETE, a rollout rolled back, an empty change set, a site that
does not answer; the smoke test is the real curl against a local HTTP server.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

from cfn import AWS_DIR, HERE

CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0f0f0f-1111-2222-3333-444455556666"

STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
exit 97
"""


class Scripts(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="h2lua-aws-test-")
        self.addCleanup(shutil.rmtree, self.scratch)
        self.log = os.path.join(self.scratch, "called")
        self.stubs = os.path.join(self.scratch, "bin")
        os.mkdir(self.stubs)
        for tool in ("aws", "docker", "buildah"):
            path = os.path.join(self.stubs, tool)
            with open(path, "w") as f:
                f.write(STUB.format(log=self.log))
            os.chmod(path, 0o755)
        # /usr/bin without the real aws, docker, buildah and podman
        self.system = os.path.join(self.scratch, "system")
        os.mkdir(self.system)
        for directory in ("/usr/bin", "/bin"):
            for tool in os.listdir(directory):
                link = os.path.join(self.system, tool)
                if tool not in ("aws", "docker", "buildah", "podman") and not os.path.lexists(link):
                    os.symlink(os.path.join(directory, tool), link)

    def run_script(self, name, *args, stubs=True, stdin=subprocess.DEVNULL):
        """(exit code, stdout, stderr) of ops/aws/NAME ARGS in the bare environment."""
        path = (self.stubs + ":" if stubs else "") + self.system
        env = {"PATH": path, "HOME": self.scratch, "LANG": "C.UTF-8"}
        done = subprocess.run([os.path.join(AWS_DIR, name), *args], env=env, cwd=self.scratch,
                              stdin=stdin, capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout, done.stderr

    def called(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return f.read().splitlines()

    def commands(self, stdout):
        """The commands a dry run printed (lines "+ ..."), without the "+ "."""
        return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]

    def assertInOrder(self, commands, patterns):
        """Each pattern matches one command, in this order, and no command is left over."""
        self.assertEqual(len(patterns), len(commands),
                         "commands printed:\n" + "\n".join(commands))
        for pattern, command in zip(patterns, commands):
            self.assertRegex(command, pattern)

    # ---- deploy -------------------------------------------------------------

    def test_deploy_dry_run_prints_the_whole_plan_in_order(self):
        code, out, err = self.run_script("deploy", "--dry-run", "--tag", "abc123", "--builder", "docker")
        self.assertEqual(0, code, err)
        change_set = (r"^aws cloudformation create-change-set --region us-east-1 --stack-name h2lua-{0} "
                      r"--change-set-name deploy-\d+ --change-set-type UPDATE --template-body file://\S*/{0}\.yaml "
                      r"{1}--tags Key=project,Value=h2lua Key=stack-prefix,Value=h2lua "
                      r"--parameters ParameterKey=StackPrefix,ParameterValue=h2lua{2} --query Id --output text$")
        execute = r"^aws cloudformation execute-change-set --region us-east-1 --stack-name h2lua-{} --change-set-name deploy-\d+$"
        uri = r"123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com/h2lua"
        steps = [c for c in self.commands(out) if re.match(
            r"aws cloudformation (create|execute)-change-set|aws ecr|docker|curl|aws ecs", c)]
        self.assertInOrder(steps, [
            change_set.format("network", "", ""), execute.format("network"),
            change_set.format("security", "", ""), execute.format("security"),
            change_set.format("database", "", ""), execute.format("database"),
            change_set.format("registry", "", ""), execute.format("registry"),
            r"^curl --fail .* https://truststore\.pki\.rds\.amazonaws\.com/global/global-bundle\.pem$",
            r"^aws ecr get-login-password --region us-east-1 \| docker login --username AWS --password-stdin "
            r"123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com$",
            rf"^docker build --platform linux/amd64 --file \S*/image/Dockerfile --tag {uri}:abc123 \S+$",
            rf"^docker push {uri}:abc123$",
            change_set.format("service", "--capabilities CAPABILITY_IAM ", " ParameterKey=ImageTag,ParameterValue=abc123"),
            execute.format("service"),
            # the service stack changed: no second, forced deployment
            # no waiter: the rollout is followed until it is no longer IN_PROGRESS
            r"^aws ecs describe-services .*--query 'services\[0\]\.deployments\[\?status==`PRIMARY`\] \| "
            r"\[0\]\.\[rolloutState,taskDefinition,runningCount,desiredCount\]'",
            r"^curl .* http://\S+elb\.amazonaws\.com/readyz$",
            r"^curl .* http://\S+elb\.amazonaws\.com/$",
        ])
        self.assertRegex(out.splitlines()[-1], r"h2lua is at http://\S+elb\.amazonaws\.com$")
        self.assertEqual([], self.called())

    def test_deploy_dry_run_needs_no_aws_cli_and_no_builder(self):
        code, out, err = self.run_script("deploy", "--dry-run", "--tag", "t1", stubs=False)
        self.assertEqual(0, code, err)
        # shown, though there may be nothing to build with: docker, or buildah where it is installed
        self.assertRegex(out, r"(?m)^\+ (docker|buildah( \S+)*) build ")

    def test_deploy_dry_run_with_buildah(self):
        code, out, err = self.run_script("deploy", "--dry-run", "--tag", "t1", "--builder", "buildah",
                                         "--build-arg", "BASE=localhost/debian-base:bookworm")
        self.assertEqual(0, code, err)
        commands = self.commands(out)
        build = [c for c in commands if "buildah" in c]
        self.assertRegex(build[0], r"\| buildah login --username AWS --password-stdin \S+$")
        self.assertRegex(build[1], r"^buildah build --format docker --platform linux/amd64 .*--file \S*/image/Dockerfile --tag \S+:t1 "
                                   r"--build-arg BASE=localhost/debian-base:bookworm \S+$")
        self.assertRegex(build[2], r"^buildah push (\S+:t1) docker://\1$")
        self.assertFalse(any(c.startswith("docker ") for c in commands))
        self.assertEqual([], self.called())

    def test_deploy_options_reach_the_right_stacks(self):
        code, out, err = self.run_script(
            "deploy", "--dry-run", "--builder", "docker", "--region", "eu-west-1", "--prefix", "demo",
            "--tag", "v2", "--certificate-arn", CERT, "--lab-role", "--replica", "--multi-az", "--nat-per-az",
            "--no-deletion-protection", "--alarm-email", "ops@example.com", "--engine", "mariadb",
            "--access-logs", "--exec", "--set", "database.DBInstanceClass=db.t3.small")
        self.assertEqual(0, code, err)
        deploys = {re.search(r"--stack-name demo-(\w+)", c).group(1): c for c in self.commands(out)
                   if c.startswith("aws cloudformation create-change-set")}
        self.assertEqual({"network", "security", "database", "registry", "service"}, set(deploys))
        self.assertTrue(all("--region eu-west-1" in c for c in self.commands(out) if c.startswith("aws ")))
        overrides = {tier: re.findall(r"ParameterKey=(\w+),ParameterValue=(\S*)", c) for tier, c in deploys.items()}
        overrides = {tier: [f"{k}={v}" for k, v in kv] for tier, kv in overrides.items()}
        self.assertEqual(["StackPrefix=demo", "NatGateways=per-az"], overrides["network"])
        self.assertEqual(["StackPrefix=demo"], overrides["security"])
        # the dry run takes the stacks to exist: --engine is checked against the stack's, not passed
        self.assertEqual(sorted(["StackPrefix=demo", "MultiAZ=true", "DeletionProtection=false", "ReadReplica=true",
                                 "DBInstanceClass=db.t3.small"]),
                         sorted(overrides["database"]))
        self.assertIn("demo-database runs mariadb already", out)
        self.assertEqual(sorted(["StackPrefix=demo", "CertificateArn=" + CERT, "ExistingRoleName=LabRole",
                                 "AlarmEmail=ops@example.com", "ReadReplica=true", "ImageTag=v2",
                                 "AccessLogs=true", "ExecuteCommand=true"]),
                         sorted(overrides["service"]))
        self.assertEqual([], self.called())

    def test_deploy_removing_the_replica_detaches_the_service_first(self):
        code, out, err = self.run_script("deploy", "--dry-run", "--builder", "docker", "--tag", "t1", "--no-replica")
        self.assertEqual(0, code, err)
        deploys = [re.search(r"--stack-name h2lua-(\w+)", c).group(1) for c in self.commands(out)
                   if c.startswith("aws cloudformation create-change-set")]
        self.assertEqual(["network", "security", "service", "database", "registry", "service"], deploys)
        first_service = [c for c in self.commands(out) if "create-change-set" in c and "h2lua-service" in c][0]
        self.assertIn("--parameters ParameterKey=StackPrefix,ParameterValue=h2lua "
                      "ParameterKey=ReadReplica,ParameterValue=false --query", first_service)

    def test_deploy_refuses_bad_input_before_calling_anything(self):
        for args, message in ((["--prefix", "Bad_Prefix"], "stack prefix"), (["--tag", "a:b"], "not a valid ECR tag"),
                              (["--bogus"], "unknown argument"), (["--set", "nowhere.X=1"], "--set takes"),
                              (["--builder", "kaniko"], "--builder must be"), (["--engine", "oracle"], "--engine must be"),
                              (["--alarm-email", "a@b,c"], "cannot contain a comma"),
                              (["--self-signed", "--certificate-arn", CERT], "--self-signed excludes"),
                              (["--set", "service.NoSuchThing=1"], "has no parameter NoSuchThing")):
            with self.subTest(args=args):
                code, _, err = self.run_script("deploy", "--dry-run", *args)
                self.assertNotEqual(0, code)
                self.assertIn(message, err)
        self.assertEqual([], self.called())

    def test_deploy_names_what_is_missing(self):
        # Not a dry run: without an AWS CLI it must stop at once and say so.
        code, _, err = self.run_script("deploy", "--tag", "t1", stubs=False)
        self.assertNotEqual(0, code)
        self.assertIn("missing: the AWS CLI", err)
        # With a CLI that has no credentials (the stub fails), it names those.
        code, _, err = self.run_script("deploy", "--tag", "t1")
        self.assertNotEqual(0, code)
        self.assertIn("missing: AWS credentials", err)
        # (aws configure get region only reads ~/.aws/config.)
        self.assertEqual(["aws configure get region", "aws sts get-caller-identity --query Account --output text"],
                         self.called())

    def test_deploy_help(self):
        code, out, _ = self.run_script("deploy", "--help")
        self.assertEqual(0, code)
        self.assertTrue(out.startswith("Usage: ops/aws/deploy"))

    # ---- destroy ------------------------------------------------------------

    def test_destroy_dry_run_deletes_in_reverse_order(self):
        code, out, err = self.run_script("destroy", "--dry-run", "--prefix", "demo", "--region", "eu-west-1")
        self.assertEqual(0, code, err)
        delete = r"^aws cloudformation delete-stack --region eu-west-1 --stack-name demo-{}$"
        steps = [c for c in self.commands(out) if re.match(r"aws (cloudformation (delete|update)-stack|rds|logs)", c)]
        self.assertInOrder(steps, [
            delete.format("service"), delete.format("registry"),
            r"^aws cloudformation update-stack --region eu-west-1 --stack-name demo-database --use-previous-template "
            r"--tags Key=project,Value=h2lua Key=stack-prefix,Value=demo "
            r"--parameters ParameterKey=StackPrefix,ParameterValue=demo ParameterKey=DeletionProtection,ParameterValue=false",
            delete.format("database"), delete.format("security"), delete.format("network"),
            r"^aws rds describe-db-snapshots --region eu-west-1 ",
            r"^aws logs describe-log-groups --region eu-west-1 --log-group-name-prefix /aws/rds/instance/ ",
        ])
        self.assertEqual([], self.called())

    def test_destroy_dry_run_needs_no_aws_cli(self):
        code, out, err = self.run_script("destroy", "--dry-run", stubs=False)
        self.assertEqual(0, code, err)
        self.assertIn("delete-stack --region us-east-1 --stack-name h2lua-network", out)

    def test_destroy_asks_before_deleting(self):
        # Not a dry run, no --yes, no terminal: it must refuse before any AWS call.
        code, _, err = self.run_script("destroy")
        self.assertNotEqual(0, code)
        self.assertIn("--yes", err)
        self.assertEqual(["aws configure get region"], self.called())  # reads ~/.aws/config only

    def test_scripts_are_executable_bash_with_strict_mode(self):
        for name in ("deploy", "destroy"):
            path = os.path.join(AWS_DIR, name)
            self.assertTrue(os.access(path, os.X_OK), f"{name} is not executable")
            with open(path) as f:
                text = f.read()
            self.assertTrue(text.startswith("#!/usr/bin/env bash\n# Usage: ops/aws/" + name))
            self.assertIn("\nset -euo pipefail\n", text)
            check = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
            self.assertEqual(0, check.returncode, check.stderr)


class Site(http.server.BaseHTTPRequestHandler):
    """The load balancer's side of the smoke test: /readyz answers self.server.ready."""

    def do_GET(self):  # noqa: N802
        code = self.server.ready if self.path == "/readyz" else 200
        body = b"<!doctype html><title>Entries</title><p>entries</p>" if self.path == "/" else b"ok"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class States(unittest.TestCase):
    """deploy and destroy against fake_aws.py, for the states a real account can leave a stack in."""

    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="h2lua-aws-state-")
        self.addCleanup(shutil.rmtree, self.scratch)
        self.bin = os.path.join(self.scratch, "bin")
        os.mkdir(self.bin)
        self.log = os.path.join(self.scratch, "called")
        with open(os.path.join(self.bin, "aws"), "w") as f:
            # -S: no site-packages, a third of the start-up time of each of the many calls
            f.write(f'#!/bin/sh\nexec "{sys.executable}" -S "{os.path.join(HERE, "fake_aws.py")}" "$@"\n')
        with open(os.path.join(self.bin, "docker"), "w") as f:
            f.write(f'#!/bin/sh\n[ "$1" = login ] && cat >/dev/null\necho "docker $*" >> "{self.log}"\n')
        for tool in ("aws", "docker"):
            os.chmod(os.path.join(self.bin, tool), 0o755)
        self.bundle = os.path.join(self.scratch, "rds-ca.pem")
        with open(self.bundle, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
        self.server.ready = 200
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)

    def run_with(self, state, name, *args, env=None):
        state = dict(state, log=self.log)
        path = os.path.join(self.scratch, "state.json")
        with open(path, "w") as f:
            json.dump(state, f)
        env = {"PATH": self.bin + ":/usr/bin:/bin", "HOME": self.scratch, "LANG": "C.UTF-8",
               "FAKE_AWS_STATE": path, "H2LUA_AWS_POLL": "0.1", "H2LUA_SMOKE_TIMEOUT": "2",
               "H2LUA_AWS_BACKOFF": "0.1", "H2LUA_ROLE_SETTLE": "0", "H2LUA_CERT_TIMEOUT": "5",
               "H2LUA_RDS_CA": self.bundle, "H2LUA_SMOKE_URL": f"http://127.0.0.1:{self.server.server_port}",
               **(env or {})}
        extra = ("--tag", "t1", "--builder", "docker") if name == "deploy" else ("--yes",)
        done = subprocess.run([os.path.join(AWS_DIR, name), *extra, *args], env=env, cwd=self.scratch,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        with open(path) as f:
            self.state = json.load(f)
        return done.returncode, done.stdout, done.stderr

    def calls(self, pattern=""):
        with open(self.log) as f:
            return [c for c in f.read().splitlines() if re.search(pattern, c)]

    def test_deploy_creates_every_stack_and_passes_the_smoke_test(self):
        code, out, err = self.run_with({}, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertEqual({f"h2lua-{t}": "CREATE_COMPLETE" for t in ("network", "security", "database", "registry",
                                                                     "service")}, self.state["stacks"])
        self.assertIn("smoke test passed", out)
        self.assertEqual([], self.calls("force-new-deployment"))  # the stack update rolled the tasks
        self.assertTrue(out.rstrip().endswith("h2lua is at http://h2lua-0123456789.us-east-1.elb.amazonaws.com"))

    def test_deploy_deletes_a_rolled_back_stack_and_creates_it_again(self):
        code, out, err = self.run_with({"stacks": {"h2lua-network": "ROLLBACK_COMPLETE"}}, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertIn("h2lua-network is in ROLLBACK_COMPLETE", out)
        network = self.calls(r"--stack-name h2lua-network( |$)")
        deleted = network.index(next(c for c in network if "delete-stack" in c))
        created = network.index(next(c for c in network if "create-change-set" in c))
        self.assertLess(deleted, created)
        self.assertIn("--change-set-type CREATE", network[created])
        self.assertEqual("CREATE_COMPLETE", self.state["stacks"]["h2lua-network"])

    def test_deploy_stops_on_a_failed_stack_with_the_first_failure(self):
        reason = "DBInstance h2lua-db: Cannot find version 8.0.99 for mysql"
        code, out, err = self.run_with({"fail": {"h2lua-database": f"Primary|AWS::RDS::DBInstance|{reason}"}}, "deploy")
        self.assertEqual(1, code)
        self.assertIn(f"stack h2lua-database: ROLLBACK_COMPLETE; first failure: Primary (AWS::RDS::DBInstance): "
                      f"{reason}", err)
        self.assertRegex(out, r"(?m)^ +\d+s +Primary +AWS::RDS::DBInstance +CREATE_FAILED +" + re.escape(reason))
        self.assertEqual([], self.calls("docker build|--stack-name h2lua-service"))

    def test_deploy_fails_when_the_rollout_was_rolled_back(self):
        code, out, err = self.run_with({"rollout": "FAILED"}, "deploy")
        self.assertEqual(1, code, out)
        self.assertIn("deployment failed and was rolled back", err)
        self.assertIn("circuit breaker", err)  # the service's events are shown
        self.assertNotIn("h2lua is at", out)

    def test_deploy_fails_when_the_service_runs_an_older_task_definition(self):
        code, out, err = self.run_with({"running": "arn:aws:ecs:us-east-1:123456789012:task-definition/h2lua:6"},
                                       "deploy")
        self.assertEqual(1, code, out)
        self.assertIn("runs arn:aws:ecs:us-east-1:123456789012:task-definition/h2lua:6", err)

    def test_deploy_fails_when_the_smoke_test_fails(self):
        self.server.ready = 503
        code, out, err = self.run_with({}, "deploy")
        self.assertEqual(1, code, out)
        self.assertIn("smoke test failed after 2s: /readyz answered 503", err)
        self.assertIn("Target.ResponseCodeMismatch", err)  # target health
        self.assertIn("database unreachable", err)  # the tasks' last log lines
        self.assertNotIn("h2lua is at", out)

    def test_deploy_forces_a_new_deployment_only_when_nothing_changed(self):
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks, "empty": list(stacks)}, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertEqual(1, len(self.calls("ecs update-service .*--force-new-deployment")))
        self.assertEqual([], self.calls("execute-change-set"))
        code, out, err = self.run_with({"stacks": stacks, "empty": ["h2lua-network"]}, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertEqual(1, len(self.calls("ecs update-service")))  # still the first run's only

    def test_deploy_plan_shows_change_sets_and_changes_nothing(self):
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks}, "deploy", "--plan")
        self.assertEqual(0, code, out + err)
        self.assertEqual(5, len(self.calls("delete-change-set")))
        self.assertEqual([], self.calls("execute-change-set|docker|ecs "))
        self.assertEqual(5, out.count("Modify   TaskDefinition"))

    def test_destroy_deletes_stacks_left_in_failed_states(self):
        stacks = {"h2lua-service": "ROLLBACK_COMPLETE", "h2lua-database": "DELETE_FAILED",
                  "h2lua-security": "ROLLBACK_FAILED", "h2lua-network": "UPDATE_COMPLETE"}  # no registry
        code, out, err = self.run_with({"stacks": stacks}, "destroy")
        self.assertEqual(0, code, out + err)
        self.assertEqual({}, self.state["stacks"])
        self.assertIn("no stack h2lua-registry", out)
        # the database stack cannot be updated: the protection goes off on the instance itself
        self.assertEqual([], self.calls("update-stack"))
        self.assertEqual(1, len(self.calls("rds modify-db-instance --region us-east-1 --db-instance-identifier "
                                           "h2lua-db-primary --no-deletion-protection --apply-immediately")))

    def test_destroy_updates_a_healthy_database_stack_with_its_tags(self):
        stacks = {"h2lua-database": "UPDATE_COMPLETE"}
        code, out, err = self.run_with({"stacks": stacks}, "destroy")
        self.assertEqual(0, code, out + err)
        update = self.calls("update-stack")
        self.assertEqual(1, len(update))
        self.assertIn("--tags Key=project,Value=h2lua Key=stack-prefix,Value=h2lua", update[0])
        self.assertEqual([], self.calls("modify-db-instance"))

    # ---- what AWS does that the scripts must live with ---------------------

    LOOK = r"ecs describe-services .*deployments"

    def test_deploy_waits_while_the_rollout_bakes(self):
        # With deployment alarms ECS keeps the rollout IN_PROGRESS through a bake time after the
        # old tasks are gone, although running == desired.
        code, out, err = self.run_with({"rollout": ["IN_PROGRESS"] * 4 + ["COMPLETED"]}, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertEqual(5, len(self.calls(self.LOOK)))
        self.assertRegex(out, r"(?m)^ +\d+s +IN_PROGRESS +2/2 tasks")
        self.assertRegex(out, r"(?m)^ +\d+s +COMPLETED +2/2 tasks")
        self.assertIn("smoke test passed", out)

    def test_deploy_fails_loudly_when_the_rollout_fails_after_baking(self):
        code, out, err = self.run_with({"rollout": ["IN_PROGRESS"] * 3 + ["FAILED"]}, "deploy")
        self.assertEqual(1, code, out)
        self.assertEqual(4, len(self.calls(self.LOOK)))
        self.assertIn("deployment failed and was rolled back", err)
        self.assertIn("circuit breaker", err)  # the service's events are shown
        self.assertNotIn("h2lua is at", out)

    def test_deploy_gives_up_on_a_rollout_past_its_deadline(self):
        code, out, err = self.run_with({"rollout": ["IN_PROGRESS"]}, "deploy", env={"H2LUA_ROLLOUT_TIMEOUT": "1"})
        self.assertEqual(1, code, out)
        self.assertIn("still IN_PROGRESS after 1s", err)
        self.assertIn("circuit breaker", err)
        self.assertNotIn("h2lua is at", out)

    def test_destroy_waits_until_the_certificate_is_no_longer_in_use(self):
        # ACM reports the certificate in use for a while after its load balancer is deleted.
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks, "certificate": CERT, "in_use": 3}, "destroy")
        self.assertEqual(0, code, out + err)
        self.assertEqual({}, self.state["stacks"])
        self.assertTrue(self.state.get("certificate_deleted"))
        self.assertEqual(4, len(self.calls("acm delete-certificate")))

    def test_destroy_deletes_every_stack_when_the_certificate_stays_in_use(self):
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks, "certificate": CERT, "in_use": 10000}, "destroy",
                                       env={"H2LUA_CERT_TIMEOUT": "1"})
        self.assertEqual(1, code, out + err)
        self.assertEqual({}, self.state["stacks"])
        self.assertIn(f"the certificate {CERT} is still in use after 1s", err)
        last = self.calls("delete-stack|acm delete-certificate")[-1]
        self.assertIn("acm delete-certificate", last)

    def test_destroy_removes_an_access_log_bucket_that_filled_again(self):
        # The load balancer delivers logs until it is gone: emptied before, the bucket is not empty
        # when CloudFormation deletes it.
        bucket = {"name": "h2lua-service-accesslogbucket-0123", "objects": 5, "late": 2,
                  "template": os.path.join(AWS_DIR, "service.yaml")}
        code, out, err = self.run_with({"stacks": {"h2lua-service": "UPDATE_COMPLETE"}, "bucket": bucket}, "destroy")
        self.assertEqual(0, code, out + err)
        self.assertEqual({}, self.state["stacks"])
        self.assertIsNone(self.state["bucket"])
        calls = self.calls("delete-stack|s3 rb")
        self.assertEqual(["cloudformation delete-stack", "s3 rb s3://h2lua-service-accesslogbucket-0123 --force"],
                         [re.sub(r"^aws (\S+ \S+)( --region \S+ --stack-name \S+)?", r"\1", c) for c in calls])

    def test_destroy_run_again_finds_the_access_log_bucket_gone(self):
        bucket = {"name": "h2lua-service-accesslogbucket-0123", "objects": 0, "gone": True,
                  "template": os.path.join(AWS_DIR, "service.yaml")}
        code, out, err = self.run_with({"stacks": {"h2lua-service": "DELETE_IN_PROGRESS"}, "bucket": bucket,
                                        "pending": {"h2lua-service": 1}, "final": {"h2lua-service": None}}, "destroy")
        self.assertEqual(0, code, out + err)
        self.assertEqual({}, self.state["stacks"])
        self.assertIn("no bucket h2lua-service-accesslogbucket-0123", out)

    def test_deploy_retries_a_throttled_status(self):
        code, out, err = self.run_with({"progress": 1, "throttle": 2}, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertEqual("CREATE_COMPLETE", self.state["stacks"]["h2lua-network"])
        self.assertIn("throttled", out)

    def test_deploy_stops_on_expired_credentials_and_runs_again(self):
        code, out, err = self.run_with({"expired": True}, "deploy")
        self.assertNotEqual(0, code)
        self.assertIn("your credentials expired: paste the new ones and run the same command again", err)
        self.assertNotIn("NONE", err)
        self.assertEqual({"h2lua-network": "CREATE_IN_PROGRESS"}, self.state["stacks"])
        # the same command with new credentials, the stack still being created: it waits, then goes on
        again = dict(self.state, expired=False, pending={"h2lua-network": 2})
        code, out, err = self.run_with(again, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertIn("h2lua-network is in CREATE_IN_PROGRESS: waiting until it is done", out)
        network = self.calls("create-change-set .*--stack-name h2lua-network ")
        self.assertEqual(["CREATE", "UPDATE"], [re.search(r"--change-set-type (\w+)", c).group(1) for c in network])
        self.assertEqual("CREATE_COMPLETE", self.state["stacks"]["h2lua-service"])

    def test_destroy_stops_on_expired_credentials(self):
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks, "expired": True}, "destroy")
        self.assertNotEqual(0, code)
        self.assertIn("your credentials expired: paste the new ones and run the same command again", err)
        self.assertEqual(["h2lua-service"], [c.split()[-1] for c in self.calls("delete-stack")])

    def test_deploy_creates_the_autoscaling_role_when_it_is_missing(self):
        code, out, err = self.run_with({"slr": "missing"}, "deploy")
        self.assertEqual(0, code, out + err)
        created = self.calls("iam create-service-linked-role .*--aws-service-name ecs.application-autoscaling.amazonaws.com")
        self.assertEqual(1, len(created))
        calls = self.calls("")
        self.assertLess(calls.index(created[0]), calls.index(self.calls("create-change-set .*h2lua-service")[0]))
        self.assertNotIn("Autoscaling", self.calls("create-change-set .*h2lua-service")[0])

    def test_deploy_uses_an_existing_autoscaling_role(self):
        code, out, err = self.run_with({"slr": "exists"}, "deploy")
        self.assertEqual(0, code, out + err)
        self.assertEqual(1, len(self.calls("iam get-role --region us-east-1 --role-name "
                                           "AWSServiceRoleForApplicationAutoScaling_ECSService")))
        self.assertEqual([], self.calls("create-service-linked-role"))
        self.assertNotIn("Autoscaling", self.calls("create-change-set .*h2lua-service")[0])

    def test_deploy_turns_autoscaling_off_without_the_right_to_its_role(self):
        code, out, err = self.run_with({"slr": "denied"}, "deploy", "--lab-role")
        self.assertEqual(0, code, out + err)
        self.assertIn("ParameterKey=Autoscaling,ParameterValue=false", self.calls("create-change-set .*h2lua-service")[0])
        said = [line for line in (out + err).splitlines() if "autoscaling" in line.lower() and "AccessDenied" in line]
        self.assertEqual(1, len(said), out + err)
        self.assertEqual("CREATE_COMPLETE", self.state["stacks"]["h2lua-service"])

    def test_deploy_refuses_a_change_set_that_replaces_the_primary(self):
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks, "replace": {"h2lua-database": "True"}}, "deploy")
        self.assertEqual(1, code, out + err)
        self.assertIn("would replace the database's primary instance", err)
        self.assertEqual([], self.calls("execute-change-set .*h2lua-database"))
        self.assertEqual(1, len(self.calls("delete-change-set .*h2lua-database")))
        self.assertEqual([], self.calls("docker build|h2lua-service"))

    def test_deploy_passes_the_engine_version_only_to_a_new_stack(self):
        code, out, err = self.run_with({}, "deploy", "--engine", "mariadb")
        self.assertEqual(0, code, out + err)
        created = self.calls("create-change-set .*h2lua-database")[0]
        self.assertIn("ParameterKey=Engine,ParameterValue=mariadb ParameterKey=EngineVersion,ParameterValue=11.4",
                      created)
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks, "engine": "mariadb"}, "deploy", "--engine", "mariadb")
        self.assertEqual(0, code, out + err)
        updated = self.calls("create-change-set .*h2lua-database")[-1]
        self.assertNotIn("EngineVersion", updated)
        self.assertNotIn("Engine", updated.replace("EngineVersion", ""))

    def test_deploy_refuses_another_engine_for_an_existing_database(self):
        stacks = {f"h2lua-{t}": "UPDATE_COMPLETE" for t in ("network", "security", "database", "registry", "service")}
        code, out, err = self.run_with({"stacks": stacks, "engine": "mysql"}, "deploy", "--engine", "mariadb")
        self.assertEqual(1, code, out + err)
        self.assertIn("h2lua-database runs mysql", err)
        self.assertEqual([], self.calls("create-change-set .*h2lua-database"))


if __name__ == "__main__":
    unittest.main()
