"""Reads the CloudFormation templates of ops/aws/ for the tests beside it.

Templates are parsed with cfn-lint's own YAML loader (it understands the
short forms !Ref, !Sub, ... and turns them into {"Ref": ...} etc.) and
returned as plain dicts and lists, so a test may copy and change them freely.

Stacks ties the five templates together: resolve() follows Ref, GetAtt and
Fn::ImportValue (through the exporting stack's Outputs) to the resource,
parameter or literal a value finally comes from; render() shows the
templates as CloudFormation would deploy them for given parameter values.
"""

import copy
import json
import os
from typing import NamedTuple

from cfnlint.decode import cfn_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# H2LUA_AWS_DIR points the tests at another copy of ops/aws (to see them fail).
AWS_DIR = os.environ.get("H2LUA_AWS_DIR") or os.path.join(ROOT, "ops", "aws")
TIERS = ("network", "security", "database", "registry", "service")


def load(tier):
    """The template of one tier as plain data; raises if it does not parse."""
    return json.loads(json.dumps(cfn_yaml.load(os.path.join(AWS_DIR, tier + ".yaml"))))


def only(items, what):
    """The one element of items; raises AssertionError naming what otherwise."""
    items = list(items)
    if len(items) != 1:
        raise AssertionError(f"expected exactly one {what}, found {len(items)}")
    return items[0]


def branches(node):
    """The values a node may take: both sides of an Fn::If, else itself."""
    if isinstance(node, dict) and "Fn::If" in node:
        _, yes, no = node["Fn::If"]
        return branches(yes) + branches(no)
    if isinstance(node, dict) and node.get("Ref") == "AWS::NoValue":
        return []
    return [node]


def listed(items):
    """A list property with the Fn::If items opened up."""
    return [value for item in (items or []) for value in branches(item)]


