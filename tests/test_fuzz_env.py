"""Fuzz: any value of the environment variables the API commands read ends in a clean
message or success, never an internal error, and before any request is made."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import cli

# No environment can hold a NUL, nor (on POSIX) a lone surrogate other than the
# undecodable bytes Python maps to U+DC80..U+DCFF.
NO_NUL = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
CONFIG = 'workspace: FYFUZZ0001\nprofiles:\n  u-1:\n    email: "a@example.com"\n'
values = st.one_of(
    st.sampled_from(["", "0", "-1", "nan", "inf", "-inf", "1e999", "0x10", "1_0", " 2 ",
                     "9" * 5000, "abc", "\x01", "0.5\n", "١٢"]),
    st.text(NO_NUL, max_size=20))


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(retry_base=values, timeout=values,
       base_url=st.sampled_from(["", "ftp://x/v1", "http://", "https://[::1", "x" * 3000,
                                 "http://127.0.0.1:1/v1"]) | st.text(NO_NUL, max_size=20))
def test_garbage_settings_end_cleanly(tmp_path: Path, retry_base: str, timeout: str,
                                      base_url: str) -> None:
    (tmp_path / "profiles.yaml").write_text(CONFIG)
    env = {"FYNO_API_KEY": "k", "RECONCILER_RETRY_BASE": retry_base,
           "RECONCILER_TIMEOUT": timeout, "FYNO_BASE_URL": base_url,
           "HTTP_PROXY": "", "HTTPS_PROXY": "", "ALL_PROXY": ""}
    result = CliRunner().invoke(cli, ["refresh", str(tmp_path / "profiles.yaml"), "--state",
                                      str(tmp_path / "state.json")], env=env)
    assert result.exit_code in (0, 1), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    if result.exit_code == 1 and ("RECONCILER_RETRY_BASE" in result.output
                                  or "RECONCILER_TIMEOUT" in result.output):
        assert "must be a number of seconds" in result.output
