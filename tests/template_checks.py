"""Checks on template.yaml that cfn-lint cannot make: the operational
promises of the deployment (docs/deploying.md, docs/operating.md).

    python tests/template_checks.py TEMPLATE PARAMS_DOC METRICS SRC_DIR MODEL

Prints one line per problem and exits 1 if there is any. Needs PyYAML
(tests/template_lint.sh runs it with the python of cfn-lint's venv, which
has it). The short-form tags (!Ref, !Sub, ...) are read as the long forms
CloudFormation defines ({"Ref": ...}, {"Fn::Sub": ...}); cfn-lint itself has
already validated the template, and importing its decoder would cost a
second per run (measured: 1.25 s CPU), for the ~30 runs of the lint script.
tests/template_lint.sh also proves that each check catches a deliberate
break.

What is checked:
  metrics     every metric an alarm or the dashboard names (namespace,
              name, dimension names and Scorer dimension values) is in the
              emitted-metrics list, and every non-pending Scorer metric of
              that list is emitted somewhere in src/;
  searches    every SEARCH of the dashboard is well formed (balanced
              parentheses, braces and quotes; SEARCH('{Namespace,Dim,...}
              terms', 'Statistic', period)), names its metric, and its
              {Namespace,Dim,...} schema is exactly a dimension set the code
              emits that metric with (a SEARCH matches only metrics with
              exactly the schema's dimensions); Dim="value" terms name
              dimensions of the schema, with values the code emits;
  features    the model defines the contract (issue 20): no feature name of
              the shipped export MODEL (features[].name, dataset_name,
              api_name; case and spacing ignored) appears anywhere in the
              template, so a model with other features needs no change of it;
  alarms      each alarm notifies the one SNS topic, states how missing data
              is treated (never "breaching": an idle stack is healthy), and
              is shown on the dashboard; the dashboard body is JSON;
  failures    every asynchronous event source has an OnFailure destination
              with explicit retries and event age, every consumed queue a
              dead-letter queue, and every one of those queues an alarm;
              SQS sources report batch item failures and cap concurrency;
  rollout     every function publishes a live alias for every change; the
              Function URL function rolls out with a DeploymentPreference
              whose alarms watch that function's new version;
  isolation   the Function URL function has no event sources and a role that
              only writes logs; the batch function has reserved concurrency
              above the Distributed Map's and the queue's caps (defaults);
              no statement allows every action, or every resource except
              where AWS has no resource-level permission;
  triggers    the S3 notification fires for every object under InputPrefix
              (no suffix filter) and nothing else, and the Rules keep
              OutputPrefix apart from it;
  parameters  the parameter table of docs/deploying.md lists exactly the template's
              parameters, with their defaults;
  delimiter   the Distributed Map reads with the batch function's delimiter:
              for every allowed CsvDelimiter, the substitution the state
              machine's ReaderConfig.CSVDelimiter and BatchInput.delimiter
              take (tests/template_lint.sh checks they take the same one) is
              the reader's name for it, "detect" reading as COMMA.
"""

import json
import os
import re
import sys

import yaml

template_path, params_doc_path, metrics_path, src_dir, model_path = sys.argv[1:6]
problems = []
notes = []


def bad(msg):
    problems.append(msg)


class CfnLoader(yaml.SafeLoader):
    pass


def cfn_tag(loader, suffix, node):
    """!Ref X -> {"Ref": X}; !GetAtt A.B -> {"Fn::GetAtt": ["A", "B"]}; !Foo v -> {"Fn::Foo": v}."""
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", cfn_tag)
try:
    with open(template_path, encoding="utf-8") as fh:
        tpl = yaml.load(fh, Loader=CfnLoader)
except yaml.YAMLError as e:
    print(f"{template_path}: not YAML: {e}")
    sys.exit(1)
if not isinstance(tpl, dict):
    print(f"{template_path}: not a template")
    sys.exit(1)
params = tpl.get("Parameters", {})
resources = tpl.get("Resources", {})


def of_type(t):
    return {k: v for k, v in resources.items() if v.get("Type") == t}


def props(name):
    return resources.get(name, {}).get("Properties", {}) or {}