def container(templates):
    """The h2lua container definition in the service template (plain data)."""
    return templates["service"]["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]


class Target(NamedTuple):
    """Where a value comes from: kind is "resource", "parameter", "literal"
    or "unknown"; tier and name locate it; value is the literal, the
    attribute of a GetAtt ("MasterUserSecret.SecretArn"), or the unresolved
    node for "unknown"."""

    kind: str
    tier: str = ""
    name: str = ""
    value: object = None


class Stacks:
    """The five templates of one deployment."""

    def __init__(self, templates):
        self.templates = templates

    @classmethod
    def load(cls):
        return cls({tier: load(tier) for tier in TIERS})

    def copy(self):
        return Stacks(copy.deepcopy(self.templates))

    # ---- plain access ---------------------------------------------------

    def resources(self, tier, type_=None):
        """{logical id: resource} of a tier, only of type_ when given."""
        found = self.templates[tier].get("Resources", {})
        return {k: v for k, v in found.items() if type_ is None or v.get("Type") == type_}

    def all_resources(self, type_=None):
        """[(tier, logical id, resource)] over every tier."""
        return [(tier, k, v) for tier in TIERS for k, v in self.resources(tier, type_).items()]

    def resource(self, tier, name):
        return self.templates[tier]["Resources"][name]

    def props(self, tier, name):
        return self.resource(tier, name).get("Properties", {})

    def parameters(self, tier):
        return self.templates[tier].get("Parameters", {})

    def default(self, tier, name):
        return self.parameters(tier)[name].get("Default")

    def conditions(self, tier):
        return self.templates[tier].get("Conditions", {})

    # ---- following references -------------------------------------------

    def exports(self):
        """{export name as written (e.g. "${StackPrefix}-network-VpcId"): (tier, value node)}."""
        found = {}
        for tier in TIERS:
            for output in self.templates[tier].get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if isinstance(name, dict) and "Fn::Sub" in name:
                    name = name["Fn::Sub"]
                if isinstance(name, str):
                    found[name] = (tier, output.get("Value"))
        return found

    def resolve(self, tier, node, depth=0):
        """The Target a value node of tier finally refers to."""
        if depth > 10:
            return Target("unknown", tier, value=node)
        if not isinstance(node, dict):
            return Target("literal", tier, value=node)
        if "Ref" in node:
            name = node["Ref"]
            if name in self.parameters(tier):
                return Target("parameter", tier, name)
            if name in self.templates[tier].get("Resources", {}):
                return Target("resource", tier, name)
            return Target("unknown", tier, name, node)
        if "Fn::GetAtt" in node:
            att = node["Fn::GetAtt"]
            name, _, attribute = (".".join(att) if isinstance(att, list) else att).partition(".")
            return Target("resource", tier, name, attribute)
        if "Fn::ImportValue" in node:
            name = node["Fn::ImportValue"]
            if isinstance(name, dict) and "Fn::Sub" in name:
                name = name["Fn::Sub"]
            exported = self.exports().get(name)
            if exported is None:
                return Target("unknown", tier, str(name), node)
            return self.resolve(exported[0], exported[1], depth + 1)
        return Target("unknown", tier, value=node)

    def locate(self, tier, node):
        """(tier, logical id) of the resource node refers to; ("?", text) if none."""
        target = self.resolve(tier, node)
        return (target.tier, target.name) if target.kind == "resource" else ("?", str(target.value))

    def public_subnets(self):
        """{(tier, id)} of the subnets whose route table leads to an internet gateway."""
        to_internet = set()
        for tier, _, route in self.all_resources("AWS::EC2::Route"):
            gateway = self.locate(tier, route["Properties"].get("GatewayId"))
            if gateway[0] != "?" and self.resource(*gateway)["Type"] == "AWS::EC2::InternetGateway":
                to_internet.add(self.locate(tier, route["Properties"]["RouteTableId"]))
        return {self.locate(tier, a["Properties"]["SubnetId"])
                for tier, _, a in self.all_resources("AWS::EC2::SubnetRouteTableAssociation")
                if self.locate(tier, a["Properties"]["RouteTableId"]) in to_internet}

    def private_subnets(self):
        """{(tier, id)} of every other subnet."""
        return {(tier, name) for tier, name, _ in self.all_resources("AWS::EC2::Subnet")} - self.public_subnets()

    def value(self, tier, node):
        """A literal, or a parameter's default, that node stands for (None if neither)."""
        target = self.resolve(tier, node)
        if target.kind == "literal":
            return target.value
        if target.kind == "parameter":
            return self.default(target.tier, target.name)
        return None

    # ---- one set of parameter values ---------------------------------------

    def condition(self, tier, name, params):
        """Whether condition name of tier holds when its parameters take params
        (the rest their defaults)."""
        def value(node):
            if isinstance(node, dict) and "Ref" in node:
                ref = node["Ref"]
                return str(params.get(ref, self.default(tier, ref)))
            if isinstance(node, dict):
                raise ValueError(f"{tier}: cannot evaluate {node} in condition {name}")
            return str(node)

        def holds(node):
            if "Condition" in node:
                return holds(self.conditions(tier)[node["Condition"]])
            if "Fn::Equals" in node:
                left, right = node["Fn::Equals"]
                return value(left) == value(right)
            if "Fn::Not" in node:
                return not holds(node["Fn::Not"][0])
            if "Fn::And" in node:
                return all(holds(n) for n in node["Fn::And"])
            if "Fn::Or" in node:
                return any(holds(n) for n in node["Fn::Or"])
            raise ValueError(f"{tier}: cannot evaluate {node} in condition {name}")

        return holds(self.conditions(tier)[name])

    def render(self, params=None):
        """The Stacks as CloudFormation would see them for params
        ({tier: {parameter: value}}; defaults elsewhere): resources and outputs
        whose condition is false left out, each Fn::If replaced by its chosen
        branch, AWS::NoValue removed."""
        params = params or {}
        rendered = {}
        for tier, template in self.templates.items():
            given = params.get(tier, {})
            active = {c: self.condition(tier, c, given) for c in self.conditions(tier)}
            gone = object()

            def walk(node):
                if isinstance(node, dict):
                    if "Fn::If" in node:
                        name, yes, no = node["Fn::If"]
                        return walk(yes if active[name] else no)
                    if node.get("Ref") == "AWS::NoValue":
                        return gone
                    out = {k: walk(v) for k, v in node.items()}
                    return {k: v for k, v in out.items() if v is not gone}
                if isinstance(node, list):
                    return [v for v in map(walk, node) if v is not gone]
                return node

            out = copy.deepcopy(template)
            for section in ("Resources", "Outputs"):
                out[section] = {k: walk(v) for k, v in template.get(section, {}).items()
                                if active.get(v.get("Condition"), True)}
            rendered[tier] = out
        return Stacks(rendered)


def broken_on_purpose(faults):
    """A unittest.TestCase class with one test per entry of faults, name -> (check, fault): the
    fault, applied to a copy of the templates, must make check(stacks) report something."""
    import unittest

    class BrokenOnPurpose(unittest.TestCase):
        """Each check reports the fault it exists for."""

        @classmethod
        def setUpClass(cls):
            cls.stacks = Stacks.load()

    def catches(check, fault):
        def test(self):
            broken = self.stacks.copy()
            fault(broken.templates)
            self.assertNotEqual([], check(broken), f"{check.__name__} did not notice")
        return test

    for name, (check, fault) in faults.items():
        setattr(BrokenOnPurpose, f"test_catches_{name}", catches(check, fault))
    return BrokenOnPurpose
