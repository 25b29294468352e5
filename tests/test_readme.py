"""The README's test command is exactly what CI runs, and its main-job command names a real verb."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = _bash_blocks(readme.split("## The two commands", 1)[1])
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd in ci, f"README test command {test_cmd!r} is not what .ci/run runs"


def test_main_job_uses_a_known_verb():
    from slotvideo.cli import VERBS

    readme = (ROOT / "README.md").read_text()
    main_cmd = _bash_blocks(readme.split("## The two commands", 1)[1])[0]
    verbs = re.findall(r"slotvideo (\w+)", main_cmd)
    assert verbs and all(v in VERBS for v in verbs)