def ref_name(v):
    """'X' for {"Ref": "X"} or {"Ref": "X.Alias"}; the GetAtt target for {"Fn::GetAtt": ["X", ...]}."""
    if isinstance(v, dict):
        if "Ref" in v:
            return str(v["Ref"]).split(".")[0]
        if "Fn::GetAtt" in v:
            g = v["Fn::GetAtt"]
            return (g[0] if isinstance(g, list) else str(g).split(".")[0]).split(".")[0]
    return None


def as_list(v):
    return v if isinstance(v, list) else [v]


def if_branches(v):
    """The values an item may take: both branches of a Fn::If, else itself."""
    if isinstance(v, dict) and "Fn::If" in v:
        return [b for b in v["Fn::If"][1:] if not (isinstance(b, dict) and b.get("Ref") == "AWS::NoValue")]
    return [v]


# --- the emitted-metrics list ----------------------------------------------------
values = {}  # dimension -> allowed values (Scorer)
listed = {}  # (namespace, metric) -> {"entry": set|None, "dims": [frozenset], "pending": str|None}
for n, line in enumerate(open(metrics_path, encoding="utf-8"), 1):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    words = line.split()
    if words[0] == "value" and len(words) == 3:
        values[words[1]] = set(words[2].split(","))
        continue
    if len(words) < 2:
        bad(f"{metrics_path}:{n}: expected NAMESPACE METRIC [key=value...]")
        continue
    ns, name, opts = words[0], words[1], dict(w.split("=", 1) for w in words[2:] if "=" in w)
    default_dims = "Service,EntryPoint" if ns == "Scorer" else ""
    listed[(ns, name)] = {
        "entry": set(opts["entry"].split(",")) if "entry" in opts else None,
        "dims": [frozenset(d.split(",")) for d in opts.get("dims", default_dims).split(";") if d],
        "pending": opts.get("pending"),
    }

# Which listed Scorer metrics does the code emit? String literals in src/.
src_text = ""
for root, _, files in os.walk(src_dir):
    for f in files:
        if f.endswith(".rs"):
            src_text += open(os.path.join(root, f), encoding="utf-8").read()


def dynamic(name):
    """Files_<status>, Rejected_<code>: built at run time (format!("Files_{}", ...))."""
    return "_" in name


def emitted_in_src(name):
    if dynamic(name):
        # Only the prefix can be seen in the code: the status or code may be
        # an enum variant's serde name. Its values are checked by the tests
        # that assert on summaries and metrics, not here.
        return f'"{name.split("_", 1)[0]}_{{' in src_text
    return f'"{name}"' in src_text


if src_text:
    for (ns, name), e in sorted(listed.items()):
        if ns != "Scorer":
            continue
        if e["pending"] is None and not emitted_in_src(name):
            bad(f"{metrics_path}: Scorer {name} is listed as emitted, but no code in {src_dir}/ emits it (mark it pending=... or remove it)")
        elif e.get("elsewhere") and emitted_in_src(name):
            notes.append(f"Scorer {name} is now emitted by {src_dir}/: list it in {metrics_path} (then drop it from PENDING_ELSEWHERE)")
        elif e["pending"] is not None and not dynamic(name) and emitted_in_src(name):
            notes.append(f"Scorer {name} is now emitted by {src_dir}/: drop its pending={e['pending']} mark in {metrics_path}")
    for v in sorted(values.get("EntryPoint", ())):
        if f'"{v}"' not in src_text:
            bad(f"{metrics_path}: EntryPoint {v} is listed, but no code in {src_dir}/ names it")


pending_used = set()


def check_metric(where, ns, name, dims, searched=False):
    """dims: {name: value or None when not a literal}; searched: a SEARCH
    schema, whose dimensions without a value match every value."""
    e = listed.get((ns, name))
    if e is None:
        bad(f"{where}: {ns} {name} is not emitted by anyone (not in {metrics_path})")
        return
    if frozenset(dims) not in e["dims"]:
        bad(f"{where}: {ns} {name} with dimensions {sorted(dims)}: it is emitted with {[sorted(d) for d in e['dims']]}")
        return
    if ns == "Scorer":
        for d, v in dims.items():
            allowed = e["entry"] if d == "EntryPoint" and e["entry"] else values.get(d)
            if v is None:
                if not searched:
                    bad(f"{where}: Scorer {name}: dimension {d} must be a literal")
            elif allowed is not None and v not in allowed:
                bad(f"{where}: Scorer {name} is not emitted with {d}={v} (emitted with {sorted(allowed)})")
    if e["pending"]:
        pending_used.add(f"{name} ({e['pending']})")


