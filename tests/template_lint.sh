#!/usr/bin/env bash
# Lints the SAM template with cfn-lint, then proves the checks still bite:
# known breakages are applied to temporary copies and each must be reported.
# Needs cfn-lint 1.53.3 on PATH (pip install cfn-lint==1.53.3): from 1.54 on
# cfn-lint no longer runs the SAM transform and silently accepts most of them.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPLATE=template.yaml
WANT=1.53.3
failures=0
ok() { echo "  ok    $*"; }
bad() { echo "  FAIL  $*"; failures=$((failures + 1)); }

command -v cfn-lint >/dev/null || { echo "FAIL: cfn-lint not on PATH (pip install cfn-lint==$WANT)"; exit 1; }
version=$(cfn-lint --version | awk '{print $2}')
[[ $version == "$WANT" ]] || { echo "FAIL: cfn-lint $version found, need $WANT (pip install cfn-lint==$WANT)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "1. cfn-lint $TEMPLATE"
if cfn-lint -- "$TEMPLATE"; then ok "$TEMPLATE is clean"; else bad "cfn-lint reports problems in $TEMPLATE"; fi

# copy NAME SED-ARGS...: a copy of the template edited by sed; fails loudly
# if the edit matched nothing (the template changed and this script did not).
copy() {
    local name=$1; shift
    sed "$@" "$TEMPLATE" >"$work/$name.yaml"
    if cmp -s "$TEMPLATE" "$work/$name.yaml"; then
        bad "$name: sed edit matched nothing in $TEMPLATE - update this script"
        return 1
    fi
}

# The batch timeout is a parameter and the lab queue's visibility timeout
# comes from the TimeoutSettings mapping (CloudFormation cannot multiply).
# cfn-lint cannot compare them (E3505 takes literal integers, and with
# AutoPublishAlias the event source names the alias, not the function), so
# check the mapping here; section 6 checks that the queue really uses it.
echo "2. BatchTimeout parameter vs TimeoutSettings mapping"
allowed=$(awk '/^  BatchTimeout:/ {p = 1; next} p && /AllowedValues:/ {gsub(/[^0-9,]/, ""); print; exit}' "$TEMPLATE")
pairs=$(awk '/^  TimeoutSettings:/ {m = 1; next}
             m && /^  [^ ]|^[^ ]/ {m = 0}
             m && /^    "[0-9]+":/ {gsub(/[^0-9]/, ""); t = $0; next}
             m && /VisibilityTimeout:/ {print t, $2}' "$TEMPLATE")
keys=$(awk '{print $1}' <<<"$pairs" | paste -sd, -)
if [[ -n $allowed && $allowed == "$keys" ]]; then ok "mapping keys = BatchTimeout AllowedValues ($allowed)"; else
    bad "BatchTimeout AllowedValues ($allowed) differ from TimeoutSettings keys ($keys)"; fi
while read -r t v; do
    [[ -n $t ]] || continue
    if ((v >= 6 * t + 300)); then ok "timeout $t s -> visibility $v s (>= 6x + the 300 s batching window)"; else
        bad "timeout $t s -> visibility $v s is < 6x the timeout + 300 s"; fi
done <<<"$pairs"

# Deliberate breaks. Each: name, rule id and text cfn-lint must report, sed edit.
echo "3. deliberate breaks reported by cfn-lint"
declare -A rule text
add_break() {
    local name=$1 r=$2 tx=$3; shift 3
    if copy "$name" "$@"; then rule[$name]=$r; text[$name]=$tx; fi
}
add_break runtime E3030 "'provided.al2024' is not one of" -e 's/Runtime: provided.al2023/Runtime: provided.al2024/'
add_break response-type E3030 "'ReportBatchItemFailure' is not one of" -e 's/\[ReportBatchItemFailures\]/[ReportBatchItemFailure]/'
add_break sam-event-type E0001 "Event Type is: S3Bogus" -e 's/^          Type: S3$/          Type: S3Bogus/'
add_break state-machine-type E3030 "'STANDRD' is not one of" -e 's/^      Type: STANDARD$/      Type: STANDRD/'
# (A queue visibility timeout shorter than the function's is no longer one of
# them: cfn-lint's E3505 compares the two only when the event source mapping
# names the function, and with AutoPublishAlias it names the alias. Section 6
# checks it instead.)
# The new parts: async retries and event age, the queue's concurrency cap,
# alarms and the rollout type are typed by the resource schemas.
add_break async-retries E3034 "5 is greater than the maximum of 2" -e 's/^        MaximumRetryAttempts: 2$/        MaximumRetryAttempts: 5/'
add_break async-event-age E3034 "30 is less than the minimum of 60" -e 's/^        MaximumEventAgeInSeconds: 21600$/        MaximumEventAgeInSeconds: 30/'
add_break queue-max-concurrency E3034 "1 is less than the minimum of 2" -e 's/MaximumConcurrency: !Ref QueueMaximumConcurrency/MaximumConcurrency: 1/'
add_break failure-destination-type E0001 "'Type: SQSX' must be one of" -e 's/^            Type: SQS$/            Type: SQSX/'
add_break alarm-operator E3030 "'GreaterOrEqual' is not one of" -e '0,/ComparisonOperator: GreaterThanOrEqualToThreshold/s//ComparisonOperator: GreaterOrEqual/'
add_break rollback-alarm-ref E1020 "'ApiLatencyAlarmX' is not one of" -e 's/- !Ref ApiLatencyAlarm$/- !Ref ApiLatencyAlarmX/'
add_break deployment-type E2015 "Default should be a value within AllowedValues" -e 's/^    Default: Canary10Percent5Minutes$/    Default: Canary10Percent7Minutes/'

# One cfn-lint run for all copies (fast).
broken=()
for name in "${!rule[@]}"; do broken+=("$work/$name.yaml"); done
out=$(cfn-lint -f parseable -- "${broken[@]}" 2>&1 || true)
for name in "${!rule[@]}"; do
    hit=$(grep -F "$work/$name.yaml:" <<<"$out" | grep -F ":${rule[$name]}:" | grep -F "${text[$name]}" | head -1 || true)
    if [[ -n $hit ]]; then ok "$name: $(cut -c1-150 <<<"${hit#"$work/"}")"; else bad "$name: cfn-lint did not report ${rule[$name]} \"${text[$name]}\""; fi
done

# cfn-lint cannot catch a wrong S3 event name such as s3:ObjectCreated:Bogus:
# the CloudFormation schema types NotificationConfiguration Event as a plain
# string. Guard it here instead, and prove the guard catches that break.
echo "4. S3 event names (not checked by cfn-lint)"
s3_events_ok() {
    local names
    names=$(grep -oE 's3:[A-Za-z]+:[A-Za-z*]+' "$1" || true)
    [[ -n $names ]] || return 1
    ! grep -vxE 's3:ObjectCreated:(\*|Put|Post|Copy|CompleteMultipartUpload)' <<<"$names" >/dev/null
}
if s3_events_ok "$TEMPLATE"; then ok "S3 event names in $TEMPLATE are valid"; else bad "invalid or missing S3 event name in $TEMPLATE"; fi
if copy s3-event-name -e 's/Events: s3:ObjectCreated:\*/Events: s3:ObjectCreated:Bogus/'; then
    if s3_events_ok "$work/s3-event-name.yaml"; then bad "s3-event-name: s3:ObjectCreated:Bogus not caught"; else ok "s3-event-name: s3:ObjectCreated:Bogus caught"; fi
fi

# cfn-lint never reads the state machine definition: its SAM transform swaps
# DefinitionUri for a dummy S3 location (and its ASL schema, even given the
# definition inline, accepts InputType "CSVX" or a string MaxConcurrency).
# Check the file here. Its numeric placeholders are unquoted on purpose
# (DefinitionSubstitutions is plain text substitution), so the file is parsed
# after substituting them with the parameters' defaults.
ASL=statemachine/csv-distributed-map.asl.json
echo "5. state machine definition $ASL (not checked by cfn-lint)"
# asl_problems ASL TEMPLATE: prints one line per problem; fails if any.
asl_problems() {
    python3 - "$1" "$2" "$ASL" <<'PY'
import json, re, sys

asl_path, template_path, asl_ref = sys.argv[1:4]
problems = []
bad = problems.append
text = open(asl_path, encoding="utf-8").read()
lines = open(template_path, encoding="utf-8").read().splitlines()

def indent(line):
    return len(line) - len(line.lstrip(" "))

# Parameters: name -> (Type, Default).
params, in_params, name = {}, False, None
for line in lines:
    if re.match(r"^\S", line):
        in_params = line.rstrip() == "Parameters:"
        continue
    if not in_params:
        continue
    if m := re.match(r"^  (\w+):\s*$", line):
        name = m.group(1)
        params[name] = [None, None]
    elif name and (m := re.match(r"^    (Type|Default):\s*(.*?)\s*$", line)):
        params[name][0 if m.group(1) == "Type" else 1] = m.group(2).strip('"')

# DefinitionSubstitutions of the resource whose DefinitionUri is this file.
subs = None
uri = [i for i, l in enumerate(lines) if re.match(r"^\s*DefinitionUri:\s*" + re.escape(asl_ref) + r"\s*$", l)]
if len(uri) != 1:
    bad(f"{template_path}: expected one 'DefinitionUri: {asl_ref}', found {len(uri)}")
else:
    n = indent(lines[uri[0]])
    start = uri[0]
    while start > 0 and (not lines[start - 1].strip() or lines[start - 1].lstrip().startswith("#") or indent(lines[start - 1]) >= n):
        start -= 1
    for i in range(start, len(lines)):
        l = lines[i]
        if i > uri[0] and l.strip() and not l.lstrip().startswith("#") and indent(l) < n:
            break
        if indent(l) == n and l.strip() == "DefinitionSubstitutions:":
            subs = {}
            for l2 in lines[i + 1:]:
                if l2.strip() and not l2.lstrip().startswith("#") and indent(l2) <= n:
                    break
                if indent(l2) == n + 2 and (m := re.match(r"^\s*(\w+):\s*(.*?)\s*$", l2)):
                    subs[m.group(1)] = m.group(2)
            break
    if subs is None:
        bad(f"{template_path}: no DefinitionSubstitutions next to 'DefinitionUri: {asl_ref}'")
        subs = {}

# Placeholders: each bound, each binding used; an unquoted one must be bound
# to a Number parameter, or the substituted definition is not JSON.
placeholders = re.findall(r"\$\{([^}]*)\}", text)
for ph in sorted(set(placeholders) - set(subs)):
    bad(f"placeholder ${{{ph}}} is not in the state machine's DefinitionSubstitutions")
for key in sorted(set(subs) - set(placeholders)):
    bad(f"DefinitionSubstitutions key {key} is not used in {asl_ref}")

def number_for(m):
    ref = re.fullmatch(r"!Ref\s+(\w+)", subs.get(m.group(2), ""))
    p = params.get(ref.group(1)) if ref else None
    if not p or p[0] != "Number":
        bad(f"unquoted placeholder ${{{m.group(2)}}} must be bound to a Number parameter (is: {subs.get(m.group(2), 'unbound')!r})")
        return m.group(1) + "0"
    return m.group(1) + (p[1] or "0")

def default_for(m):
    ref = re.fullmatch(r"!Ref\s+(\w+)", subs.get(m.group(1), ""))
    p = params.get(ref.group(1)) if ref else None
    return p[1] if p and p[1] is not None else m.group(0)

substituted = re.sub(r"(?<=[:\[,])(\s*)\$\{([^}]*)\}", number_for, text)
# Quoted placeholders: the parameter's default where there is one.
substituted = re.sub(r"\$\{(\w+)\}", default_for, substituted)
try:
    asl = json.loads(substituted)
except ValueError as e:
    bad(f"not JSON after substitution: {e}")
    asl = {}

TERMINAL = {"Succeed", "Fail"}
TYPES = TERMINAL | {"Task", "Pass", "Wait", "Choice", "Parallel", "Map"}
maps, tasks = [], []

def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)

def check_machine(sm, where):
    states = sm.get("States") if isinstance(sm, dict) else None
    if not isinstance(states, dict) or not states:
        bad(f"{where}: no States")
        return
    if sm.get("StartAt") not in states:
        bad(f"{where}: StartAt {sm.get('StartAt')!r} is not a state")
    succ = {}
    for name, st in states.items():
        at = f"{where}/{name}"
        t = st.get("Type")
        if t not in TYPES:
            bad(f"{at}: unknown Type {t!r}")
        targets = []
        if "Next" in st:
            targets.append(st["Next"])
        for c in st.get("Choices", []) + st.get("Catch", []):
            targets.append(c.get("Next"))
        if "Default" in st:
            targets.append(st["Default"])
        for nxt in targets:
            if nxt not in states:
                bad(f"{at}: Next {nxt!r} is not a state")
        succ[name] = [n for n in targets if n in states]
        ends = st.get("End") is True or t in TERMINAL
        if ends and "Next" in st:
            bad(f"{at}: has both Next and End")
        if not ends and t != "Choice" and "Next" not in st:
            bad(f"{at}: neither Next nor End: true (the chain never ends)")
        if t == "Map":
            maps.append((at, st))
            proc = st.get("ItemProcessor") or st.get("Iterator")
            check_machine(proc, f"{at}/ItemProcessor")
        if t == "Parallel":
            for i, b in enumerate(st.get("Branches", [])):
                check_machine(b, f"{at}/Branches/{i}")
        if t == "Task":
            tasks.append((at, st))
    # Every state reachable from StartAt, and every state can reach an end.
    seen, todo = set(), [sm.get("StartAt")]
    while todo:
        s = todo.pop()
        if s in states and s not in seen:
            seen.add(s)
            todo += succ[s]
    for s in sorted(set(states) - seen):
        bad(f"{where}/{s}: not reachable from StartAt")
    done = {n for n, st in states.items() if st.get("End") is True or st.get("Type") in TERMINAL}
    grew = True
    while grew:
        grew = False
        for n in states:
            if n not in done and any(x in done for x in succ[n]):
                done.add(n)
                grew = True
    for s in sorted(set(states) - done):
        bad(f"{where}/{s}: no path to an end state (loop)")

if asl:
    check_machine(asl, "")
    dist = [(at, st) for at, st in maps if st.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"]
    if len(dist) != 1:
        bad(f"expected one Map state with ItemProcessor.ProcessorConfig.Mode DISTRIBUTED, found {len(dist)} (Maps: {[st.get('ItemProcessor', {}).get('ProcessorConfig', {}).get('Mode') for _, st in maps]})")
    for at, m in dist:
        pc = m["ItemProcessor"]["ProcessorConfig"]
        if pc.get("ExecutionType") != "EXPRESS":
            bad(f"{at}: ProcessorConfig.ExecutionType is {pc.get('ExecutionType')!r}, want EXPRESS")
        reader = m.get("ItemReader") or {}
        rc = reader.get("ReaderConfig") or {}
        if rc.get("InputType") != "CSV":
            bad(f"{at}: ItemReader.ReaderConfig.InputType is {rc.get('InputType')!r}, want CSV")
        if rc.get("CSVHeaderLocation") != "FIRST_ROW":
            bad(f"{at}: ItemReader.ReaderConfig.CSVHeaderLocation is {rc.get('CSVHeaderLocation')!r}, want FIRST_ROW")
        # The function reads decimal commas by BatchInput.delimiter: it must
        # be the very placeholder the reader splits by (template_checks.py
        # checks what the template binds it to).
        cd = rc.get("CSVDelimiter")
        if not (isinstance(cd, str) and re.fullmatch(r"\$\{\w+\}", cd)):
            bad(f"{at}: ItemReader.ReaderConfig.CSVDelimiter is {cd!r}, want a placeholder bound to the CsvDelimiter parameter")
        else:
            bi = (m.get("ItemBatcher") or {}).get("BatchInput") or {}
            if bi.get("delimiter") != cd:
                bad(f"{at}: ItemBatcher.BatchInput.delimiter is {bi.get('delimiter')!r}, want {cd}, the reader's CSVDelimiter (the function reads decimal commas by it)")
        if not str(reader.get("Resource", "")).endswith(":states:::s3:getObject"):
            bad(f"{at}: ItemReader.Resource is {reader.get('Resource')!r}, want arn:aws:states:::s3:getObject")
        if not {"Bucket.$", "Key.$"} <= set(reader.get("Parameters") or {}):
            bad(f"{at}: ItemReader.Parameters must take Bucket.$ and Key.$ from the execution input")
        batcher = m.get("ItemBatcher")
        if not isinstance(batcher, dict):
            bad(f"{at}: no ItemBatcher (the function takes batches: {{\"Items\": [...]}})")
        else:
            if not (is_number(batcher.get("MaxItemsPerBatch")) and batcher["MaxItemsPerBatch"] >= 1):
                bad(f"{at}: ItemBatcher.MaxItemsPerBatch is {batcher.get('MaxItemsPerBatch')!r}, want a number >= 1")
            mb = batcher.get("MaxInputBytesPerBatch")
            if mb is not None and not (is_number(mb) and 0 < mb <= 262144):
                bad(f"{at}: ItemBatcher.MaxInputBytesPerBatch is {mb!r}, want a number <= 262144 (256 KiB)")
        for key, hi in (("MaxConcurrency", 10000), ("ToleratedFailurePercentage", 100)):
            v = m.get(key)
            if not (is_number(v) and 0 <= v <= hi):
                bad(f"{at}: {key} is {v!r}, want a number 0..{hi}")
        writer = m.get("ResultWriter") or {}
        if not str(writer.get("Resource", "")).endswith(":states:::s3:putObject") or not {"Bucket", "Prefix"} <= set(writer.get("Parameters") or {}):
            bad(f"{at}: ResultWriter must be arn:aws:states:::s3:putObject with Parameters Bucket and Prefix")
    inner = [(at, st) for at, st in tasks if "/ItemProcessor/" in at]
    if not inner:
        bad("no Task state inside the Map's ItemProcessor")
    for at, t in inner:
        if t.get("Resource") != "arn:aws:states:::lambda:invoke":
            bad(f"{at}: Resource is {t.get('Resource')!r}, want arn:aws:states:::lambda:invoke")
        params_ = t.get("Parameters") or {}
        if not params_.get("FunctionName") or params_.get("Payload.$") != "$":
            bad(f"{at}: Parameters must be FunctionName and Payload.$: $ (the whole batch)")
        if t.get("OutputPath") != "$.Payload":
            bad(f"{at}: OutputPath is {t.get('OutputPath')!r}, want $.Payload (the scored items)")
        retried = {e for r in t.get("Retry", []) for e in r.get("ErrorEquals", [])}
        want = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
        if not want <= retried:
            bad(f"{at}: Retry does not cover {sorted(want - retried)}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
}
if out=$(asl_problems "$ASL" "$TEMPLATE"); then ok "$ASL: CSV reader, batcher, DISTRIBUTED/EXPRESS, result writer, lambda:invoke, placeholders bound, chains end"; else
    while read -r line; do bad "$ASL: $line"; done <<<"$out"; fi
# asl_break NAME TEXT asl|template SED-ARGS...: the check must fail on a copy
# of the definition (or of the template) edited by sed, saying TEXT.
asl_break() {
    local name=$1 tx=$2 which=$3 asl=$ASL tpl=$TEMPLATE src dst; shift 3
    if [[ $which == asl ]]; then src=$ASL dst=$work/$name.asl.json asl=$dst; else src=$TEMPLATE dst=$work/$name.yaml tpl=$dst; fi
    sed "$@" "$src" >"$dst"
    if cmp -s "$src" "$dst"; then bad "$name: sed edit matched nothing in $src - update this script"; return; fi
    if out=$(asl_problems "$asl" "$tpl"); then bad "$name: not caught"; elif grep -qF -- "$tx" <<<"$out"; then
        ok "$name: $(grep -F -- "$tx" <<<"$out" | head -1 | cut -c1-150)"; else bad "$name: caught, but not with \"$tx\": $(head -1 <<<"$out")"; fi
}
asl_break input-type "InputType is 'CSVX'" asl -e 's/"InputType": "CSV"/"InputType": "CSVX"/'
asl_break dangling-next "Next 'WriteSummary' is not a state" asl -e 's/^      "End": true$/      "Next": "WriteSummary"/'
asl_break inline-map "found 0" asl -e 's/"Mode": "DISTRIBUTED"/"Mode": "INLINE"/'
asl_break quoted-number "MaxConcurrency is '100'" asl -e 's/"MaxConcurrency": \${MapMaxConcurrency}/"MaxConcurrency": "${MapMaxConcurrency}"/'
asl_break batch-input-delimiter "BatchInput.delimiter is 'SEMICOLON'" asl -e 's/"delimiter": "\${MapCsvDelimiter}"/"delimiter": "SEMICOLON"/'
asl_break reader-delimiter-missing "CSVDelimiter is None" asl -e '/"CSVDelimiter": /d' -e 's/"CSVHeaderLocation": "FIRST_ROW",/"CSVHeaderLocation": "FIRST_ROW"/'
asl_break unbound-placeholder "placeholder \${MapMaxConcurrency} is not in" template -e '/^        MapMaxConcurrency: !Ref MapMaxConcurrency$/d'
asl_break string-substitution "must be bound to a Number parameter" template \
    -e 's/^        MapMaxConcurrency: !Ref MapMaxConcurrency$/        MapMaxConcurrency: !Ref OutputPrefix/'

# The deployment's operational promises (alarms on metrics the code really
# emits, failure destinations, the alarm-guarded rollout, the API function's
# isolation, the trigger, the parameter table of docs/deploying.md, the
# dashboard's SEARCH expressions, no feature of the shipped model named) are
# beyond any schema: tests/template_checks.py checks them, with cfn-lint's
# YAML decoder.
echo "6. operational checks (tests/template_checks.py; not checked by cfn-lint)"
PARAMS_DOC=docs/deploying.md
METRICS=tests/emitted_metrics.txt
MODEL=models/breast-cancer-gbc.json # its feature names must not appear in the template
PY=$(dirname "$(command -v cfn-lint)")/python
[[ -x $PY ]] || PY=python3
checks() { "$PY" tests/template_checks.py "$1" "$2" "$3" src "$MODEL"; }
if out=$(checks "$TEMPLATE" "$PARAMS_DOC" "$METRICS" 2>"$work/notes"); then
    ok "alarms, dashboard and its SEARCHes, no feature named, failure destinations, rollout, isolation, trigger, documented parameters"
else
    while read -r line; do bad "$line"; done <<<"$out"
fi
while read -r line; do [[ -z $line ]] || echo "        $line"; done <"$work/notes"
# op_break NAME TEXT template|docs|metrics SED-ARGS...: the checks must fail
# on a copy of that file edited by sed, saying TEXT.
op_break() {
    local name=$1 tx=$2 which=$3 tpl=$TEMPLATE rd=$PARAMS_DOC mt=$METRICS src dst; shift 3
    case $which in
        template) src=$TEMPLATE dst=$work/$name.yaml tpl=$dst ;;
        docs) src=$PARAMS_DOC dst=$work/$name.md rd=$dst ;;
        metrics) src=$METRICS dst=$work/$name.txt mt=$dst ;;
    esac
    sed "$@" "$src" >"$dst"
    if cmp -s "$src" "$dst"; then bad "$name: sed edit matched nothing in $src - update this script"; return; fi
    if out=$(checks "$tpl" "$rd" "$mt" 2>/dev/null); then bad "$name: not caught"; elif grep -qF -- "$tx" <<<"$out"; then
        ok "$name: $(grep -F -- "$tx" <<<"$out" | head -1 | cut -c1-160)"; else bad "$name: caught, but not with \"$tx\": $(head -1 <<<"$out")"; fi
}
op_break alarm-on-unemitted-metric "Scorer Files_fialed is not emitted by anyone" template \
    -e 's/^      MetricName: Files_failed$/      MetricName: Files_fialed/'
op_break alarm-wrong-entry-point "Scorer Files_failed is not emitted with EntryPoint=function_url" template \
    -e '/^  FilesFailedAlarm:/,/^  [A-Za-z]/ s/{ Name: EntryPoint, Value: s3 }/{ Name: EntryPoint, Value: function_url }/'
op_break dashboard-unemitted-metric "Scorer Files_timedout is not emitted by anyone" template \
    -e 's/"Files_timed_out", "Service"/"Files_timedout", "Service"/'
op_break metric-list-entry-nobody-emits "Scorer DriftAlrt is listed as emitted, but no code" metrics \
    -e 's/^Scorer DriftAlert .*/Scorer DriftAlrt entry=s3/'
# The model defines the contract (issue 20): a feature name of the shipped
# export put back into the template, as the dashboard once had them, or as a
# dataset name in prose, must be caught.
op_break feature-name-in-dashboard "names the feature 'meanConcavePoints' of the shipped model" template \
    -e '/"id": "psis3"/c\                ["Scorer", "DriftPSI", "Service", "scorer", "EntryPoint", "s3", "Feature", "meanConcavePoints", {"stat": "Maximum"}]'
op_break feature-dataset-name "names the feature 'worst area' of the shipped model" template \
    -e 's/contribution_<feature> columns/contribution_<feature> columns (e.g. for Worst  Area)/'
# Dashboard SEARCH expressions: well formed, their schema exactly the
# dimension set the code emits the metric with, values it emits.
op_break search-schema-without-feature "DriftPSI with dimensions ['EntryPoint', 'Service']: it is emitted with [['EntryPoint', 'Feature', 'Service']]" template \
    -e '/"id": "psis3"/ s/{Scorer,EntryPoint,Feature,Service}/{Scorer,EntryPoint,Service}/'
op_break search-unbalanced "unclosed '('" template -e "/\"id\": \"psisqs\"/ s/'Maximum', 300)\"/'Maximum', 300\"/"
op_break search-schema-unbalanced "unclosed '{'" template -e '/"id": "psimap"/ s/{Scorer,EntryPoint,Feature,Service}/{Scorer,EntryPoint,Feature,Service/'
op_break search-entry-point "DriftPSI is not emitted with EntryPoint=function_url" template \
    -e '/"id": "psimap"/ s/EntryPoint=\\"distributed_map\\"/EntryPoint=\\"function_url\\"/'
op_break search-unemitted-metric "Scorer ChallengerRow is not emitted by anyone" template \
    -e 's/MetricName=\\"ChallengerRows\\"/MetricName=\\"ChallengerRow\\"/'
op_break search-term-outside-schema "names a dimension that is not in the schema" template \
    -e '/"id": "agreement"/ s/Service=\\"scorer\\"/Service=\\"scorer\\" Feature=\\"x\\"/'
op_break search-no-metric "names no metric" template -e '/"id": "psis3"/ s/MetricName=\\"DriftPSI\\" //'
op_break no-failure-destination "has no OnFailure destination" template -e '/^          OnFailure:$/,+2d'
op_break failure-queue-not-alarmed "its OnFailure queue S3FailedEventsQueue has no alarm" template \
    -e 's/Value: !GetAtt S3FailedEventsQueue.QueueName/Value: !GetAtt LabQueue.QueueName/'
op_break dlq-not-alarmed "dead-letter queue LabDeadLetterQueue has no alarm" template \
    -e 's/Value: !GetAtt LabDeadLetterQueue.QueueName/Value: !GetAtt LabQueue.QueueName/'
op_break visibility "visibility timeout 60 s is less than 6 x the function timeout 900 s" template \
    -e 's/^      Timeout: !Ref BatchTimeout$/      Timeout: 900/' -e 's/VisibilityTimeout: !FindInMap .*/VisibilityTimeout: 60/'
op_break visibility-from-other-timeout "is not derived from the function's timeout" template \
    -e 's/VisibilityTimeout: !FindInMap \[TimeoutSettings, !Ref BatchTimeout, VisibilityTimeout\]/VisibilityTimeout: !FindInMap [TimeoutSettings, !Ref ApiTimeout, VisibilityTimeout]/'
op_break queue-uncapped "no ScalingConfig.MaximumConcurrency" template -e '/^            ScalingConfig:$/,+1d'
op_break deployment-preference-without-alarms "DeploymentPreference without Alarms" template -e '/^        Alarms:$/,+2d'
op_break rollback-alarm-on-all-versions "does not watch this function's new version" template \
    -e '/^  ApiErrorsAlarm:/,/^  [A-Za-z]/ {/Name: ExecutedVersion/,+1d}' -e '/^  ApiLatencyAlarm:/,/^  [A-Za-z]/ {/Name: ExecutedVersion/,+1d}'
op_break url-without-canary "without a DeploymentPreference" template -e '/^      DeploymentPreference:$/,+5d'
op_break api-role-with-s3 "allows ['s3:GetObject']" template \
    -e '/^                Resource: !GetAtt ApiLogGroup.Arn$/a\              - Sid: ReadInputs\n                Effect: Allow\n                Action: s3:GetObject\n                Resource: arn:aws:s3:::some-bucket/incoming/*'
op_break api-function-with-event "serves the Function URL and also has event sources" template \
    -e '/^      # With AutoPublishAlias, SAM attaches the URL/i\      Events:\n        Labs:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt LabQueue.Arn'
op_break batch-uncapped "no ReservedConcurrentExecutions" template \
    -e '/^        !If \[HasBatchReservedConcurrency/d' -e '/^      Timeout: !Ref BatchTimeout$/{n;d}'
op_break cap-below-map "must exceed MapMaxConcurrency + QueueMaximumConcurrency" template \
    -e '/^  BatchReservedConcurrency:/,/Default:/ s/Default: 200/Default: 100/'
op_break wildcard-action "allows ['sqs:*']" template -e 's/Action: \[sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes\]/Action: sqs:*/'
op_break alarm-without-topic "BatchErrorsAlarm: its AlarmActions do not notify AlarmTopic" template \
    -e '/^  BatchErrorsAlarm:/,/^  [A-Za-z]/ {/AlarmActions/d}'
op_break alarm-breaching-when-idle "FilesFailedAlarm: TreatMissingData is breaching" template \
    -e '/^  FilesFailedAlarm:/,/^  [A-Za-z]/ s/TreatMissingData: notBreaching/TreatMissingData: breaching/'
op_break alarm-not-on-dashboard "alarm DriftAlertAlarm is not in its alarm widget" template -e 's/, "${DriftAlertAlarm.Arn}"//'
op_break dashboard-not-json "the body is not JSON" template -e 's/^          "start": "-PT24H",$/          "start": "-PT24H"/'
op_break suffix-filter "a suffix filter" template \
    -e '/^                    Value: !Ref InputPrefix$/a\                  - Name: suffix\n                    Value: .csv'
op_break prefixes-may-overlap "OutputPrefix differs from InputPrefix" template \
    -e 's/- Assert: !Not \[!Equals \[!Ref InputPrefix, !Ref OutputPrefix\]\]/- Assert: !Not [!Equals [!Ref InputPrefix, !Ref MapInputPrefix]]/'
op_break map-delimiter-fixed "with CsvDelimiter ';' the Distributed Map reads with CSVDelimiter 'COMMA'" template \
    -e 's/^        MapCsvDelimiter: !If .*/        MapCsvDelimiter: COMMA/'
op_break map-delimiter-condition "with CsvDelimiter ',' the Distributed Map reads with CSVDelimiter 'SEMICOLON'" template \
    -e 's/^  CsvDelimiterIsSemicolon: !Equals \[!Ref CsvDelimiter, ";"\]/  CsvDelimiterIsSemicolon: !Equals [!Ref CsvDelimiter, ","]/'
op_break docs-parameter-missing "template parameter QueueMaximumConcurrency is missing" docs \
    -e 's/, `QueueMaximumConcurrency`//' -e 's/^\(| `BatchSize`.*| `10`, `0`\), `10`/\1/'
op_break docs-parameter-stale "lists MaxConcurrency, which is not a template parameter" docs -e 's/^| `MapMaxConcurrency`/| `MaxConcurrency`/'
op_break docs-default-wrong "parameter ApiTimeout: the table says default" docs -e 's/^\(| `ApiMemorySize`, `ApiTimeout` | `256`\), `5`/\1, `10`/'

echo "7. the deployer's permissions in $PARAMS_DOC cover every service of the expanded template"
perms() { "$PY" tests/deployer_permissions.py "$1" "$2"; }
if out=$(perms "$TEMPLATE" "$PARAMS_DOC" 2>&1); then ok "$out"; else while read -r line; do bad "$line"; done <<<"$out"; fi
# perm_break NAME TEXT template|docs SED-ARGS...: the check must fail on the edited copy, saying TEXT.
perm_break() {
    local name=$1 tx=$2 which=$3 tpl=$TEMPLATE rd=$PARAMS_DOC src dst; shift 3
    case $which in
        template) src=$TEMPLATE dst=$work/$name.yaml tpl=$dst ;;
        docs) src=$PARAMS_DOC dst=$work/$name.md rd=$dst ;;
    esac
    sed "$@" "$src" >"$dst"
    if cmp -s "$src" "$dst"; then bad "$name: sed edit matched nothing in $src - update this script"; return; fi
    if out=$(perms "$tpl" "$rd" 2>&1); then bad "$name: not caught"; elif grep -qF -- "$tx" <<<"$out"; then
        ok "$name: $(grep -F -- "$tx" <<<"$out" | head -1 | cut -c1-160)"; else bad "$name: caught, but not with \"$tx\": $(head -1 <<<"$out")"; fi
}
perm_break deployer-codedeploy-missing "name no codedeploy: action (AWS::CodeDeploy::Application" docs -e '/^| CodeDeploy /d'
perm_break deployer-new-service "name no dynamodb: action (AWS::DynamoDB::Table)" template \
    -e 's/^Resources:$/Resources:\n  ExtraTable:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions: [{ AttributeName: k, AttributeType: S }]\n      KeySchema: [{ AttributeName: k, KeyType: HASH }]/'

if ((failures)); then echo "template_lint: $failures failure(s)"; exit 1; fi
echo "template_lint: all checks passed"
