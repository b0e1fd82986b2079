"""Wiring checks for infra/template.yaml.

Most tests read the template as written, with the SAM Globals merged into each
function the way SAM merges them. The tests at the end run the SAM translator
itself (aws-sam-translator, offline) after resolving the conditions that the
AWS::LanguageExtensions transform resolves in CloudFormation.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from itertools import combinations
from pathlib import Path
from typing import Any, Iterator

import pytest
from cfnlint.decode import decode

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPOSITORY_ROOT / "infra" / "template.yaml"

# Logical id of each function and the Cargo binary it is built from.
FUNCTION_BINARIES = {
    "PredictFunction": "predict",
    "IngestFunction": "ingest",
    "BatchScoreFunction": "batch-score",
}

PREDICT_ROUTES = {
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/{model}"),
    ("GET", "/v2/models/{model}/ready"),
    ("GET", "/v2/models/{model}/versions/{version}"),
    ("GET", "/v2/models/{model}/versions/{version}/ready"),
    ("POST", "/v2/models/{model}/infer"),
    ("POST", "/v2/models/{model}/versions/{version}/infer"),
    ("POST", "/v1/models/{proxy+}"),
}

# Prefixes the functions write to. A notification on any of them could make
# a function trigger itself or another function in a loop.
WRITTEN_PREFIXES = ("models/", "rejected/", "batch/output/")

# Expected notification rules: (prefix, suffix) -> queue logical id.
EXPECTED_NOTIFICATIONS = {
    ("incoming/", ".onnx"): "IngestQueue",
    ("incoming/", ".json"): "IngestQueue",
    ("batch/input/", ".csv"): "BatchQueue",
    ("batch/input/", ".csv.gz"): "BatchQueue",
    ("batch/input/", ".jsonl"): "BatchQueue",
    ("batch/input/", ".jsonl.gz"): "BatchQueue",
}

# Every S3 permission of each function as (action, resource path after the
# bucket name). An empty path is the bucket ARN itself.
EXPECTED_S3_PERMISSIONS = {
    "PredictFunction": {
        ("s3:GetObject", "/models/*"),
        ("s3:ListBucket", ""),
    },
    "IngestFunction": {
        ("s3:GetObject", "/incoming/*"),
        ("s3:GetObject", "/models/*"),
        ("s3:PutObject", "/models/*"),
        ("s3:PutObject", "/rejected/*"),
        ("s3:ListBucket", ""),
    },
    "BatchScoreFunction": {
        ("s3:GetObject", "/models/*"),
        ("s3:GetObject", "/batch/input/*"),
        ("s3:GetObject", "/batch/output/*"),
        ("s3:PutObject", "/batch/output/*"),
        ("s3:AbortMultipartUpload", "/batch/output/*"),
        ("s3:ListMultipartUploadParts", "/batch/output/*"),
        ("s3:ListBucket", ""),
    },
}

EXPECTED_LIST_PREFIXES = {
    "PredictFunction": {"models/", "models/*"},
    "IngestFunction": {"models/", "models/*", "incoming/", "incoming/*"},
    "BatchScoreFunction": {"models/", "models/*", "batch/input/*", "batch/output/*"},
}

EXPECTED_ENVIRONMENT = {
    "PredictFunction": {"MAX_REQUEST_ELEMENTS"},
    "IngestFunction": {"INCOMING_PREFIX", "REJECTED_PREFIX", "MAX_MODEL_MB", "SIDECAR_WAIT_SECONDS"},
    "BatchScoreFunction": {"BATCH_INPUT_PREFIX", "BATCH_OUTPUT_PREFIX", "BATCH_CHUNK_ROWS"},
}
COMMON_ENVIRONMENT = {"MODEL_REPOSITORY", "MODEL_CACHE_MB", "ALIAS_TTL_SECONDS", "METRICS_NAMESPACE"}

EMF_METRICS = ("ColdStart", "ModelLoadMs", "InferenceMs", "Rows", "Errors")


# ------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, errors = decode(str(TEMPLATE_PATH))
    assert not errors, f"cfn-lint could not parse {TEMPLATE_PATH}: {errors}"
    # A JSON round trip turns cfn-lint's node types into plain dicts and strs.
    return json.loads(json.dumps(decoded))


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def function_properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """Merge Globals.Function into a function's properties as SAM does.

    Maps (Environment.Variables) are merged key by key and other values are
    replaced by the function's own.
    """
    merged = copy.deepcopy(template.get("Globals", {}).get("Function", {}))
    own = template["Resources"][logical_id]["Properties"]

    for key, value in own.items():
        if key == "Environment":
            variables = merged.get("Environment", {}).get("Variables", {})
            variables.update(value.get("Variables", {}))
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = copy.deepcopy(value)

    return merged


def parameter_default(template: dict[str, Any], name: str) -> Any:
    return template["Parameters"][name]["Default"]


def find_in_map(template: dict[str, Any], arguments: list[Any], parameters: dict[str, Any]) -> Any:
    """Evaluate Fn::FindInMap whose keys are literals or parameter references."""
    keys = []
    for argument in arguments:
        if isinstance(argument, dict) and "Ref" in argument:
            keys.append(str(parameters[argument["Ref"]]))
        else:
            keys.append(argument)

    map_name, top_key, second_key = keys
    return template["Mappings"][map_name][top_key][second_key]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_events(template: dict[str, Any], logical_id: str) -> dict[str, dict[str, Any]]:
    return template["Resources"][logical_id]["Properties"].get("Events", {})


def sqs_events(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for function_id in FUNCTION_BINARIES:
        for event_name, event in function_events(template, function_id).items():
            if event["Type"] == "SQS":
                yield function_id, event_name, event["Properties"]


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every IAM policy statement written in the template, with its owner.

    This covers function Policies, queue policies, bucket policies and any
    IAM role, policy or managed policy resource.
    """
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        resource_type = resource["Type"]

        documents = []
        if resource_type == "AWS::Serverless::Function":
            for policy in as_list(properties.get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    documents.append(policy)
        elif resource_type in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::IAM::ManagedPolicy",
                               "AWS::IAM::Policy", "AWS::IAM::RolePolicy"):
            documents.append(properties["PolicyDocument"])
        elif resource_type == "AWS::IAM::Role":
            documents.extend(policy["PolicyDocument"] for policy in properties.get("Policies", []))

        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement


