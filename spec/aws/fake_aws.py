"""A stand-in `aws` for the state tests of scripts_test.py: just enough of
CloudFormation, ECS, ELB and CloudWatch Logs, answering the exact queries of
ops/aws/deploy and destroy from a state file, so that a test can put a stack
in ROLLBACK_COMPLETE, make a rollout fail or a change set empty, and see what
the scripts do. (The real CLI against a real API is aws_moto_test.py.)

Environment: FAKE_AWS_STATE, a JSON file:
  {"stacks": {"h2lua-network": "ROLLBACK_COMPLETE", ...},  # absent: no such stack
   "fail": {"h2lua-database": "Primary|AWS::RDS::DBInstance|reason"},  # execute ends in ROLLBACK_COMPLETE
   "empty": ["h2lua-service"],           # their change sets contain no change
   "rollout": "FAILED",                 # rolloutState of the primary deployment
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
            print(stacks[stack])
        elif query == "Stacks[0].Parameters[].ParameterKey":
            print("StackPrefix")
        elif m := re.search(r"OutputKey=='(\w+)'", query):
            print(OUTPUTS.get(m.group(1), "None"))
        elif "ParameterKey=='CertificateArn'" in query:
            print("None")
        elif "ParameterKey=='DeletionProtection'" in query:
            print(state.get("protected", "true"))
        else:
            return unknown(line)
        return 0
    if argv[:2] == ["cloudformation", "describe-stack-events"]:
        if stack not in stacks:
            return missing()
        failure = state.get("fail", {}).get(stack)
        if failure and stacks[stack] == "ROLLBACK_COMPLETE":
            logical, type_, reason = failure.split("|")
            print(f"e2\t{logical}\t{type_}\tDELETE_COMPLETE\tNone")
            print(f"e1\t{logical}\t{type_}\tCREATE_FAILED\t{reason}")
        return 0
    if argv[:2] == ["cloudformation", "delete-stack"]:
        stacks.pop(stack, None)
        save()
        return 0
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
        return 0
    if argv[:2] in (["cloudformation", "delete-change-set"], ["cloudformation", "update-stack"]):
        return 0
    if argv[:2] == ["cloudformation", "execute-change-set"]:
        if stack in state.get("fail", {}):
            stacks[stack] = "ROLLBACK_COMPLETE"
        else:
            stacks[stack] = "CREATE_COMPLETE" if state["change_sets"][stack] == "CREATE" else "UPDATE_COMPLETE"
        save()
        return 0
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
            print(f"{state.get('rollout', 'COMPLETED')}\t{state.get('running', TASKDEF)}")
        else:
            print("2026-12-01T10:00:00+00:00\t(service h2lua) rolling back to deployment ecs-svc/1: circuit breaker")
        return 0
    if argv[:2] == ["elbv2", "describe-target-health"]:
        print("10.0.3.17\tunhealthy\tTarget.ResponseCodeMismatch\tHealth checks failed with these codes: [503]")
        return 0
    if argv[:2] == ["logs", "filter-log-events"]:
        print('{"level":"error","msg":"database unreachable"}')
        return 0
    if argv[:2] in (["rds", "modify-db-instance"], ["s3", "rm"], ["acm", "delete-certificate"]):
        return 0
    return unknown(line)


def unknown(line):
    sys.stderr.write(f"fake aws: no answer for: aws {line}\n")
    return 99


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
