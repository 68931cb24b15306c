# shellcheck shell=bash
# Shared by ops/aws/deploy and ops/aws/destroy; sourced, never run.
#
# The callers set:  DRY_RUN (0|1)  REGION  PREFIX
# Every AWS command goes through run / capture / stack_output / stack_exists,
# so that a dry run prints it instead of calling AWS.

# shellcheck disable=SC2034  # ROOT and TIERS are for the scripts that source this
AWS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$AWS_DIR/../.." && pwd)
# Tiers in deployment order; destroy walks them backwards.
TIERS=(network security database registry service)
# awscli v2 pipes output through a pager (less) by default: never here.
export AWS_PAGER=''
# Seconds between two looks at a stack, a change set or the site.
POLL=${H2LUA_AWS_POLL:-5}
# A throttled call is tried again after BACKOFF seconds, then twice as long each time, AWS_TRIES
# times in all (the CLI has already retried it itself): 2+4+8+16+32 s by default.
BACKOFF=${H2LUA_AWS_BACKOFF:-2}
AWS_TRIES=${H2LUA_AWS_TRIES:-6}
# Tags of every stack (CloudFormation passes them on to the resources).


say() { printf '==> %s\n' "$*"; }
note() { printf '# %s\n' "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# Prints a command as a shell line that can be pasted back; a lone '|'
# argument is printed as a pipe.
show() {
  local line='+' arg quote="'\\''"   # ends the quoted word, a literal ', starts another
  for arg in "$@"; do
    if [[ $arg == '|' || $arg =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then line+=" $arg"
    else line+=" '${arg//\'/$quote}'"
    fi
  done
  printf '%s\n' "$line"
}

# run CMD ARGS... : print the command; run it unless this is a dry run.
run() {
  show "$@"
  ((DRY_RUN)) || "$@"
}

stack_name() { printf '%s-%s' "$PREFIX" "$1"; }

# stack_output TIER KEY : set OUTPUT to one output of a tier's stack. (A
# variable, not stdout, so that the command is shown in order with the rest.)
# A dry run shows the query and stands in a plausible value (123456789012 is
# AWS's example account) so that later commands can be shown in full.
stack_output() {
  local tier=$1 key=$2
  local cmd=(aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name "$tier")"
             --query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue" --output text)
  show "${cmd[@]}"
  if ((DRY_RUN)); then
    case $key in
      RepositoryUri) OUTPUT="123456789012.dkr.ecr.$REGION.amazonaws.com/$PREFIX" ;;
      LoadBalancerUrl) OUTPUT="http://$PREFIX-0123456789.$REGION.elb.amazonaws.com" ;;
      *) OUTPUT="$PREFIX-$key" ;;
    esac
    note "dry run: assuming $key = $OUTPUT"
    return
  fi
  OUTPUT=$("${cmd[@]}") || die "cannot read output $key of stack $(stack_name "$tier")"
  [[ -n $OUTPUT && $OUTPUT != None ]] || die "stack $(stack_name "$tier") has no output $key"
}

# die_expired : the message for credentials that expired (a Learner Lab's last
# 4 hours); every step is safe to run again, so the same command goes on.
die_expired() {
  die "your credentials expired: paste the new ones and run the same command again"
}

# aws_call VAR CMD... : run CMD (an aws command) and set VAR to its output.
# Throttling is tried again (BACKOFF, doubling, AWS_TRIES in all); expired
# credentials end the script (die_expired). Any other failure returns 1 with
# the CLI's message in AWS_ERROR, for the caller to judge.
# (Its own variables have names no caller uses: printf -v would set those.)
aws_call() {
  local __call_var=$1 __call_out __call_err __call_try=1 __call_wait=$BACKOFF
  shift
  __call_err=$(mktemp)
  while :; do
    if __call_out=$("$@" 2>"$__call_err"); then
      rm -f "$__call_err"
      AWS_ERROR=''
      printf -v "$__call_var" '%s' "$__call_out"
      return 0
    fi
    AWS_ERROR=$(<"$__call_err")
    if [[ $AWS_ERROR =~ ExpiredToken|RequestExpired|security\ token\ included\ in\ the\ request\ is\ expired ]]; then
      rm -f "$__call_err"
      printf '%s\n' "$AWS_ERROR" >&2
      die_expired
    fi
    if [[ $AWS_ERROR =~ Throttl|TooManyRequests|RequestLimitExceeded|Rate\ exceeded|SlowDown ]] && ((__call_try < AWS_TRIES)); then
      note "throttled by AWS (${1-} ${2-} ${3-}); trying again in ${__call_wait}s"
      sleep "$__call_wait"
      __call_wait=$(awk -v w="$__call_wait" 'BEGIN { print w * 2 }')
      __call_try=$((__call_try + 1))
      continue
    fi
    rm -f "$__call_err"
    return 1
  done
}

