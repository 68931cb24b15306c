"""A stand-in `aws` for the state tests of scripts_test.py: just enough of
CloudFormation, ECS, ELB and CloudWatch Logs, answering the exact queries of
ops/aws/deploy and destroy from a state file, so that a test can put a stack
in ROLLBACK_COMPLETE, make a rollout fail or a change set empty, and see what
the scripts do. (The real CLI against a real API is aws_moto_test.py.)

Environment: FAKE_AWS_STATE, a JSON file:
  {"stacks": {"h2lua-network": "ROLLBACK_COMPLETE", ...},  # absent: no such stack
   "fail": {"h2lua-database": "Primary|AWS::RDS::DBInstance|reason"},  # execute ends in ROLLBACK_COMPLETE
   "empty": ["h2lua-service"],           # their change sets contain no change
   "rollout": "FAILED",                 # rolloutState of the primary deployment; a list: one per look,
                                         # the last one staying
   "progress": 2,                       # looks at a stack's status for which an execute or delete
                                         # is still in progress (default 0: done at once)
   "throttle": 2,                       # that many looks at an in-progress stack are throttled
   "expired": true,                     # looks at an in-progress stack: the credentials expired
   "engine": "mysql",                   # the database stack's Engine parameter
   "replace": {"h2lua-database": "True"},  # the change set's Replacement of the primary
   "certificate": "arn:...",            # the service's self-signed certificate
   "in_use": 2,                         # that many certificate deletes: ResourceInUseException
   "bucket": {"name": "b", "objects": 1, "late": 1, "template": "/path/service.yaml", "gone": false},
                                         # the access-log bucket: its objects, those the load balancer
                                         # delivers while the service stack is deleted, the template
                                         # whose DeletionPolicy CloudFormation follows; gone: removed
                                         # already, though the stack still names it
   "slr": "exists",                     # autoscaling's service-linked role: exists, missing or denied
   "log": "/path"}                        # every call, one line each
Unknown commands print a message and exit 99, so a test sees a call it did not expect.
"""

import json
import os
import re
import sys

TASKDEF = "arn:aws:ecs:us-east-1:123456789012:task-definition/h2lua:7"
OUTPUTS = {"RepositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2lua", "ClusterName": "h2lua",
           "ServiceName": "h2lua", "TaskDefinitionArn": TASKDEF, "LogGroupName": "/ecs/h2lua",
           "TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/h2lua/0123",
           "LoadBalancerUrl": "http://h2lua-0123456789.us-east-1.elb.amazonaws.com"}