def s3_path_after_bucket(resource: Any) -> str:
    """Return the part of an S3 ARN template after ${DataBucket}, or raise if it names another bucket."""
    assert isinstance(resource, dict) and "Fn::Sub" in resource, f"S3 resource is not an Fn::Sub ARN: {resource}"
    arn = resource["Fn::Sub"]
    prefix = "arn:${AWS::Partition}:s3:::${DataBucket}"
    assert arn.startswith(prefix), f"S3 resource {arn} is not in the data bucket"
    return arn[len(prefix):]


def notification_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    bucket = template["Resources"]["DataBucket"]["Properties"]
    rules = []
    for configuration in bucket["NotificationConfiguration"]["QueueConfigurations"]:
        filters = {rule["Name"]: rule["Value"] for rule in configuration["Filter"]["S3Key"]["Rules"]}
        rules.append({
            "event": configuration["Event"],
            "queue": configuration["Queue"]["Fn::GetAtt"][0],
            "prefix": filters.get("prefix", ""),
            "suffix": filters.get("suffix", ""),
        })
    return rules


def contains_reference(value: Any, logical_id: str) -> bool:
    """Return whether a value refers to a resource by Ref, GetAtt or ${...} in Fn::Sub."""
    if isinstance(value, dict):
        if value.get("Ref") == logical_id:
            return True
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att[0] == logical_id:
            return True
        sub = value.get("Fn::Sub")
        if isinstance(sub, str) and re.search(r"\$\{" + re.escape(logical_id) + r"[.}]", sub):
            return True
        return any(contains_reference(item, logical_id) for item in value.values())
    if isinstance(value, list):
        return any(contains_reference(item, logical_id) for item in value)
    return False