# query VAR DRY-VALUE CMD... : print CMD and set VAR to its output (DRY-VALUE
# in a dry run). Dies, with the CLI's message, when CMD fails.
query() {
  local __query_var=$1 __query_dry=$2 __query_out
  shift 2
  show "$@"
  if ((DRY_RUN)); then
    printf -v "$__query_var" '%s' "$__query_dry"
    return
  fi
  aws_call __query_out "$@" || { printf '%s\n' "$AWS_ERROR" >&2; die "failed: $*"; }
  [[ $__query_out == None ]] && __query_out=''
  printf -v "$__query_var" '%s' "$__query_out"
}

# read_status TIER : set STATUS to the status of the tier's stack; NONE only
# when CloudFormation says there is no such stack ("Stack with id X does not
# exist"). Throttling is retried and expired credentials end the script
# (aws_call); any other failure dies: it says nothing about the stack.
read_status() {
  aws_call STATUS aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name "$1")" \
    --query "Stacks[0].StackStatus" --output text && return
  if [[ $AWS_ERROR == *"Stack with id $(stack_name "$1") does not exist"* ]]; then
    STATUS=NONE
    return
  fi
  printf '%s\n' "$AWS_ERROR" >&2
  die "cannot read the status of stack $(stack_name "$1")"
}

# stack_status TIER : show the command and read_status. A dry run assumes the
# stack exists (UPDATE_COMPLETE).
stack_status() {
  show aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name "$1")" \
    --query "Stacks[0].StackStatus" --output text
  if ((DRY_RUN)); then
    STATUS=UPDATE_COMPLETE
    note "dry run: assuming $(stack_name "$1") exists ($STATUS)"
    return
  fi
  read_status "$1"
}

# settle TIER : when STATUS (of stack_status) is an operation in progress -
# one an earlier run started and did not see to the end - follow it to its
# end; STATUS is then the stack's new status. This makes a run that stopped
# (expired credentials, ^C) safe to run again.
settle() {
  local tier=$1 seen
  [[ $STATUS == *_IN_PROGRESS && $STATUS != REVIEW_IN_PROGRESS ]] || return 0
  note "$(stack_name "$tier") is in $STATUS: waiting until it is done"
  seen=$(mktemp)
  seen_events "$tier" "$seen"
  watch_stack "$tier" "$seen"
  rm -f "$seen"
}

# stack_exists TIER : true when the tier's stack exists (a dry run: yes).
stack_exists() {
  stack_status "$1"
  [[ $STATUS != NONE ]]
}

# stack_events TIER : the stack's events, newest first, one a line:
# id, resource, type, status, reason (tab-separated). Nothing when there is no stack.
stack_events() {
  aws cloudformation describe-stack-events --region "$REGION" --stack-name "$(stack_name "$1")" \
    --query 'StackEvents[].[EventId,LogicalResourceId,ResourceType,ResourceStatus,ResourceStatusReason]' \
    --output text 2>/dev/null || true
}