def literal(v):
    return v if isinstance(v, (str, int, float)) else None


# --- SEARCH expressions ------------------------------------------------------------------
# SEARCH(' {Namespace, DimensionName1, ...} SearchTerm', 'Statistic'[, Period]):
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html
SEARCH_CALL = re.compile(r"SEARCH\(\s*'((?:[^'\\]|\\.)*)'\s*,\s*'([^']*)'\s*(?:,\s*(\d+)\s*)?\)")
STATISTIC = re.compile(r"(Sum|Average|Maximum|Minimum|SampleCount|IQM|p\d{1,2}(\.\d+)?|(tm|wm|tc|ts)\d{1,2}(\.\d+)?)")
TERM = re.compile(r'(NOT\s+)?([A-Za-z_][\w.:]*)\s*=\s*(?:"([^"]*)"|([^\s()"]+))')


def balance_problem(text, quotes="'\""):
    """Why parentheses, braces or quotes of an expression do not balance, or
    None. Text inside a pair of `quotes` is not looked into."""
    stack, quote = [], None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
            continue
        if c in quotes:
            quote = c
        elif c in "({":
            stack.append((c, i))
        elif c in ")}":
            if not stack or stack[-1][0] != {")": "(", "}": "{"}[c]:
                return f"unbalanced {c!r} at character {i}"
            stack.pop()
    if quote:
        return f"unclosed {quote} quote"
    if stack:
        return f"unclosed {stack[-1][0]!r} at character {stack[-1][1]}"
    return None


def check_search(where, expression):
    """Each SEARCH of a dashboard expression: well formed, a metric named, its
    schema exactly a dimension set the code emits the metric with."""
    problem = balance_problem(expression)
    if problem:
        bad(f"{where}: SEARCH expression {expression!r}: {problem}")
        return
    starts = [m.start() for m in re.finditer(r"\bSEARCH\s*\(", expression)]
    calls = list(SEARCH_CALL.finditer(expression))
    if len(calls) != len(starts) or [c.start() for c in calls] != starts:
        bad(f"{where}: SEARCH expression {expression!r} is malformed: want SEARCH('{{Namespace,Dim,...}} terms', 'Statistic', period)")
        return
    for call in calls:
        query, stat = call.group(1), call.group(2)
        problem = balance_problem(query, quotes='"')
        if problem:
            bad(f"{where}: SEARCH query {query!r}: {problem}")
            continue
        if not STATISTIC.fullmatch(stat):
            bad(f"{where}: SEARCH statistic {stat!r} is not a CloudWatch statistic")
        schema = re.match(r"\s*\{([^{}]*)\}", query)
        if not schema:
            bad(f"{where}: SEARCH {query!r} has no {{Namespace,Dim,...}} schema: it could match metrics of any dimension set")
            continue
        names = [n.strip().strip('"') for n in schema.group(1).split(",")]
        if any(not n for n in names):
            bad(f"{where}: SEARCH schema {{{schema.group(1)}}} has an empty name")
            continue
        ns, dims = names[0], names[1:]
        terms = TERM.findall(query[schema.end():])
        exact = [v for neg, k, v, _ in terms if not neg and k == "MetricName" and v]
        partial = [p for neg, k, _, p in terms if not neg and k == "MetricName" and p]
        values_ = {}
        for neg, k, v, p in terms:
            if neg or k == "MetricName":
                continue
            if k not in dims:
                bad(f"{where}: SEARCH term {k}= names a dimension that is not in the schema {{{schema.group(1)}}}")
            elif v:
                values_[k] = v
        if len(set(dims)) != len(dims):
            bad(f"{where}: SEARCH schema {{{schema.group(1)}}} repeats a dimension")
        if exact:
            for name in exact:
                check_metric(f"{where} (SEARCH)", ns, name, {d: values_.get(d) for d in dims}, searched=True)
        elif partial:
            for token in partial:
                cands = [(n, e) for (n_ns, n), e in listed.items() if n_ns == ns and token.lower() in n.lower()]
                if not cands:
                    bad(f"{where}: SEARCH MetricName={token} matches no metric of {ns} in {metrics_path}")
                elif not any(frozenset(dims) in e["dims"] for _, e in cands):
                    bad(f"{where}: SEARCH schema {{{schema.group(1)}}}: no {ns} metric matching {token} is emitted with dimensions {sorted(dims)}")
        else:
            bad(f"{where}: SEARCH {query!r} names no metric (MetricName=\"...\")")