# --------------------------------------------------------------- functions


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_function_runs_rust_bootstrap_on_al2023(template, function_id):
    properties = function_properties(template, function_id)

    assert properties["Runtime"] == "provided.al2023"
    assert properties["Handler"] == "bootstrap"
    assert properties["Architectures"] == [{"Ref": "Architecture"}]


def test_architecture_parameter_defaults_to_arm64(template):
    parameter = template["Parameters"]["Architecture"]

    assert parameter["Default"] == "arm64"
    assert set(parameter["AllowedValues"]) == {"arm64", "x86_64"}


@pytest.mark.parametrize("function_id, binary", FUNCTION_BINARIES.items())
def test_function_builds_its_binary_with_cargo_lambda(template, function_id, binary):
    resource = template["Resources"][function_id]

    assert resource["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert resource["Metadata"]["BuildProperties"]["Binary"] == binary
    assert resource["Properties"]["CodeUri"] == ".."

    # CodeUri is relative to the template, so ".." must be the workspace root.
    manifest_path = TEMPLATE_PATH.parent / ".." / "functions" / binary / "Cargo.toml"
    manifest = tomllib.loads(manifest_path.read_text())
    assert manifest["package"]["name"] == binary


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_function_memory_and_timeout_exceed_lambda_defaults(template, function_id):
    properties = function_properties(template, function_id)
    memory_parameter = properties["MemorySize"]["Ref"]
    timeout_parameter = properties["Timeout"]["Ref"]

    assert int(parameter_default(template, memory_parameter)) > 128
    assert int(parameter_default(template, timeout_parameter)) > 3


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_function_has_tracing_and_json_logging(template, function_id):
    properties = function_properties(template, function_id)
    logging_config = properties["LoggingConfig"]

    assert properties["Tracing"] == "Active"
    assert logging_config["LogFormat"] == "JSON"
    assert logging_config["ApplicationLogLevel"] == {"Ref": "ApplicationLogLevel"}
    assert parameter_default(template, "ApplicationLogLevel") == "INFO"
    assert logging_config["SystemLogLevel"] == "WARN"


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_function_log_group_has_retention(template, function_id):
    log_groups = resources_of_type(template, "AWS::Logs::LogGroup")
    expected_name = {"Fn::Sub": "/aws/lambda/${" + function_id + "}"}

    matching = [group for group in log_groups.values() if group["Properties"]["LogGroupName"] == expected_name]

    assert len(matching) == 1
    assert matching[0]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_function_environment_has_service_variables(template, function_id):
    variables = function_properties(template, function_id)["Environment"]["Variables"]

    assert set(variables) == COMMON_ENVIRONMENT | EXPECTED_ENVIRONMENT[function_id]
    assert variables["MODEL_REPOSITORY"] == {"Fn::Sub": "s3://${DataBucket}/models"}


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_model_cache_is_half_of_memory(template, function_id):
    properties = function_properties(template, function_id)
    memory_parameter = properties["MemorySize"]["Ref"]
    cache = properties["Environment"]["Variables"]["MODEL_CACHE_MB"]

    assert cache == {"Fn::FindInMap": ["ModelCache", {"Ref": memory_parameter}, "MB"]}
    for memory in template["Parameters"][memory_parameter]["AllowedValues"]:
        cache_mb = template["Mappings"]["ModelCache"][memory]["MB"]
        assert int(cache_mb) == int(memory) // 2, f"ModelCache for {memory} MB"


def test_metrics_namespace_defaults_to_serverless_maas(template):
    assert parameter_default(template, "MetricsNamespace") == "ServerlessMaas"
    assert parameter_default(template, "AliasTtlSeconds") == 30


# ----------------------------------------------------------------- triggers


def test_predict_has_http_api_event_per_route(template):
    routes = set()
    for event_name, event in function_events(template, "PredictFunction").items():
        assert event["Type"] == "HttpApi", f"{event_name} is not an HttpApi event"
        properties = event["Properties"]
        assert properties["ApiId"] == {"Ref": "PredictHttpApi"}, event_name
        assert properties["PayloadFormatVersion"] == "2.0", event_name
        routes.add((properties["Method"], properties["Path"]))

    assert routes == PREDICT_ROUTES


def test_ingest_is_triggered_by_ingest_queue(template):
    events = function_events(template, "IngestFunction")

    assert [event["Type"] for event in events.values()] == ["SQS"]
    (event,) = events.values()
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert event["Properties"]["BatchSize"] == {"Ref": "IngestBatchSize"}
    assert event["Properties"]["MaximumBatchingWindowInSeconds"] == {"Ref": "IngestBatchingWindowSeconds"}


def test_batch_score_is_triggered_by_batch_queue(template):
    events = function_events(template, "BatchScoreFunction")

    assert [event["Type"] for event in events.values()] == ["SQS"]
    (event,) = events.values()
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["BatchQueue", "Arn"]}