def main(argv):
    path = os.environ["FAKE_AWS_STATE"]
    with open(path) as f:
        state = json.load(f)
    with open(state["log"], "a") as f:
        f.write("aws " + " ".join(argv) + "\n")
    line = " ".join(argv)
    opt = lambda name: argv[argv.index(name) + 1] if name in argv else None  # noqa: E731
    stacks = state.setdefault("stacks", {})
    stack = opt("--stack-name")
    query = opt("--query") or ""

    def save():
        with open(path, "w") as f:
            json.dump(state, f)

    def missing():
        sys.stderr.write(f"An error occurred (ValidationError) when calling the DescribeStacks operation: "
                         f"Stack with id {stack} does not exist\n")
        return 254

    if line.startswith("configure get region"):
        return 1
    if line.startswith("sts get-caller-identity"):
        print("123456789012")
        return 0
    if argv[:2] == ["cloudformation", "describe-stacks"]:
        if stack not in stacks:
            return missing()
        if query == "Stacks[0].StackStatus":
            if stacks[stack].endswith("_IN_PROGRESS") and stacks[stack] != "REVIEW_IN_PROGRESS":
                if state.get("expired"):
                    sys.stderr.write("An error occurred (ExpiredToken) when calling the DescribeStacks operation: "
                                     "The security token included in the request is expired\n")
                    return 254
                if state.get("throttle", 0) > 0:
                    state["throttle"] -= 1
                    save()
                    sys.stderr.write("An error occurred (Throttling) when calling the DescribeStacks operation "
                                     "(reached max retries: 2): Rate exceeded\n")
                    return 254
                pending = state.setdefault("pending", {})
                if pending.get(stack, 0) > 0:
                    pending[stack] -= 1
                else:
                    final = state.get("final", {}).pop(stack, None)
                    if final is None:
                        stacks.pop(stack)
                        save()
                        return missing()
                    stacks[stack] = final
                save()
            print(stacks[stack])
        elif query == "Stacks[0].Parameters[].ParameterKey":
            print("StackPrefix")
        elif m := re.search(r"OutputKey=='(\w+)'", query):
            outputs = dict(OUTPUTS)
            if state.get("bucket"):
                outputs["AccessLogBucketName"] = state["bucket"]["name"]
            print(outputs.get(m.group(1), "None"))
        elif "ParameterKey=='CertificateArn'" in query:
            print(state.get("certificate", "None"))
        elif "ParameterKey=='Engine'" in query:
            print(state.get("engine", "mysql"))
        elif "ParameterKey=='DeletionProtection'" in query:
            print(state.get("protected", "true"))
        else:
            return unknown(line)
        return 0
    if argv[:2] == ["cloudformation", "describe-stack-events"]:
        if stack not in stacks:
            return missing()
        failure = state.get("fail", {}).get(stack)
        if failure and stacks[stack] == "DELETE_FAILED":
            logical, type_, reason = failure.split("|")
            print(f"e3\t{logical}\t{type_}\tDELETE_FAILED\t{reason}")
        elif failure and stacks[stack] == "ROLLBACK_COMPLETE":
            logical, type_, reason = failure.split("|")
            print(f"e2\t{logical}\t{type_}\tDELETE_COMPLETE\tNone")
            print(f"e1\t{logical}\t{type_}\tCREATE_FAILED\t{reason}")
        return 0
    if argv[:2] == ["cloudformation", "delete-stack"]:
        bucket = state.get("bucket")
        if stack == "h2lua-service" and bucket and stack in stacks:
            # the load balancer delivers logs until it is gone; CloudFormation then deletes the
            # bucket as the template says, and S3 refuses a bucket that is not empty
            bucket["objects"] += bucket.pop("late", 0)
            if deletion_policy(bucket["template"]) != "Retain" and bucket["objects"]:
                stacks[stack] = "DELETE_FAILED"
                state["fail"] = {stack: "AccessLogBucket|AWS::S3::Bucket|The bucket you tried to delete is not empty"}
                save()
                return 0
        return progress(stack, "DELETE_IN_PROGRESS", None)
    if argv[:2] == ["cloudformation", "create-change-set"]:
        if stack not in stacks:
            stacks[stack] = "REVIEW_IN_PROGRESS"
        state.setdefault("change_sets", {})[stack] = opt("--change-set-type")
        save()
        print(f"arn:aws:cloudformation:us-east-1:123456789012:changeSet/{opt('--change-set-name')}/1")
        return 0
    if argv[:2] == ["cloudformation", "describe-change-set"]:
        if query == "[Status,StatusReason]":
            if stack in state.get("empty", []):
                print("FAILED\tThe submitted information didn't contain changes. Submit different information "
                      "to create a change set.")
            else:
                print("CREATE_COMPLETE\tNone")
        else:
            print("Modify\tTaskDefinition\tAWS::ECS::TaskDefinition\tTrue")
            if stack in state.get("replace", {}):
                print(f"Modify\tPrimary\tAWS::RDS::DBInstance\t{state['replace'][stack]}")
        return 0
    if argv[:2] in (["cloudformation", "delete-change-set"], ["cloudformation", "update-stack"]):
        return 0
    if argv[:2] == ["cloudformation", "execute-change-set"]:
        create = state["change_sets"][stack] == "CREATE"
        if stack in state.get("fail", {}):
            final = "ROLLBACK_COMPLETE"
        else:
            final = "CREATE_COMPLETE" if create else "UPDATE_COMPLETE"
        return progress(stack, "CREATE_IN_PROGRESS" if create else "UPDATE_IN_PROGRESS", final)
    if argv[:2] == ["cloudformation", "describe-stack-resources"]:
        print("h2lua-db-primary")
        return 0
    if argv[:2] == ["ecr", "get-login-password"]:
        print("password")
        return 0
    if argv[:2] == ["ecs", "update-service"]:
        print("h2lua")
        return 0
    if argv[:3] == ["ecs", "wait", "services-stable"]:
        return 0
    if argv[:2] == ["ecs", "describe-services"]:
        if "deployments" in query:
            rollout = state.get("rollout", "COMPLETED")
            if isinstance(rollout, list):
                rollout = rollout.pop(0) if len(rollout) > 1 else rollout[0]
                save()
            counts = "\t2\t2" if "runningCount" in query else ""
            print(f"{rollout}\t{state.get('running', TASKDEF)}{counts}")
        else:
            print("2026-12-01T10:00:00+00:00\t(service h2lua) rolling back to deployment ecs-svc/1: circuit breaker")
        return 0
    if argv[:2] == ["elbv2", "describe-target-health"]:
        print("10.0.3.17\tunhealthy\tTarget.ResponseCodeMismatch\tHealth checks failed with these codes: [503]")
        return 0
    if argv[:2] == ["logs", "filter-log-events"]:
        print('{"level":"error","msg":"database unreachable"}')
        return 0
    if argv[:2] == ["rds", "modify-db-instance"]:
        return 0
    if argv[:2] == ["s3", "rm"]:
        if state.get("bucket"):
            state["bucket"]["objects"] = 0
            save()
        return 0
    if argv[:2] == ["s3", "rb"]:
        if state.get("bucket") and not state["bucket"].get("gone") and argv[2] == f"s3://{state['bucket']['name']}":
            state["bucket"] = None
            save()
            return 0
        sys.stderr.write(f"remove_bucket failed: {argv[2]} An error occurred (NoSuchBucket) when calling the "
                         "DeleteBucket operation: The specified bucket does not exist\n")
        return 1
    if argv[:2] == ["acm", "list-tags-for-certificate"]:
        print("h2lua")
        return 0
    if argv[:2] == ["acm", "delete-certificate"]:
        if state.get("in_use", 0) > 0:
            state["in_use"] -= 1
            save()
            sys.stderr.write("An error occurred (ResourceInUseException) when calling the DeleteCertificate "
                             f"operation: Certificate {opt('--certificate-arn')} in use\n")
            return 254
        state["certificate_deleted"] = True
        save()
        return 0
    if argv[:2] == ["iam", "get-role"]:
        slr = state.get("slr", "exists")
        if slr == "exists":
            print(f"arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
                  f"{opt('--role-name')}")
            return 0
        if slr == "denied":
            return denied("GetRole", "iam:GetRole")
        sys.stderr.write("An error occurred (NoSuchEntity) when calling the GetRole operation: "
                         f"The role with name {opt('--role-name')} cannot be found.\n")
        return 254
    if argv[:2] == ["iam", "create-service-linked-role"]:
        if state.get("slr") == "denied":
            return denied("CreateServiceLinkedRole", "iam:CreateServiceLinkedRole")
        state["slr"] = "exists"
        save()
        print("arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
              "AWSServiceRoleForApplicationAutoScaling_ECSService")
        return 0
    if argv[:3] == ["iam", "wait", "role-exists"]:
        return 0
    return unknown(line)