# --- alarms ----------------------------------------------------------------------------
alarms = of_type("AWS::CloudWatch::Alarm")
topics = of_type("AWS::SNS::Topic")
if len(topics) != 1:
    bad(f"expected one SNS topic for every alarm, found {len(topics)}")
topic = next(iter(topics), None)
alarm_metrics = {}  # alarm -> [(ns, name, {dim: raw value})]
for a, res in alarms.items():
    p = res.get("Properties", {})
    refs = []
    if "MetricName" in p:
        refs.append((p.get("Namespace"), p["MetricName"], p.get("Dimensions") or []))
    for m in p.get("Metrics") or []:
        if "MetricStat" in m:
            mm = m["MetricStat"].get("Metric", {})
            refs.append((mm.get("Namespace"), mm.get("MetricName"), mm.get("Dimensions") or []))
    if not refs:
        bad(f"alarm {a}: names no metric")
    alarm_metrics[a] = []
    for ns, name, dims in refs:
        raw = {d["Name"]: d["Value"] for d in dims}
        alarm_metrics[a].append((ns, name, raw))
        check_metric(f"alarm {a}", ns, name, {k: literal(v) if ns == "Scorer" else "x" for k, v in raw.items()})
    if topic and not any(ref_name(x) == topic for x in as_list(p.get("AlarmActions") or [])):
        bad(f"alarm {a}: its AlarmActions do not notify {topic} (every alarm notifies the one topic)")
    tmd = p.get("TreatMissingData")
    if tmd is None:
        bad(f"alarm {a}: no TreatMissingData (say what silence means)")
    elif tmd == "breaching":
        bad(f"alarm {a}: TreatMissingData is breaching: it fires on an idle, healthy stack")

# --- the dashboard ---------------------------------------------------------------------------
dashboards = of_type("AWS::CloudWatch::Dashboard")
if len(dashboards) != 1:
    bad(f"expected one dashboard, found {len(dashboards)}")
for dname, res in dashboards.items():
    body = res["Properties"].get("DashboardBody")
    text = body.get("Fn::Sub") if isinstance(body, dict) else body
    if isinstance(text, list):
        text = text[0]
    shown = set(re.findall(r"\$\{(\w+)\.Arn\}", text or ""))
    # Substitutions: inside a JSON string a word, bare ones (numbers) a number.
    flat = re.sub(
        r'("(?:[^"\\]|\\.)*")|\$\{[^}]+\}',
        lambda m: re.sub(r"\$\{[^}]+\}", "X", m.group(1)) if m.group(1) else "0",
        text or "",
    )
    try:
        dash = json.loads(flat)
    except ValueError as e:
        bad(f"dashboard {dname}: the body is not JSON: {e}")
        continue
    widgets = dash.get("widgets")
    if not isinstance(widgets, list) or not widgets:
        bad(f"dashboard {dname}: no widgets")
        continue
    for i, w in enumerate(widgets):
        where = f"dashboard widget {i} ({w.get('properties', {}).get('title', w.get('type'))!r})"
        for m in (w.get("properties", {}).get("metrics") or []) if w.get("type") == "metric" else []:
            parts = [x for x in m if not isinstance(x, dict)]
            if not parts:
                for x in m:
                    if isinstance(x, dict) and "SEARCH" in str(x.get("expression", "")):
                        check_search(where, x["expression"])
                continue  # an expression
            if "." in parts or len(parts) % 2:
                bad(f"{where}: write each metric in full (no '.' shorthand): {m}")
                continue
            ns, name, rest = parts[0], parts[1], parts[2:]
            dims = dict(zip(rest[0::2], rest[1::2]))
            check_metric(where, ns, name, {k: (None if v == "X" and ns == "Scorer" else v) for k, v in dims.items()})
    for a in sorted(set(alarms) - shown):
        bad(f"dashboard {dname}: alarm {a} is not in its alarm widget")