def test_sqs_events_report_batch_item_failures(template):
    events = list(sqs_events(template))

    assert len(events) == 2
    for function_id, event_name, properties in events:
        assert properties.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], f"{function_id}.{event_name}"


def test_queues_feeding_functions_have_dead_letter_queue(template):
    for function_id, event_name, properties in sqs_events(template):
        queue_id = properties["Queue"]["Fn::GetAtt"][0]
        redrive = template["Resources"][queue_id]["Properties"].get("RedrivePolicy")

        assert redrive is not None, f"{queue_id} (feeds {function_id}.{event_name}) has no RedrivePolicy"
        dead_letter_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert template["Resources"][dead_letter_id]["Type"] == "AWS::SQS::Queue"
        assert dead_letter_id != queue_id
        assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_dead_letter_queues_have_visible_message_alarm(template):
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm").values()

    for _, _, properties in sqs_events(template):
        queue_id = properties["Queue"]["Fn::GetAtt"][0]
        redrive = template["Resources"][queue_id]["Properties"]["RedrivePolicy"]
        dead_letter_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        queue_name = {"Fn::GetAtt": [dead_letter_id, "QueueName"]}

        matching = [
            alarm["Properties"] for alarm in alarms
            if alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
            and {"Name": "QueueName", "Value": queue_name} in alarm["Properties"]["Dimensions"]
        ]
        assert len(matching) == 1, f"no alarm on {dead_letter_id}"
        assert matching[0]["Threshold"] == 0
        assert matching[0]["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("function_id, queue_id", [("IngestFunction", "IngestQueue"),
                                                   ("BatchScoreFunction", "BatchQueue")])
def test_queue_visibility_follows_function_timeout(template, function_id, queue_id):
    timeout = function_properties(template, function_id)["Timeout"]
    visibility = template["Resources"][queue_id]["Properties"]["VisibilityTimeout"]

    assert visibility == {"Fn::FindInMap": ["QueueVisibility", timeout, "Seconds"]}


def test_batch_visibility_covers_six_timeouts_by_default(template):
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    timeout = int(parameters["BatchScoreTimeoutSeconds"])
    visibility_expression = template["Resources"]["BatchQueue"]["Properties"]["VisibilityTimeout"]

    visibility = find_in_map(template, visibility_expression["Fn::FindInMap"], parameters)

    assert visibility >= 6 * timeout


@pytest.mark.parametrize("timeout_parameter", ["IngestTimeoutSeconds", "BatchScoreTimeoutSeconds"])
def test_visibility_covers_every_allowed_timeout(template, timeout_parameter):
    largest_window = template["Parameters"]["IngestBatchingWindowSeconds"]["MaxValue"]

    for timeout in template["Parameters"][timeout_parameter]["AllowedValues"]:
        visibility = template["Mappings"]["QueueVisibility"][timeout]["Seconds"]
        assert visibility >= 6 * int(timeout) + largest_window, f"timeout {timeout} s"
        assert visibility <= 43200, "SQS caps VisibilityTimeout at 12 hours"