def progress(stack, status, final):
    """Start an execute (final: the status it ends in) or a delete (final None: the stack goes)."""
    path = os.environ["FAKE_AWS_STATE"]
    with open(path) as f:
        state = json.load(f)
    if stack not in state.get("stacks", {}):
        return 0
    if state.get("progress", 0) > 0 or state.get("expired") or state.get("throttle"):
        state["stacks"][stack] = status
        state.setdefault("pending", {})[stack] = state.get("progress", 0)
        state.setdefault("final", {})[stack] = final
    elif final is None:
        state["stacks"].pop(stack)
    else:
        state["stacks"][stack] = final
    with open(path, "w") as f:
        json.dump(state, f)
    return 0


def deletion_policy(template):
    """The DeletionPolicy of the access-log bucket in the service template (read as text: this
    runs without site-packages, see scripts_test)."""
    with open(template) as f:
        block = re.search(r"(?ms)^  AccessLogBucket:\n(.*?)^  \S", f.read()).group(1)
    policy = re.search(r"(?m)^    DeletionPolicy: (\w+)", block)
    return policy.group(1) if policy else "Delete"


def denied(operation, action):
    sys.stderr.write(f"An error occurred (AccessDenied) when calling the {operation} operation: User: "
                     "arn:aws:sts::123456789012:assumed-role/voclabs/user123 is not authorized to perform: "
                     f"{action} because no identity-based policy allows the {action} action\n")
    return 254


def unknown(line):
    sys.stderr.write(f"fake aws: no answer for: aws {line}\n")
    return 99


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