# --- the model defines the contract: no feature named in the template ---------------------
try:
    with open(model_path, encoding="utf-8") as fh:
        model = json.load(fh)
    feature_names = sorted({
        str(f[k]) for f in model.get("features") or [] for k in ("name", "dataset_name", "api_name") if f.get(k)
    })
except (OSError, ValueError, AttributeError, TypeError) as e:
    bad(f"{model_path}: cannot read the shipped model's feature names: {e}")
    feature_names = []
if not feature_names and not problems:
    bad(f"{model_path}: no features[].name: the check that the template names no feature would check nothing")
template_lines = open(template_path, encoding="utf-8").read().splitlines()
for fname in feature_names:
    # Case and spacing ignored; not part of a longer word.
    words = [re.escape(w) for w in re.split(r"\s+", fname.strip()) if w]
    pattern = re.compile(r"(?<![A-Za-z0-9])" + r"\s+".join(words) + r"(?![A-Za-z0-9])", re.IGNORECASE)
    for n, line in enumerate(template_lines, 1):
        if pattern.search(line):
            bad(
                f"{template_path}:{n}: names the feature {fname!r} of the shipped model ({model_path}): the model "
                f"defines the features (issue 20), so the template must not (a dashboard finds them with "
                f"SEARCH over the Feature dimension)"
            )

# --- failure destinations and queues -------------------------------------------------------
functions = of_type("AWS::Serverless::Function")
ASYNC = {"S3", "SNS", "EventBridgeRule", "CloudWatchEvent", "Schedule", "ScheduleV2", "IoTRule"}


def queue_alarmed(queue):
    """An alarm on the queue's visible messages (its depth) exists."""
    for a, refs in alarm_metrics.items():
        for ns, name, raw in refs:
            if ns == "AWS/SQS" and name == "ApproximateNumberOfMessagesVisible" and ref_name(raw.get("QueueName")) == queue:
                return True
    return False


def queue_visibility(vis, timeout):
    """Why the queue's visibility timeout may not outlast the function's
    (AWS: at least 6x the function timeout, plus the batching window), or
    None. cfn-lint's E3505 compares them only when the event source mapping
    names the function itself: with AutoPublishAlias it names the alias and
    the rule is silent, hence this check."""
    window = int(params.get("MaximumBatchingWindowInSeconds", {}).get("MaxValue", 300))
    if isinstance(vis, int) and isinstance(timeout, int):
        if vis < 6 * timeout:
            return f"visibility timeout {vis} s is less than 6 x the function timeout {timeout} s"
        return None
    t_param = timeout.get("Ref") if isinstance(timeout, dict) else None
    fim = vis.get("Fn::FindInMap") if isinstance(vis, dict) else None
    if not (t_param and fim and fim[1] == {"Ref": t_param}):
        return f"visibility timeout {vis} is not derived from the function's timeout {timeout} (use !FindInMap [<map>, !Ref <timeout parameter>, <key>])"
    mapping = (tpl.get("Mappings") or {}).get(fim[0]) or {}
    allowed = [str(v) for v in params.get(t_param, {}).get("AllowedValues") or []]
    if sorted(mapping, key=str) != sorted(allowed):
        return f"mapping {fim[0]} keys {sorted(mapping)} differ from {t_param}'s AllowedValues {allowed}"
    for t, entry in mapping.items():
        v = int(entry.get(fim[2], 0))
        if v < 6 * int(t) + window:
            return f"{fim[0]}: timeout {t} s gives visibility {v} s, less than 6 x {t} + {window} (the batching window)"
    return None