@pytest.mark.parametrize("queue_id", ["IngestQueue", "BatchQueue", "IngestDeadLetterQueue", "BatchDeadLetterQueue"])
def test_queue_is_encrypted_with_sse_sqs(template, queue_id):
    properties = template["Resources"][queue_id]["Properties"]

    assert properties["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("queue_id", ["IngestQueue", "BatchQueue"])
def test_notification_queue_accepts_s3_event_size(template, queue_id):
    assert template["Resources"][queue_id]["Properties"]["MaximumMessageSize"] == 262144


# ------------------------------------------------------------ notifications


def test_notifications_route_uploads_to_queues(template):
    routed = {(rule["prefix"], rule["suffix"]): rule["queue"] for rule in notification_rules(template)}

    assert routed == EXPECTED_NOTIFICATIONS
    for rule in notification_rules(template):
        assert rule["event"] == "s3:ObjectCreated:*"


def test_notification_prefixes_avoid_written_prefixes(template):
    for rule in notification_rules(template):
        prefix = rule["prefix"]
        assert prefix, f"rule for {rule['queue']} has no prefix, so it matches every written object"
        for written in WRITTEN_PREFIXES:
            assert not written.startswith(prefix), f"notification prefix {prefix} matches writes to {written}"
            assert not prefix.startswith(written), f"notification prefix {prefix} lies inside {written}"


def test_notification_filters_do_not_overlap(template):
    # S3 rejects the configuration when two rules for one event type have
    # overlapping prefixes and overlapping suffixes.
    for first, second in combinations(notification_rules(template), 2):
        if first["event"] != second["event"]:
            continue
        prefixes_overlap = first["prefix"].startswith(second["prefix"]) or second["prefix"].startswith(first["prefix"])
        if prefixes_overlap:
            suffixes_overlap = first["suffix"].endswith(second["suffix"]) or second["suffix"].endswith(first["suffix"])
            assert not suffixes_overlap, f"{first} overlaps {second}"


def test_notification_prefixes_match_function_environment(template):
    rules = notification_rules(template)
    ingest_prefixes = {rule["prefix"] for rule in rules if rule["queue"] == "IngestQueue"}
    batch_prefixes = {rule["prefix"] for rule in rules if rule["queue"] == "BatchQueue"}
    ingest_variables = function_properties(template, "IngestFunction")["Environment"]["Variables"]
    batch_variables = function_properties(template, "BatchScoreFunction")["Environment"]["Variables"]

    assert ingest_prefixes == {ingest_variables["INCOMING_PREFIX"]}
    assert batch_prefixes == {batch_variables["BATCH_INPUT_PREFIX"]}
    assert ingest_variables["REJECTED_PREFIX"] in WRITTEN_PREFIXES
    assert batch_variables["BATCH_OUTPUT_PREFIX"] in WRITTEN_PREFIXES


def test_bucket_depends_on_queue_policies(template):
    depends_on = as_list(template["Resources"]["DataBucket"]["DependsOn"])

    assert set(depends_on) == {"IngestQueuePolicy", "BatchQueuePolicy"}


@pytest.mark.parametrize("policy_id, queue_id", [("IngestQueuePolicy", "IngestQueue"),
                                                 ("BatchQueuePolicy", "BatchQueue")])
def test_queue_policy_admits_only_s3_from_bucket(template, policy_id, queue_id):
    properties = template["Resources"][policy_id]["Properties"]
    (statement,) = properties["PolicyDocument"]["Statement"]
    bucket_name = template["Resources"]["DataBucket"]["Properties"]["BucketName"]["Fn::Sub"]

    assert properties["Queues"] == [{"Ref": queue_id}]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::" + bucket_name
    }
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


@pytest.mark.parametrize("policy_id", ["IngestQueuePolicy", "BatchQueuePolicy"])
def test_queue_policy_does_not_reference_bucket(template, policy_id):
    # A reference would make the policy wait for the bucket, while the bucket
    # waits for the policy: a dependency cycle.
    assert not contains_reference(template["Resources"][policy_id], "DataBucket")


