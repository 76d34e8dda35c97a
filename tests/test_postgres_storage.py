"""Optuna across processes on a real PostgreSQL server (the ``postgres_url`` fixture).

Shows the ground ``--storage postgresql://…`` stands on: separate OS processes, each
loading the study by name from the URL, add trials to one shared study. Also records what
a failing connection says, so that callers know which messages need a password scrubbed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from search.redact import redact_text, redact_url

WORKER = textwrap.dedent("""
    import os
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        return trial.suggest_float("x", -1.0, 1.0) ** 2

    study = optuna.load_study(study_name=os.environ["STUDY"], storage=os.environ["STORAGE"])
    study.optimize(objective, n_trials=3)
""")


def _password(url: str) -> str:
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    assert password
    return password


def test_two_processes_share_one_study(postgres_url: str) -> None:
    import optuna

    name = f"smoke-{uuid.uuid4().hex[:8]}"
    optuna.create_study(storage=postgres_url, study_name=name)
    env = {**os.environ, "STUDY": name, "STORAGE": postgres_url}  # not argv: ps shows argv
    workers = [subprocess.Popen([sys.executable, "-c", WORKER], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    for w, out in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out

    trials = optuna.load_study(study_name=name, storage=postgres_url).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6
    assert len({t.user_attrs["pid"] for t in complete}) == 2  # both processes took part
    assert len({t.number for t in complete}) == 6


@pytest.mark.parametrize("case", ["wrong password", "closed port", "missing database"])
def test_failed_connections_do_not_show_the_password(postgres_url: str, case: str) -> None:
    """SQLAlchemy/psycopg2 name host, port, user and database but not the password; the
    redacted URL plus the scrubbed message is what a user should see."""
    import optuna
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    password = _password(postgres_url)
    if case == "wrong password":
        password = "Wr0ng-pw-c4fe"
        url = url.set(password=password)
    elif case == "closed port":
        url = url.set(port=1)
    else:
        url = url.set(database="no_such_db")
    text = url.render_as_string(hide_password=False)
    assert password in text

    with pytest.raises(Exception) as info:
        optuna.storages.get_storage(text)
    message = str(info.value)
    assert password not in message and password not in repr(info.value)
    shown = f"{redact_url(text)}: {redact_text(message, [password])}"
    assert password not in shown and ":***@" in shown