for f, res in functions.items():
    p = res.get("Properties", {})
    events = p.get("Events") or {}
    kinds = {e.get("Type") for e in events.values()}
    if kinds & ASYNC:
        eic = p.get("EventInvokeConfig") or {}
        dest = ((eic.get("DestinationConfig") or {}).get("OnFailure") or {})
        if not dest.get("Destination"):
            bad(f"function {f}: invoked asynchronously ({sorted(kinds & ASYNC)}) but has no OnFailure destination: an event that exhausts its retries would be dropped")
        elif dest.get("Type") == "SQS" and not queue_alarmed(ref_name(dest["Destination"])):
            bad(f"function {f}: its OnFailure queue {ref_name(dest['Destination'])} has no alarm on its depth")
        for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
            if k not in eic:
                bad(f"function {f}: EventInvokeConfig.{k} is not set explicitly")
    for ename, e in events.items():
        ep = e.get("Properties") or {}
        if e.get("Type") == "SQS":
            q = ref_name(ep.get("Queue"))
            redrive = props(q).get("RedrivePolicy") or {}
            dlq = ref_name(redrive.get("deadLetterTargetArn"))
            if not dlq:
                bad(f"function {f}: event {ename}: queue {q} has no dead-letter queue (RedrivePolicy)")
            elif not queue_alarmed(dlq):
                bad(f"function {f}: event {ename}: dead-letter queue {dlq} has no alarm on its depth")
            visibility_problem = queue_visibility(props(q).get("VisibilityTimeout"), p.get("Timeout"))
            if visibility_problem:
                bad(f"function {f}: event {ename}: queue {q}: {visibility_problem}")
            if "ReportBatchItemFailures" not in (ep.get("FunctionResponseTypes") or []):
                bad(f"function {f}: event {ename}: no ReportBatchItemFailures (one bad message would retry the batch)")
            if "MaximumConcurrency" not in (ep.get("ScalingConfig") or {}):
                bad(f"function {f}: event {ename}: no ScalingConfig.MaximumConcurrency (a backlog would be throttled back into the queue)")
        if e.get("Type") == "S3":
            rules = (((ep.get("Filter") or {}).get("S3Key") or {}).get("Rules")) or []
            names = [r.get("Name") for r in rules]
            if "suffix" in names:
                bad(f"function {f}: event {ename}: a suffix filter: objects under InputPrefix that do not match it would get no answer")
            prefixes = [r.get("Value") for r in rules if r.get("Name") == "prefix"]
            if prefixes != [{"Ref": "InputPrefix"}]:
                bad(f"function {f}: event {ename}: the filter must be exactly one prefix rule, !Ref InputPrefix (is: {rules})")

# --- rollout -------------------------------------------------------------------------------
for f, res in functions.items():
    p = res.get("Properties", {})
    if not p.get("AutoPublishAlias"):
        bad(f"function {f}: no AutoPublishAlias (event sources and the URL must point at an alias)")
    elif p.get("AutoPublishAliasAllProperties") is not True:
        bad(f"function {f}: AutoPublishAliasAllProperties is not true: a configuration change would not reach the alias")
    dp = p.get("DeploymentPreference")
    if p.get("FunctionUrlConfig") and not dp:
        bad(f"function {f}: serves the Function URL without a DeploymentPreference (a new model would take all traffic at once)")
    if dp is not None:
        dp_alarms = [ref_name(x) for x in as_list(dp.get("Alarms") or [])]
        if not dp_alarms:
            bad(f"function {f}: DeploymentPreference without Alarms: nothing can roll a bad version back")
        for a in dp_alarms:
            if a not in alarms:
                bad(f"function {f}: DeploymentPreference alarm {a} is not an alarm of this template")
                continue
            watched = [raw for ns, name, raw in alarm_metrics[a] if ns == "AWS/Lambda"]
            if not any(ref_name(raw.get("FunctionName")) == f and "ExecutedVersion" in raw for raw in watched):
                bad(f"function {f}: DeploymentPreference alarm {a} does not watch this function's new version (FunctionName and ExecutedVersion dimensions)")

# --- isolation -------------------------------------------------------------------------------
roles = of_type("AWS::IAM::Role")


def statements(role):
    for pol in props(role).get("Policies") or []:
        for st in (pol.get("PolicyDocument") or {}).get("Statement") or []:
            for s in if_branches(st):
                if isinstance(s, dict):
                    yield pol.get("PolicyName"), s


NO_RESOURCE_LEVEL = {"cloudwatch:DescribeAlarms"}
for r in roles:
    for pol, s in statements(r):
        if s.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in as_list(s.get("Action"))]
        if any(a == "*" or a.endswith(":*") for a in actions):
            bad(f"role {r}: statement {s.get('Sid')} allows {actions}: name the actions")
        if "*" in as_list(s.get("Resource")) and not set(actions) <= NO_RESOURCE_LEVEL:
            bad(f"role {r}: statement {s.get('Sid')} allows {actions} on every resource")

url_functions = [f for f, r in functions.items() if r.get("Properties", {}).get("FunctionUrlConfig")]
batch_functions = [f for f, r in functions.items() if r.get("Properties", {}).get("Events")]
if len(url_functions) != 1:
    bad(f"expected one function with a Function URL, found {url_functions}")