# --------------------------------------------------------------------- IAM


def test_allow_statements_have_no_wildcard_resource(template):
    statements = list(policy_statements(template))

    assert statements
    for owner, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{owner} {statement.get('Sid')} allows Resource *"


def test_allow_statements_have_no_wildcard_action(template):
    for owner, statement in policy_statements(template):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{owner} {statement.get('Sid')} allows {action}"


def test_deny_statements_are_conditional(template):
    # A Deny may use wildcards because it only narrows access, but an
    # unconditional one would lock everybody out.
    for owner, statement in policy_statements(template):
        if statement["Effect"] == "Deny":
            assert statement.get("Condition"), f"{owner} {statement.get('Sid')} denies without a condition"


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_function_s3_permissions_are_prefix_scoped(template, function_id):
    granted = set()
    for owner, statement in policy_statements(template):
        if owner != function_id:
            continue
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                granted.add((action, s3_path_after_bucket(resource)))

    assert granted == EXPECTED_S3_PERMISSIONS[function_id]


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
def test_function_list_bucket_is_prefix_conditioned(template, function_id):
    list_statements = [
        statement for owner, statement in policy_statements(template)
        if owner == function_id and "s3:ListBucket" in as_list(statement["Action"])
    ]

    assert len(list_statements) == 1
    (statement,) = list_statements
    prefixes = set(as_list(statement["Condition"]["StringLike"]["s3:prefix"]))
    assert prefixes == EXPECTED_LIST_PREFIXES[function_id]


# ----------------------------------------------------------- bucket security


def test_bucket_blocks_public_access(template):
    block = template["Resources"]["DataBucket"]["Properties"]["PublicAccessBlockConfiguration"]

    assert block == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


def test_bucket_is_encrypted_and_versioned(template):
    properties = template["Resources"]["DataBucket"]["Properties"]
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"


def test_bucket_policy_denies_insecure_transport(template):
    statements = [
        statement for owner, statement in policy_statements(template)
        if template["Resources"][owner]["Type"] == "AWS::S3::BucketPolicy"
    ]

    denials = [statement for statement in statements if statement["Effect"] == "Deny"]
    assert len(denials) == 1
    assert denials[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert denials[0]["Principal"] == "*"


def test_lifecycle_expires_written_prefixes(template):
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiry_by_prefix = {rule.get("Prefix"): rule.get("ExpirationInDays") for rule in rules if "Prefix" in rule}
    noncurrent = [rule for rule in rules if "NoncurrentVersionExpiration" in rule]

    assert expiry_by_prefix["batch/output/"] == {"Ref": "BatchOutputExpirationDays"}
    assert expiry_by_prefix["rejected/"] == {"Ref": "RejectedExpirationDays"}
    assert "models/" not in expiry_by_prefix
    assert len(noncurrent) == 1
    assert noncurrent[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == {"Ref": "NoncurrentVersionExpirationDays"}


# --------------------------------------------------------------- HTTP API


def test_http_api_auth_switches_on_auth_mode(template):
    properties = template["Resources"]["PredictHttpApi"]["Properties"]
    condition, jwt_auth, iam_auth = properties["Auth"]["Fn::If"]
    jwt_configuration = jwt_auth["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"]

    assert template["Transform"][0] == "AWS::LanguageExtensions"
    assert condition == "UseJwtAuth"
    assert template["Conditions"]["UseJwtAuth"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "JWT"]}
    assert jwt_auth["DefaultAuthorizer"] == "JwtAuthorizer"
    assert jwt_configuration["issuer"] == {"Ref": "JwtIssuer"}
    assert jwt_configuration["audience"] == [{"Ref": "JwtAudience"}]
    assert iam_auth == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}


