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

# stack_exists TIER : true when the tier's stack exists. A dry run prints the
# check and answers yes.
stack_exists() {
  local cmd=(aws cloudformation describe-stacks --region "$REGION" --stack-name "$(stack_name "$1")"
             --query "Stacks[0].StackStatus" --output text)
  if ((DRY_RUN)); then
    show "${cmd[@]}"
    note "dry run: assuming $(stack_name "$1") exists"
    return 0
  fi
  "${cmd[@]}" >/dev/null 2>&1
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

check_prefix() {
  [[ $PREFIX =~ ^[a-z][a-z0-9-]{1,20}$ ]] ||
    die "stack prefix '$PREFIX' must be 2-21 characters: lower-case letters, digits, '-', starting with a letter"
}

# Outside a dry run: the AWS CLI is installed and has working credentials.
check_aws() {
  command -v aws >/dev/null 2>&1 ||
    die "missing: the AWS CLI (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
  local account
  account=$(aws sts get-caller-identity --query Account --output text 2>/dev/null) ||
    die "missing: AWS credentials (run 'aws configure', or paste the Learner Lab's 'AWS Details' into ~/.aws/credentials)"
  say "AWS account $account, region $REGION, stack prefix $PREFIX"
}
