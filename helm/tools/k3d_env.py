"""Split a seed-style `.env.k3d` into the secrets and the plain settings, for `make k3d-deploy`.

The seed's `.env.k3d` mixes secrets (GITLAB_TOKEN, ...) with plain settings (GITLAB_URL,
COPILOT_PROVIDER_BASE_URL, ...). The chart gives each pod only the secret keys it needs, by name, from
`secrets.existingSecret`, so a plain setting put in that Secret would never reach a pod. This writes
`secrets.env` (the Settings fields typed as secrets) and `config.env` (everything else, unknown seed
variables included, so the service's start-up check can name them); k3d-deploy turns the first into the
release's Secret and the second into a ConfigMap given to every pod through `extraEnvFrom`.

    python helm/tools/k3d_env.py .env.k3d .data/k3d     # writes .data/k3d/secrets.env, .data/k3d/config.env
"""

from __future__ import annotations

import sys
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from contracts.settings import Settings  # noqa: E402


def secret_names() -> set[str]:
    return {
        name.upper()
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or "SecretStr" in str(field.annotation)
    }


def split(env_file: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(secrets, plain settings) of an env file, empty values left out; a value kubectl's
    --from-env-file cannot carry is refused."""
    values = dotenv_values(env_file)
    secrets_, config = {}, {}
    secret = secret_names()
    for key, value in values.items():
        if not value:
            continue  # empty means the default here (README), so the chart's value stands
        if "\n" in value:
            raise ValueError(
                f"{env_file}: {key} spans several lines; kubectl --from-env-file cannot carry that"
            )
        (secrets_ if key in secret else config)[key] = value
    return secrets_, config


def write(entries: dict[str, str], path: Path) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in entries.items()))
    path.chmod(0o600)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: k3d_env.py ENV_FILE OUT_DIR", file=sys.stderr)
        return 2
    env_file, out = Path(argv[0]), Path(argv[1])
    if not env_file.is_file():
        print(
            f"{env_file} is missing: put GITLAB_TOKEN=..., GITLAB_WEBHOOK_SECRET=... in it", file=sys.stderr
        )
        return 2
    try:
        secrets_, config = split(env_file)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    write(secrets_, out / "secrets.env")
    write(config, out / "config.env")
    print(
        f"{env_file}: {len(secrets_)} secret(s) -> {out / 'secrets.env'}, {len(config)} setting(s) -> {out / 'config.env'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
