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

# The function timeout is a parameter and the queue visibility timeout comes
# from the TimeoutSettings mapping; cfn-lint compares them (E3505) only as
# literal integers. So check the mapping here, then lint one copy per allowed
# timeout with both values written in, to let cfn-lint judge the real numbers.
echo "2. Timeout parameter vs TimeoutSettings mapping"
allowed=$(awk '/^  Timeout:/ {p = 1; next} p && /AllowedValues:/ {gsub(/[^0-9,]/, ""); print; exit}' "$TEMPLATE")
pairs=$(awk '/^  TimeoutSettings:/ {m = 1; next}
             m && /^  [^ ]|^[^ ]/ {m = 0}
             m && /^    "[0-9]+":/ {gsub(/[^0-9]/, ""); t = $0; next}
             m && /VisibilityTimeout:/ {print t, $2}' "$TEMPLATE")
keys=$(awk '{print $1}' <<<"$pairs" | paste -sd, -)
if [[ -n $allowed && $allowed == "$keys" ]]; then ok "mapping keys = Timeout AllowedValues ($allowed)"; else
    bad "Timeout AllowedValues ($allowed) differ from TimeoutSettings keys ($keys)"; fi
resolved=()
while read -r t v; do
    [[ -n $t ]] || continue
    if ((v >= 6 * t)); then ok "timeout $t s -> visibility $v s (>= 6x)"; else bad "timeout $t s -> visibility $v s is < 6x the timeout"; fi
    copy "resolved-$t" -e "s/^      Timeout: !Ref Timeout\$/      Timeout: $t/" \
        -e "s/VisibilityTimeout: !FindInMap \[TimeoutSettings, !Ref Timeout, VisibilityTimeout\]/VisibilityTimeout: $v/" &&
        resolved+=("$work/resolved-$t.yaml")
done <<<"$pairs"

# Deliberate breaks. Each: name, rule id and text cfn-lint must report, sed edit.
echo "3. resolved copies clean; deliberate breaks reported"
declare -A rule text
add_break() {
    local name=$1 r=$2 tx=$3; shift 3
    if copy "$name" "$@"; then rule[$name]=$r; text[$name]=$tx; fi
}
add_break runtime E3030 "'provided.al2024' is not one of" -e 's/Runtime: provided.al2023/Runtime: provided.al2024/'
add_break response-type E3030 "'ReportBatchItemFailure' is not one of" -e 's/\[ReportBatchItemFailures\]/[ReportBatchItemFailure]/'
add_break sam-event-type E0001 "Event Type is: S3Bogus" -e 's/^          Type: S3$/          Type: S3Bogus/'
add_break visibility E3505 "Queue visibility timeout (60) is less than Function timeout (900)" \
    -e 's/^      Timeout: !Ref Timeout$/      Timeout: 900/' -e 's/VisibilityTimeout: !FindInMap .*/VisibilityTimeout: 60/'

# One cfn-lint run for all copies (fast). W7001 (unused mapping) is expected
# once the FindInMap has been replaced by a number.
broken=()
for name in "${!rule[@]}"; do broken+=("$work/$name.yaml"); done
out=$(cfn-lint -f parseable --ignore-checks W7001 -- "${resolved[@]}" "${broken[@]}" 2>&1 || true)
for f in "${resolved[@]}"; do
    if grep -q "^$f:" <<<"$out"; then bad "$(grep "^$f:" <<<"$out" | head -3 | sed "s|^$work/||")"; else ok "$(basename "$f" .yaml): clean"; fi
done
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

if ((failures)); then echo "template_lint: $failures failure(s)"; exit 1; fi
echo "template_lint: all checks passed"