API_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
for f in url_functions:
    p = functions[f]["Properties"]
    if p.get("Events"):
        bad(f"function {f}: serves the Function URL and also has event sources {sorted(p['Events'])}: batch work would share its capacity")
    if p.get("Policies"):
        bad(f"function {f}: has SAM Policies; its only permissions must be its role's")
    role = ref_name(p.get("Role"))
    if role not in roles:
        bad(f"function {f}: its Role is not a role of this template")
        continue
    for pol, s in statements(role):
        extra = sorted(set(str(a) for a in as_list(s.get("Action"))) - API_ACTIONS)
        if s.get("Effect") == "Allow" and extra:
            bad(f"role {role} of the Function URL function {f}: statement {s.get('Sid')} allows {extra} (it may only write its logs: no S3, SQS or KMS)")
    if props(role).get("ManagedPolicyArns"):
        bad(f"role {role} of the Function URL function {f}: has managed policies")
for f in batch_functions:
    p = functions[f]["Properties"]
    if f in url_functions:
        continue
    if "ReservedConcurrentExecutions" not in p:
        bad(f"function {f}: has event sources but no ReservedConcurrentExecutions: a flood could take the API's concurrency")


def default(name):
    try:
        return int(params[name]["Default"])
    except (KeyError, TypeError, ValueError):
        return None


cap, mapc, qc = default("BatchReservedConcurrency"), default("MapMaxConcurrency"), default("QueueMaximumConcurrency")
if None in (cap, mapc, qc):
    bad("parameters BatchReservedConcurrency, MapMaxConcurrency and QueueMaximumConcurrency need numeric defaults")
elif cap != -1 and not cap > mapc + qc:
    bad(f"default BatchReservedConcurrency ({cap}) must exceed MapMaxConcurrency + QueueMaximumConcurrency ({mapc} + {qc}), or Distributed Map batches and queue batches are throttled even without files")

# --- the trigger can never fire on outputs ------------------------------------------------
asserted = json.dumps(tpl.get("Rules", {}))
want = json.dumps({"Fn::Not": [{"Fn::Equals": [{"Ref": "InputPrefix"}, {"Ref": "OutputPrefix"}]}]})
unconditional = any(
    json.dumps(a.get("Assert")) == want for rule in (tpl.get("Rules") or {}).values() for a in rule.get("Assertions") or []
)
if not unconditional:
    bad("Rules: no unconditional assertion that OutputPrefix differs from InputPrefix (outputs and summaries could trigger the function)")
for pname in ("InputPrefix", "OutputPrefix"):
    if params.get(pname, {}).get("AllowedPattern") != "^[A-Za-z0-9._-]+/$":
        bad(f"parameter {pname}: AllowedPattern must be one path segment ending in '/' (so different prefixes are disjoint)")

