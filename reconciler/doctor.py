"""`reconciler doctor`: a read-only check of the set-up, saying what it found and what to fix.

Checks, in order, each with its finding: the API key is set (its length, never its value),
the base URL (https, ending in `/v1`), the proxy in use (without its credentials), that the
API at that URL answers as Fyno's profile API with this key, workspace and version (the
same probe as every command's preflight), and, when a profile id is known, that its GET
has Fyno's documented shape. Nothing is written anywhere; only GETs are sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from reconciler.answers import ProfileApi, Verdict
from reconciler.errors import ApiError
from reconciler.preflight import preflight

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts where plain http is expected: the sandbox."""


@dataclass(frozen=True, slots=True)
class Check:
    """One thing checked: whether it holds, what was found, and what to do if it does not."""

    name: str
    ok: bool
    found: str
    fix: str = ""


def check_setup(env: Mapping[str, str], base_url: str, proxy: str | None) -> list[Check]:
    """What can be checked without a request."""
    key = env.get("FYNO_API_KEY", "")
    checks = [Check("API key", bool(key),
                    f"FYNO_API_KEY is set ({len(key)} characters)" if key
                    else "FYNO_API_KEY is not set",
                    "" if key else "export FYNO_API_KEY with the workspace's API key")]
    url_problems = []
    parsed = urlsplit(base_url)
    if parsed.scheme != "https" and parsed.hostname not in LOOPBACK:
        url_problems.append("it is not https")
    if not base_url.rstrip("/").endswith("/v1"):
        url_problems.append("it does not end in /v1")
    checks.append(Check("base URL", not url_problems,
                        f"{base_url}" + (f" ({'; '.join(url_problems)})" if url_problems else ""),
                        "set FYNO_BASE_URL to https://api.fyno.io/v1 (or your region's URL "
                        "ending in /v1)" if url_problems else ""))
    checks.append(Check("proxy", True, f"through {_without_credentials(proxy)}" if proxy
                        else "none (HTTPS_PROXY/HTTP_PROXY unset, or NO_PROXY names the host)"))
    return checks


def check_api(api: ProfileApi, profile_id: str | None) -> list[Check]:
    """What one probe and one profile's GET tell about the API behind `api`."""
    try:
        preflight(api)
    except ApiError as error:
        return [Check("API", False, str(error), "see above; the API key is never shown")]
    checks = [Check("API", True, f"{api.where} answers as Fyno's profile API, and takes "
                                 "the key")]
    if profile_id is None:
        return checks
    try:
        answer = api.get_profile(profile_id)
    except ApiError as error:
        return [*checks, Check(f"profile {profile_id}", False, str(error))]
    if answer.verdict is Verdict.OK:
        channels = sorted(answer.body.get("channel", {}))
        found = f"has Fyno's shape; channels: {', '.join(channels) or 'none'}"
        return [*checks, Check(f"profile {profile_id}", True, found)]
    if answer.verdict is Verdict.REFUSED:
        return [*checks, Check(f"profile {profile_id}", True,
                               "no such profile in this workspace and version (400)")]
    problem = answer.problem or f"answered {answer.status} {answer.message}".strip()
    return [*checks, Check(f"profile {profile_id}", False, problem,
                           "a 429 or 5xx may pass: try again; a malformed answer means "
                           "something between you and Fyno changes its answers")]


def run_doctor(env: Mapping[str, str], base_url: str, proxy: str | None,
               make_api: Callable[[], ProfileApi], profile_id: str | None) -> list[Check]:
    checks = check_setup(env, base_url, proxy)
    if not checks[0].ok:
        return checks
    api = make_api()
    try:
        return checks + check_api(api, profile_id)
    finally:
        api.close()


def _without_credentials(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "•••@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}" if rest else url
