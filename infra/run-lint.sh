#!/usr/bin/env bash
# Lint infra/template.yaml with cfn-lint (plus the serverless rules) and
# checkov, then run the template tests in tests/infra/.
#
# The tools live in a virtual environment (INFRA_LINT_VENV, default
# target/infra-lint-venv), created from infra/requirements-lint.txt on the
# first run and again whenever that file or constraints-lint.txt changes.
# Everything after the install runs offline: with dummy AWS credentials and,
# where unshare is allowed, in a network namespace without interfaces.
set -euo pipefail

repository_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repository_root"

template=infra/template.yaml
requirements=infra/requirements-lint.txt
constraints=infra/constraints-lint.txt
venv="${INFRA_LINT_VENV:-$repository_root/target/infra-lint-venv}"
stamp="$venv/.requirements.sha256"

requirements_hash="$(cat "$requirements" "$constraints" | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$requirements_hash" ]]; then
    echo "Installing lint tools into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" -c "$constraints"
    echo "$requirements_hash" > "$stamp"
fi

# None of the tools needs AWS. The dummy values stop the SDKs from looking
# for real credentials or asking the instance metadata service.
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

offline=()
if unshare --net true 2>/dev/null; then
    offline=(unshare --net)
else
    echo "NOTE: unshare --net is not permitted here, so the tools run with the normal network." >&2
fi

failures=()

echo "== cfn-lint $template (with cfn_lint_serverless.rules)"
if "${offline[@]}" "$venv/bin/cfn-lint" --append-rules cfn_lint_serverless.rules -- "$template"; then
    echo "cfn-lint: no findings"
else
    failures+=(cfn-lint)
fi

# Without --skip-download, checkov fetches check metadata from Prisma Cloud.
echo "== checkov $template"
if ! "${offline[@]}" "$venv/bin/checkov" --file "$template" --framework cloudformation \
        --skip-download --compact --quiet; then
    failures+=(checkov)
fi

echo "== pytest tests/infra"
if ! "${offline[@]}" "$venv/bin/python" -m pytest tests/infra -p no:cacheprovider -q; then
    failures+=(pytest)
fi

if (( ${#failures[@]} > 0 )); then
    echo "Infrastructure lint failed in: ${failures[*]} (findings are printed above)" >&2
    exit 1
fi
echo "Infrastructure lint passed: cfn-lint, checkov, pytest"