# --- the parameter table of docs/deploying.md --------------------------------------------------------------
params_doc = open(params_doc_path, encoding="utf-8").read().splitlines()
rows, in_table = [], False
for line in params_doc:
    if re.match(r"^\|\s*parameter\s*\|\s*default\s*\|", line):
        in_table = True
        continue
    if in_table:
        if not line.startswith("|"):
            if rows:
                break
            continue
        if re.match(r"^\|[-\s|]+\|$", line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(cells)
if not rows:
    bad(f"{params_doc_path}: no table with the header '| parameter | default | ...'")
documented = {}
for cells in rows:
    names = re.findall(r"`([A-Za-z0-9]+)`", cells[0])
    defaults = [d.strip() for d in cells[1].split(",")] if len(cells) > 1 else []
    for i, n in enumerate(names):
        documented[n] = defaults[i] if len(defaults) == len(names) else None
for n in sorted(set(params) - set(documented)):
    bad(f"{params_doc_path}: template parameter {n} is missing from the parameter table")
for n in sorted(set(documented) - set(params)):
    bad(f"{params_doc_path}: the parameter table lists {n}, which is not a template parameter")
for n, shown in sorted(documented.items()):
    if n not in params or shown is None:
        continue
    want = str(params[n].get("Default", ""))
    got = shown.strip("`")
    if want == "" and got in ("none", "generated", "same", "empty"):
        continue
    if got != want:
        bad(f"{params_doc_path}: parameter {n}: the table says default {shown}, the template {want!r}")

# --- the Distributed Map reads with the batch function's delimiter ----------------------------
# What ReaderConfig.CSVDelimiter must say for each CsvDelimiter value ("" is
# "detect each file", which the ItemReader cannot do: it reads COMMA, its default).
READER_NAME = {"": "COMMA", ",": "COMMA", ";": "SEMICOLON", "tab": "TAB"}


def evaluate(v, given):
    """A value of the template, with the parameters in `given` (Ref, Fn::If, literals)."""
    if isinstance(v, (str, int, float)):
        return str(v)
    if isinstance(v, dict) and "Ref" in v:
        return given.get(v["Ref"])
    if isinstance(v, dict) and "Fn::If" in v:
        cond, yes, no = v["Fn::If"]
        return evaluate(yes if holds({"Condition": cond}, given) else no, given)
    return None


def holds(c, given):
    if isinstance(c, dict):
        if "Condition" in c:
            return holds((tpl.get("Conditions") or {}).get(c["Condition"]), given)
        if "Fn::Equals" in c:
            a, b = c["Fn::Equals"]
            return evaluate(a, given) == evaluate(b, given)
        if "Fn::Not" in c:
            return not holds(c["Fn::Not"][0], given)
        if "Fn::And" in c:
            return all(holds(x, given) for x in c["Fn::And"])
        if "Fn::Or" in c:
            return any(holds(x, given) for x in c["Fn::Or"])
    return None


def placeholder(v):
    m = re.fullmatch(r"\$\{(\w+)\}", v) if isinstance(v, str) else None
    return m.group(1) if m else None


delimiter_param = params.get("CsvDelimiter")
machines = {k: v for k, v in of_type("AWS::Serverless::StateMachine").items() if str(v.get("Properties", {}).get("DefinitionUri", "")).endswith(".json")}
if not delimiter_param:
    bad("parameter CsvDelimiter is missing: the batch function and the Distributed Map read files by it")
for name, sm in machines.items():
    p = sm["Properties"]
    try:
        text = open(p["DefinitionUri"], encoding="utf-8").read()
    except OSError as e:
        bad(f"{name}: cannot read its DefinitionUri {p['DefinitionUri']}: {e}")
        continue
    # Unquoted placeholders are numbers; a 0 keeps the file JSON.
    definition = json.loads(re.sub(r"(?<=[:\[,])(\s*)\$\{[^}]*\}", r"\g<1>0", text))
    readers = []

    def walk(v):
        if isinstance(v, dict):
            if (v.get("ItemReader") or {}).get("ReaderConfig", {}).get("InputType") == "CSV":
                readers.append(v)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(definition)
    for m in readers:
        key = placeholder(m["ItemReader"]["ReaderConfig"].get("CSVDelimiter"))
        if not key:
            continue  # tests/template_lint.sh section 5 reports it
        bound = (p.get("DefinitionSubstitutions") or {}).get(key)
        for value in (delimiter_param or {}).get("AllowedValues", []):
            value = str(value)
            want = READER_NAME.get(value)
            got = evaluate(bound, {"CsvDelimiter": value})
            if want is None:
                bad(f"parameter CsvDelimiter allows {value!r}, for which no ItemReader CSVDelimiter is known: add it to READER_NAME in tests/template_checks.py")
            elif got != want:
                bad(f"{name}: with CsvDelimiter {value!r} the Distributed Map reads with CSVDelimiter {got!r} (${{{key}}}), want {want!r}: the batch function and the map would read the file differently")
env_delimiter = [
    f for f, v in of_type("AWS::Serverless::Function").items()
    if "CSV_DELIMITER" in ((v.get("Properties", {}).get("Environment") or {}).get("Variables") or {})
]
for f in env_delimiter:
    v = resources[f]["Properties"]["Environment"]["Variables"]["CSV_DELIMITER"]
    if v != {"Ref": "CsvDelimiter"}:
        bad(f"function {f}: CSV_DELIMITER is {v!r}, want !Ref CsvDelimiter (the Distributed Map reads by that parameter)")

if pending_used:
    notes.append(f"named by alarms or the dashboard, not emitted yet (pending): {', '.join(sorted(pending_used))}")
for n in notes:
    print(f"note: {n}", file=sys.stderr)
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