def test_http_api_has_throttling_and_access_log(template):
    properties = template["Resources"]["PredictHttpApi"]["Properties"]
    log_group_id = properties["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]

    assert properties["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert template["Resources"][log_group_id]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert json.loads(properties["AccessLogSettings"]["Format"])["requestId"] == "$context.requestId"


def test_function_url_is_optional_and_uses_iam(template):
    url = template["Resources"]["PredictFunctionUrl"]

    assert url["Condition"] == "CreateFunctionUrl"
    assert parameter_default(template, "EnableFunctionUrl") == "false"
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    assert url["Properties"]["TargetFunctionArn"] == {"Fn::GetAtt": ["PredictFunction", "Arn"]}
    assert template["Outputs"]["FunctionUrl"]["Condition"] == "CreateFunctionUrl"


# --------------------------------------------------------------- monitoring


@pytest.mark.parametrize("function_id", FUNCTION_BINARIES)
@pytest.mark.parametrize("metric_name", ["Errors", "Throttles"])
def test_function_has_lambda_metric_alarm(template, function_id, metric_name):
    alarms = [
        alarm["Properties"] for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == "AWS/Lambda"
        and alarm["Properties"]["MetricName"] == metric_name
        and alarm["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    ]

    assert len(alarms) == 1
    assert alarms[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_http_api_has_5xx_alarm(template):
    alarms = [
        alarm["Properties"] for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == "AWS/ApiGateway" and alarm["Properties"]["MetricName"] == "5xx"
    ]

    assert len(alarms) == 1
    assert alarms[0]["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "PredictHttpApi"}}]


def dashboard_widgets(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Parse the dashboard body, with each ${...} of its Fn::Sub replaced by the variable name."""
    body = template["Resources"]["ServingDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    substituted = re.sub(r"\$\{([^}]+)\}", r"<\1>", body)
    return json.loads(substituted)["widgets"]


def test_dashboard_body_is_valid_json(template):
    widgets = dashboard_widgets(template)

    assert widgets
    for widget in widgets:
        assert widget["properties"]["region"] == "<AWS::Region>"


def test_dashboard_searches_every_emf_metric(template):
    expressions = [
        metric[0]["expression"]
        for widget in dashboard_widgets(template)
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], dict) and "expression" in metric[0]
    ]

    for metric_name in EMF_METRICS:
        searches = [expression for expression in expressions if f'MetricName="{metric_name}"' in expression]
        assert searches, f"no dashboard widget searches {metric_name}"
    assert any("{<MetricsNamespace>,Function}" in expression for expression in expressions)
    assert any("{<MetricsNamespace>,Function,Model}" in expression for expression in expressions)


def test_outputs_name_endpoints_and_queues(template):
    expected = {"ApiUrl", "FunctionUrl", "BucketName", "IngestQueueUrl", "IngestDeadLetterQueueUrl",
                "BatchQueueUrl", "BatchDeadLetterQueueUrl"}

    assert set(template["Outputs"]) == expected


# ----------------------------------------------------------- SAM transform


class OfflineManagedPolicyLoader:
    """Stand-in for SAM's managed policy loader, which would call IAM.

    SAM calls it only for a policy given by name. The template names none.
    """

    def load(self) -> dict[str, str]:
        raise AssertionError("the template names a managed policy, which SAM would look up in IAM")


def evaluate_condition(template: dict[str, Any], expression: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(expression, dict):
        ((function, argument),) = expression.items()
        if function == "Ref":
            return parameters[argument]
        if function == "Condition":
            return evaluate_condition(template, template["Conditions"][argument], parameters)
        if function == "Fn::Equals":
            return (evaluate_condition(template, argument[0], parameters)
                    == evaluate_condition(template, argument[1], parameters))
        if function == "Fn::Not":
            return not evaluate_condition(template, argument[0], parameters)
        raise NotImplementedError(f"condition function {function}")
    return expression


def resolve_conditions(template: dict[str, Any], value: Any, parameters: dict[str, Any]) -> Any:
    """Resolve Fn::If and drop AWS::NoValue, as AWS::LanguageExtensions does before SAM runs."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            chosen = when_true if evaluate_condition(template, template["Conditions"][condition], parameters) else when_false
            return resolve_conditions(template, chosen, parameters)
        resolved = {}
        for key, item in value.items():
            item = resolve_conditions(template, item, parameters)
            if item != {"Ref": "AWS::NoValue"}:
                resolved[key] = item
        return resolved
    if isinstance(value, list):
        return [resolve_conditions(template, item, parameters) for item in value]
    return value


def transform_with_sam(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    parameters.update(overrides)

    resolved = resolve_conditions(template, copy.deepcopy(template), parameters)
    resolved["Transform"] = "AWS::Serverless-2016-10-31"
    # sam package replaces the local CodeUri with the uploaded artifact.
    for resource in resolved["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/function.zip"

    return transform(resolved, overrides, OfflineManagedPolicyLoader())


@pytest.fixture
def offline_aws_environment(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


JWT_PARAMETERS = {
    "AuthMode": "JWT",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example",
    "JwtAudience": "example-client-id",
}


def api_operations(transformed: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    (api,) = resources_of_type(transformed, "AWS::ApiGatewayV2::Api").values()
    return {
        (method.upper(), path): operation
        for path, methods in api["Properties"]["Body"]["paths"].items()
        for method, operation in methods.items()
    }


@pytest.mark.parametrize("overrides, authorizer", [({}, "AWS_IAM"), (JWT_PARAMETERS, "JwtAuthorizer")])
def test_sam_transform_secures_every_route(template, offline_aws_environment, overrides, authorizer):
    operations = api_operations(transform_with_sam(template, overrides))

    assert set(operations) == PREDICT_ROUTES
    for route, operation in operations.items():
        assert operation["security"] == [{authorizer: []}], route
        assert operation["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0", route


def test_sam_transform_configures_jwt_authorizer(template, offline_aws_environment):
    transformed = transform_with_sam(template, JWT_PARAMETERS)
    (api,) = resources_of_type(transformed, "AWS::ApiGatewayV2::Api").values()
    scheme = api["Properties"]["Body"]["components"]["securitySchemes"]["JwtAuthorizer"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]

    assert authorizer["type"] == "jwt"
    assert authorizer["jwtConfiguration"]["issuer"] == {"Ref": "JwtIssuer"}
    assert authorizer["identitySource"] == "$request.header.Authorization"


def test_sam_transform_maps_queues_to_functions(template, offline_aws_environment):
    transformed = transform_with_sam(template, {})
    mappings = resources_of_type(transformed, "AWS::Lambda::EventSourceMapping").values()

    wiring = {
        (mapping["Properties"]["FunctionName"]["Ref"], mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0])
        for mapping in mappings
    }
    assert wiring == {("IngestFunction", "IngestQueue"), ("BatchScoreFunction", "BatchQueue")}
    for mapping in mappings:
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_sam_generated_roles_have_no_wildcard_allow(template, offline_aws_environment):
    transformed = transform_with_sam(template, {})
    roles = resources_of_type(transformed, "AWS::IAM::Role")

    assert set(roles) == {f"{function_id}Role" for function_id in FUNCTION_BINARIES}
    for owner, statement in policy_statements(transformed):
        if statement["Effect"] != "Allow":
            continue
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{owner} {statement.get('Sid')} allows Resource *"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{owner} allows {action}"


def test_sam_transform_omits_email_subscription_by_default(template, offline_aws_environment):
    transformed = transform_with_sam(template, {})

    assert "Subscription" not in transformed["Resources"]["AlarmTopic"]["Properties"]
    assert transformed["Resources"]["PredictFunctionUrl"]["Condition"] == "CreateFunctionUrl"


def test_sam_transform_subscribes_alarm_email(template, offline_aws_environment):
    transformed = transform_with_sam(template, {"AlarmEmail": "oncall@example.com"})
    subscriptions = transformed["Resources"]["AlarmTopic"]["Properties"]["Subscription"]

    assert subscriptions == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