# watch_stack TIER SEEN-FILE : print the stack's new events (those whose id is
# not in SEEN-FILE) as they come - seconds since the start, resource, type,
# status, reason - until the stack is no longer in progress; set STATUS to
# its last status (NONE once deleted) and FIRST_FAILURE to the first failed
# resource's reason, if any.
watch_stack() {
  local tier=$1 seen=$2 t0 line id logical type status reason fresh
  t0=$(date +%s)
  FIRST_FAILURE=''
  if ((DRY_RUN)); then
    note "dry run: here the stack's events are shown until $(stack_name "$tier") is no longer in progress"
    STATUS=UPDATE_COMPLETE
    return
  fi
  while :; do
    read_status "$tier"
    fresh=$(stack_events "$tier" | grep -v -F -f "$seen" || true)
    if [[ -n $fresh ]]; then
      # oldest first
      while IFS=$'\t' read -r id logical type status reason; do
        [[ -n $id ]] || continue
        printf '%s\n' "$id" >>"$seen"
        [[ $reason == None ]] && reason=''
        printf '  %4ss  %-28s %-44s %-20s %s\n' "$(($(date +%s) - t0))" "$logical" "$type" "$status" "$reason"
        if [[ -z $FIRST_FAILURE && $status == *FAILED && -n $reason && $reason != *"Resource creation cancelled"* ]]; then
          FIRST_FAILURE="$logical ($type): $reason"
        fi
      done < <(tac <<<"$fresh")
    fi
    [[ $STATUS == *_IN_PROGRESS ]] || return 0
    sleep "$POLL"
  done
}

# seen_events TIER FILE : write the ids of the stack's events so far to FILE.
seen_events() {
  local tier=$1 file=$2
  : >"$file"
  ((DRY_RUN)) && return
  # an id that never occurs, so that grep -f has a pattern
  printf 'no-event-has-this-id\n' >"$file"
  stack_events "$tier" | cut -f1 >>"$file"
}

# delete_stack TIER : delete the tier's stack (if any) and follow it to the end.
delete_stack() {
  local tier=$1 seen
  say "delete $(stack_name "$tier")"
  stack_status "$tier"
  # An update still running cannot be deleted; a delete still running is asked again.
  [[ $STATUS == DELETE_IN_PROGRESS ]] || settle "$tier"
  if [[ $STATUS == NONE ]]; then
    note "no stack $(stack_name "$tier")"
    return
  fi
  seen=$(mktemp)
  seen_events "$tier" "$seen"
  run aws cloudformation delete-stack --region "$REGION" --stack-name "$(stack_name "$tier")"
  watch_stack "$tier" "$seen"
  rm -f "$seen"
  ((DRY_RUN)) && return
  if [[ $STATUS != NONE && $STATUS != DELETE_COMPLETE ]]; then
    die "stack $(stack_name "$tier") was not deleted ($STATUS)${FIRST_FAILURE:+; first failure: $FIRST_FAILURE}"
  fi
}

# The region: --region, else AWS_REGION, else AWS_DEFAULT_REGION, else the
# AWS CLI profile's, else us-east-1 (the region of AWS Academy Learner Labs).
default_region() {
  if [[ -n ${AWS_REGION:-} ]]; then printf '%s\n' "$AWS_REGION"; return; fi
  if [[ -n ${AWS_DEFAULT_REGION:-} ]]; then printf '%s\n' "$AWS_DEFAULT_REGION"; return; fi
  local configured=''
  if ((!DRY_RUN)) && command -v aws >/dev/null 2>&1; then
    configured=$(aws configure get region 2>/dev/null || true)
  fi
  printf '%s\n' "${configured:-us-east-1}"
}

# check_prefix : PREFIX is valid; sets TAGS, the tags of every stack.
check_prefix() {
  [[ $PREFIX =~ ^[a-z][a-z0-9-]{1,20}$ ]] ||
    die "stack prefix '$PREFIX' must be 2-21 characters: lower-case letters, digits, '-', starting with a letter"
  # shellcheck disable=SC2034,SC2054  # used by the scripts; commas are awscli's shorthand
  TAGS=(Key=project,Value=h2lua "Key=stack-prefix,Value=$PREFIX")
}

# Outside a dry run: the AWS CLI is installed and has working credentials.
check_aws() {
  command -v aws >/dev/null 2>&1 ||
    die "missing: the AWS CLI (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
  local account
  aws_call account aws sts get-caller-identity --query Account --output text ||
    die "missing: AWS credentials (run 'aws configure', or paste the Learner Lab's 'AWS Details' into ~/.aws/credentials)"
  say "AWS account $account, region $REGION, stack prefix $PREFIX"
}
