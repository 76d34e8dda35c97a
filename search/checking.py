"""``python -m search check RUN``: verify a run directory against its layout, repair orphans.

Why this exists: a run directory is written over hours or days by processes that get killed,
interrupted, run in parallel or on other hosts (``--jobs``, ``search worker``, Ray). Every
later stage (``show``, ``--resume``, ``ensemble``, ``report``, the API) trusts what the store
holds, so a truncated ``oof.npy`` or a record that claims models it lost turns up much later
as a confusing failure, or worse as a silently wrong ensemble. :func:`check_run` reads the
whole store once against the layout documented in :mod:`search.store` and says, for each
file, what is wrong with it.

Repairs are limited to files no stage reads, and to a record's promise its files no
longer keep: temporary files of interrupted atomic writes, trial directories allocated but
never started, per-fold test predictions of ended trials whose ``test.npy`` holds them
already, fold model files their record does not claim, and ``models_kept`` of a record
whose model files are gone (set false, so no stage tries to load them). A record, an OOF or
a ``test.npy`` is never deleted: anything else is reported as a problem, with the file's
absolute path, for a person to decide.

Live processes: ``check`` may run while a search writes the same directory. Trials whose
record says ``running`` are interrupted (resuming the run takes them up) or live (their
``.lock`` is held: ``RunStore.trial_alive``); their files are never repaired. A repair in an
ended trial's directory is made only if its trial.json is unchanged since it was read (a
changed one means a live writer, e.g. a Keras Tuner retry under the same number).
Temporary files and empty trial directories are removed only once they have not changed
for ``grace_seconds`` (a write or an allocation may be under way); without trial locks
(``trial_alive``), empty trial directories are also kept while a session of the run may be
live (run.json's last invocation has not ended): a Ray trial could be waiting for resources
in a directory allocated long before, and removing it would free its number.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard, get_args

import numpy as np

from search.errors import StoreError
from search.folds import repeat_count, rows_of
from search.store import RunStore, Status, TrialRecord, write_json

__all__ = ["GRACE_SECONDS", "CheckReport", "Finding", "Repair", "check_run"]

#: Files younger than this may be in the middle of a live process's write: left alone.
GRACE_SECONDS = 600.0

#: run.json keys later stages read without a fallback (show, resume, ensemble, report).
RUN_KEYS = ("name", "created", "space", "task", "metric", "direction", "settings",
            "study_name", "data", "invocations")
SUB_KEYS = {"space": ("path", "sha256"), "settings": ("trials", "folds", "seed"),
            "data": ("n_train", "n_test")}

_STATUSES: tuple[str, ...] = get_args(Status)
# search.store.atomic_write: ".<name>.<random>"; search.modelio._atomic: ".<stem>.<random><suffix>"
_TEMP_ATOMIC = re.compile(r"^\..+\.(?:npy|json|keras|joblib|html|py|log)\.[A-Za-z0-9_]+$")
_TEMP_MODELIO = re.compile(r"^\..+\.[A-Za-z0-9_]+\.(?:keras|joblib)$")
_FOLD_FILE = re.compile(r"^fold_(\d+)\.(keras|pre\.joblib)$")
_TEST_FOLD = re.compile(r"^test_fold_(\d+)\.npy$")
_SEED_FILE = re.compile(r"^seed_(\d+)\.(keras|pre\.joblib)$")
_TRIAL_FILES = {"trial.json", "oof.npy", "oof_repeats.npy", "test.npy", "tensorboard",
                ".lock"}


@dataclass(frozen=True)
class Finding:
    """One thing found: the absolute path it concerns and what is wrong or worth knowing."""

    path: Path
    what: str


@dataclass(frozen=True)
class Repair:
    """One repair: done, or (``--dry-run``) what would be done."""

    path: Path
    action: str  # "delete", "remove directory", "set models_kept false"
    why: str
    done: bool


@dataclass
class CheckReport:
    """What :func:`check_run` found and did.

    ``problems`` are left for a person (exit 1); ``repairs`` were made (or, in a dry run,
    would be); ``notes`` are neither (running trials, files too fresh to touch).
    """

    root: Path
    dry_run: bool
    problems: list[Finding] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # trials by status

    @property
    def clean(self) -> bool:
        """No problem left and nothing left to repair (a dry run's pending repairs count)."""
        return not self.problems and all(r.done for r in self.repairs)


def check_run(store: RunStore, *, repair: bool = True, grace_seconds: float = GRACE_SECONDS,
              now: float | None = None) -> CheckReport:
    """Verify ``store`` against the layout of :mod:`search.store`; make the safe repairs.

    Args:
        store: The run directory (fails with :class:`~search.errors.RunNotFoundError` if
            it has no run.json).
        repair: False: change nothing, list the repairs that would be made (``--dry-run``).
        grace_seconds: Files changed more recently than this may be a live writer's: left.
        now: The clock (tests).
    """
    store.require()
    checker = _Checker(store, repair=repair, grace=grace_seconds,
                       now=time.time() if now is None else now)
    checker.run()
    return checker.report


@dataclass
class _Run:
    """What run.json and the run-level arrays say the trials must agree with."""

    folds: int | None = None
    repeats: int = 1  # --repeats: K-fold splits (fold models per trial: folds × repeats)
    n_train: int | None = None
    n_test: int | None = None
    predict_test: bool = True
    fold_of: np.ndarray | None = None
    session_live: bool = False


class _Checker:
    """One pass over one run directory; collects the report as it goes (run-level facts
    first, since every trial is checked against them)."""

    def __init__(self, store: RunStore, *, repair: bool, grace: float, now: float) -> None:
        self.store = store
        self.repair = repair
        self.grace = grace
        self.now = now
        self.report = CheckReport(root=store.root, dry_run=not repair)
        self.trial_alive: Callable[[int], bool] | None = getattr(store, "trial_alive", None)
        #: While checking one trial: its record's (path, stat) when read. A repair there
        #: first checks the record is unchanged: a changed one means a live writer.
        self.guard: tuple[Path, tuple[int, int] | None] | None = None
        self.records: dict[int, TrialRecord] = {}
        self.outputs: dict[int, int] = {}  # OOF width of each complete trial
        self.refit_ok: set[int] = set()
        self.run_info = _Run()

    # -- findings and repairs -----------------------------------------------------------
    def problem(self, path: Path, what: str) -> None:
        self.report.problems.append(Finding(path, what))

    def note(self, path: Path, what: str) -> None:
        self.report.notes.append(Finding(path, what))

    def fix(self, path: Path, action: str, why: str, do: Callable[[], None]) -> bool:
        """Make one repair (or record it, in a dry run); a failure is a problem."""
        if self.repair and self.guard is not None and _stat(self.guard[0]) != self.guard[1]:
            self.note(path, f"not repaired ({action}: {why}): {self.guard[0].name} changed "
                            "while the trial was checked, so a live process is writing it")
            return False
        if self.repair:
            try:
                do()
            except (OSError, ValueError) as exc:  # ValueError: a record no longer JSON
                self.problem(path, f"could not {action} ({why}): {exc}")
                return False
        self.report.repairs.append(Repair(path, action, why, done=self.repair))
        return True

    def delete(self, path: Path, why: str) -> bool:
        return self.fix(path, "delete", why, lambda: path.unlink(missing_ok=True))

    def fresh(self, path: Path) -> bool:
        """True (and a note) if ``path`` changed within the grace period: maybe being written."""
        try:
            age = self.now - path.stat().st_mtime
        except OSError:
            return False
        if age < self.grace:
            self.note(path, f"changed {max(age, 0):.0f} s ago: a live process may be writing "
                            f"it; left alone (check again after {self.grace:.0f} s)")
            return True
        return False

    def delete_temps(self, entries: list[Path]) -> list[Path]:
        """Delete the temporary files of interrupted writes among ``entries``; return the
        others."""
        rest = []
        for path in entries:
            if _is_temp(path):
                if not self.fresh(path):
                    self.delete(path, "temporary file of an interrupted atomic write")
            else:
                rest.append(path)
        return rest

    # -- the run ------------------------------------------------------------------------
    def run(self) -> None:
        self.check_run_json()
        self.check_arrays()
        self.check_rows()
        root = self.store.root
        self.delete_temps(sorted(p for p in root.iterdir() if p.is_file()))
        self.check_trials()
        self.check_outputs()
        self.check_members()
        self.check_ensemble()
        self.report.counts = dict(Counter(r.status for r in self.records.values()))

    def check_run_json(self) -> None:
        path = self.store.run_json_path
        try:
            run: Any = self.store.read_run()
        except StoreError as exc:
            self.problem(path, str(exc))
            return
        if not isinstance(run, dict):
            self.problem(path, f"holds a JSON {type(run).__name__}, not an object")
            return
        missing = [k for k in RUN_KEYS if k not in run]
        for key, subs in SUB_KEYS.items():
            if isinstance(run.get(key), dict):
                missing += [f"{key}.{s}" for s in subs if s not in run[key]]
            elif key in run:
                missing.append(f"{key} (an object)")
        if missing:
            self.problem(path, f"lacks {', '.join(missing)}: later stages (show, --resume, "
                               "ensemble, report) read them")
        settings: dict[str, Any] = run["settings"] if isinstance(run.get("settings"),
                                                                  dict) else {}
        data: dict[str, Any] = run["data"] if isinstance(run.get("data"), dict) else {}
        info = self.run_info
        k = settings.get("folds")
        if "folds" in settings and (not _is_int(k) or k < 2):
            self.problem(path, f"settings.folds is {k!r}, not a number of folds (2 or more)")
        info.folds = k if _is_int(k) and k >= 2 else None
        r = settings.get("repeats", 1)
        if not _is_int(r) or r < 1:
            self.problem(path, f"settings.repeats is {r!r}, not a number of repeats (1 or more)")
        info.repeats = r if _is_int(r) and r >= 1 else 1
        info.predict_test = bool(settings.get("predict_test", True))
        for key in ("n_train", "n_test"):
            value = data.get(key)
            if key in data and (not _is_int(value) or value < 0):
                self.problem(path, f"data.{key} is {value!r}, not a row count")
            elif _is_int(value):
                setattr(info, key, value)
        invocations = run.get("invocations")
        if isinstance(invocations, list) and invocations and isinstance(invocations[-1], dict):
            info.session_live = invocations[-1].get("finished", 0) is None

    def check_arrays(self) -> None:
        info, root = self.run_info, self.store.root
        y_train = self.load(root / "y_train.npy", "training targets")
        y_test = self.load(root / "y_test.npy", "test targets")
        fold_of = self.load(root / "folds.npy", "fold ids")
        if y_train is not None:
            if info.n_train is not None and len(y_train) != info.n_train:
                self.problem(root / "y_train.npy", f"has {len(y_train)} rows; run.json's "
                                                   f"data.n_train is {info.n_train}")
            info.n_train = info.n_train if info.n_train is not None else len(y_train)
        if y_test is not None and info.n_test is not None and len(y_test) != info.n_test:
            self.problem(root / "y_test.npy", f"has {len(y_test)} rows; run.json's "
                                              f"data.n_test is {info.n_test}")
        if fold_of is None:
            return
        path = root / "folds.npy"
        if fold_of.ndim not in (1, 2) or not np.issubdtype(fold_of.dtype, np.integer):
            self.problem(path, f"holds {fold_of.dtype} of shape {fold_of.shape}, not one "
                               "integer fold id per training row (per repeat)")
            return
        if info.n_train is not None and fold_of.shape[-1] != info.n_train:
            self.problem(path, f"has {fold_of.shape[-1]} fold ids for {info.n_train} training "
                               "rows")
            return
        if repeat_count(fold_of) != info.repeats:
            self.problem(path, f"holds {repeat_count(fold_of)} K-fold split(s); run.json's "
                               f"settings.repeats is {info.repeats}")
            return
        if info.folds is None and fold_of.size:
            info.folds = int(fold_of.max()) + 1  # run.json lost it: the fold ids still say
        k = info.folds
        if k is not None:
            for ids in np.atleast_2d(fold_of):
                present = set(np.unique(ids).tolist())
                if not present <= set(range(k)) or len(present) != k:
                    self.problem(path, f"holds fold ids {sorted(present)}; the run has {k} "
                                       f"folds (ids 0..{k - 1}, each used)")
                    return
        info.fold_of = fold_of

    def check_rows(self) -> None:
        """A run over a subset of the space's training rows (an ``evaluate`` outer fold):
        its index arrays must exist, match run.json's digest and the run's row counts, and
        never share a row between training and test (that would be a leak)."""
        from search.rows import RowSubset

        try:
            spec = self.store.read_run().get("rows")
        except (StoreError, AttributeError):
            return  # check_run_json has said what is wrong with run.json
        if not isinstance(spec, dict):
            return
        root, info = self.store.root, self.run_info
        train = self.load(root / str(spec.get("train")), "training rows of the space's split")
        test = self.load(root / str(spec.get("test")), "test rows of the space's split")
        if train is None or test is None:
            return
        rows = RowSubset(train=train, test=test, n_source=int(spec.get("n_source", -1)))
        if spec.get("sha256") != rows.key:
            self.problem(root / str(spec["train"]), "the row indices differ from the rows "
                                                    "run.json recorded (sha256)")
        for arr, n, name in ((train, info.n_train, "train"), (test, info.n_test, "test")):
            if n is not None and len(arr) != n:
                self.problem(root / str(spec[name]), f"has {len(arr)} rows; the run has {n}")
        if len(np.intersect1d(train, test)):
            self.problem(root / str(spec["test"]), "shares rows with the training rows")

    def load(self, path: Path, what: str) -> np.ndarray | None:
        if not path.is_file():
            self.problem(path, f"is missing ({what})")
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            self.problem(path, f"is not a readable .npy file (truncated?): {exc}")
            return None

    # -- trials -------------------------------------------------------------------------
    def check_trials(self) -> None:
        base = self.store.root / "trials"
        if not base.is_dir():
            self.note(base, "no trials yet")
            return
        for d in sorted(base.iterdir()):
            if d.is_dir() and d.name.isdigit():
                self.check_trial_dir(d)
            else:
                self.note(d, "not a trial directory (trials/<NNNN>/); left alone")

    def alive(self, number: int) -> bool | None:
        """Whether a live process holds the trial (``RunStore.trial_alive``); None: unknown
        (a store without trial locks). Asked only where a lock file exists, because taking
        the lock to test it would create one (``--dry-run`` changes nothing)."""
        if self.trial_alive is None:
            return None
        if not (self.store.trial_dir(number) / ".lock").is_file():
            return False
        return self.trial_alive(number)

    def liveness(self, number: int) -> str:
        alive = self.alive(number)
        if alive is None:
            return ("interrupted (resuming the run takes it up) or live (another process is "
                    "running it now)")
        if alive:
            return "live: another process is running it now"
        return "interrupted: resuming the run takes it up"

    def check_trial_dir(self, d: Path) -> None:
        number = int(d.name)
        rec_path = d / "trial.json"
        entries = sorted(d.iterdir())
        if not rec_path.is_file():
            self.check_unstarted(d, number, entries)
            return
        signature = _stat(rec_path)
        record = self.read_record(rec_path, number)
        if record is None:
            return
        self.records[number] = record
        if record.status == "running":
            self.note(d, f"trial {number} is running ({len(record.folds)} of "
                         f"{record.n_folds} folds recorded): {self.liveness(number)}; its "
                         "files are left alone")
            self.check_fold_ids(record, rec_path)
            self.check_oof(record, d)
            return
        self.guard = (rec_path, signature)
        try:
            entries = self.delete_temps(entries)
            self.check_fold_ids(record, rec_path)
            self.check_oof(record, d)
            self.check_test(record, d)
            self.check_models(record, d, rec_path)
            self.check_test_folds(record, d)
        finally:
            self.guard = None
        for path in entries:
            name = path.name
            if not (name in _TRIAL_FILES or _FOLD_FILE.match(name) or _TEST_FOLD.match(name)):
                self.note(path, "not part of a trial's layout (search/store.py); left alone")

    def check_unstarted(self, d: Path, number: int, entries: list[Path]) -> None:
        """A trial directory without a record: allocated and never started, or orphaned files."""
        others = [p for p in entries if not _is_temp(p) and p.name != ".lock"]
        if others:
            names = ", ".join(p.name for p in others)
            self.problem(d, f"has no trial.json but holds {names}: files no stage reads "
                            "(the record was lost or never written)")
            return
        alive = self.alive(number)
        if alive:
            self.note(d, f"trial {number} has no record yet but is live; left alone")
            return
        if alive is None and self.run_info.session_live:
            self.note(d, "allocated, never started: left alone while a session of this run "
                         "may be live (run.json's last invocation has not ended: a trial may "
                         "wait here for resources)")
            return
        if self.fresh(d) or any(self.fresh(p) for p in entries):
            return
        for path in entries:
            self.delete(path, "left in a trial directory that was never started")
        self.fix(d, "remove directory", "allocated, never started: empty", d.rmdir)

    def read_record(self, path: Path, number: int) -> TrialRecord | None:
        try:
            record = self.store.read_trial(number)
        except StoreError as exc:
            self.problem(path, str(exc))
            return None
        except (ValueError, AttributeError, KeyError) as exc:
            self.problem(path, f"is not a valid trial record: {exc}")
            return None
        errors = _record_errors(record)
        if record.number != number:
            errors.insert(0, f"its number is {record.number!r}, its directory says {number}")
        if errors:
            self.problem(path, "is not a valid trial record: " + "; ".join(errors))
            return None
        return record

    def check_fold_ids(self, record: TrialRecord, path: Path) -> None:
        k = self.run_info.folds
        k = None if k is None else k * self.run_info.repeats  # fold models per trial
        ids = [f.fold for f in record.folds]
        dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
        if dupes:
            self.problem(path, f"records fold(s) {dupes} more than once")
        if k is not None and any(not 0 <= i < k for i in ids):
            self.problem(path, f"records folds {ids}; the run has folds 0..{k - 1}")
        if record.status != "complete":
            return
        if k is not None and sorted(ids) != list(range(k)):
            self.problem(path, f"is complete but records folds {sorted(ids)}, not 0..{k - 1}")
        scores, score = [f.score for f in record.folds], record.score
        if not all(_finite(s) for s in scores):
            self.problem(path, f"is complete with non-finite fold scores {scores}")
        elif score is None or not _finite(score):
            self.problem(path, f"is complete with score {score!r}")
        elif scores and not math.isclose(score, float(np.mean(scores)), rel_tol=1e-6,
                                         abs_tol=1e-9):
            self.problem(path, f"has score {score}, but its fold scores' mean is "
                               f"{float(np.mean(scores))}")

    def check_oof(self, record: TrialRecord, d: Path) -> None:
        path, info = d / "oof.npy", self.run_info
        if not path.is_file():
            if record.status == "complete" or record.folds:
                self.problem(path, f"is missing; trial {record.number} ({record.status}) "
                                   f"recorded {len(record.folds)} folds")
            return
        oof = self.load(path, "out-of-fold predictions")
        if oof is None:
            return
        if oof.ndim != 2 or (info.n_train is not None and oof.shape[0] != info.n_train):
            self.problem(path, f"has shape {oof.shape}; the run has {info.n_train} training "
                               "rows: (n_train, outputs) expected")
            return
        bad = ~np.isfinite(oof).all(axis=1)
        if record.status == "complete":
            self.outputs[record.number] = oof.shape[1]
            if bad.any():
                self.problem(path, f"has {_rows(int(bad.sum()))} with NaN/inf (first: row "
                                   f"{int(np.argmax(bad))}) in a complete trial")
            return
        if info.fold_of is None:
            return
        recorded = [f.fold for f in record.folds]
        rows = bad & rows_of(info.fold_of, recorded)
        if rows.any():
            self.problem(path, f"has {_rows(int(rows.sum()))} of NaN/inf in folds {recorded}, "
                               f"which trial {record.number} ({record.status}) recorded")

    def check_test(self, record: TrialRecord, d: Path) -> None:
        path, info = d / "test.npy", self.run_info
        if not path.is_file():
            if record.status == "complete" and info.predict_test:
                self.problem(path, f"is missing: complete trial {record.number} has no test "
                                   "predictions (the run predicts the test set)")
            return
        test = self.load(path, "test predictions")
        if test is None:
            return
        width = self.outputs.get(record.number)
        if test.ndim != 2 or (info.n_test is not None and test.shape[0] != info.n_test) or \
                (width is not None and test.shape[1] != width):
            self.problem(path, f"has shape {test.shape}; expected ({info.n_test}, "
                               f"{width if width is not None else 'outputs'})")
        elif record.status == "complete" and not np.isfinite(test).all():
            self.problem(path, f"has {_rows(int((~np.isfinite(test).all(axis=1)).sum()))} "
                               "with NaN/inf in a complete trial")

    def check_models(self, record: TrialRecord, d: Path, rec_path: Path) -> None:
        """models_kept ⇒ every recorded fold's model (and preprocessor where others have
        one); model files the record does not claim are deleted."""
        files: dict[tuple[int, str], Path] = {}
        for path in d.iterdir():
            m = _FOLD_FILE.match(path.name)
            if m and path.is_file():
                files[int(m.group(1)), m.group(2)] = path
        recorded = {f.fold for f in record.folds}
        claimed: set[tuple[int, str]] = set()
        if record.models_kept:
            missing = [d / f"fold_{k}.keras" for k in sorted(recorded)
                       if (k, "keras") not in files]
            if any((k, "pre.joblib") in files for k in recorded):
                missing += [d / f"fold_{k}.pre.joblib" for k in sorted(recorded)
                            if (k, "pre.joblib") not in files]
            if missing:
                names = ", ".join(p.name for p in missing)
                ok = self.fix(rec_path, "set models_kept false",
                              f"its model files {names} are missing: no stage may load them",
                              lambda: _set_models_kept_false(rec_path))
                if not ok:
                    return
                if self.repair:  # our own write: the record is still the one checked
                    self.guard = (rec_path, _stat(rec_path))
            else:
                claimed = {key for key in files if key[0] in recorded}
        for key, path in sorted(files.items()):
            if key not in claimed:
                self.delete(path, f"a fold model file trial {record.number}'s record does not "
                                  "claim (models_kept false or not a recorded fold)")

    def check_test_folds(self, record: TrialRecord, d: Path) -> None:
        parts = sorted(p for p in d.iterdir() if _TEST_FOLD.match(p.name))
        if not parts:
            return
        if not (d / "test.npy").is_file():
            self.problem(d, f"trial {record.number} ended ({record.status}) with "
                            f"{', '.join(p.name for p in parts)} but no test.npy: its test "
                            "predictions were never combined (these files are their only copy)")
            return
        for path in parts:
            self.delete(path, f"trial {record.number} ended: its test.npy holds these fold "
                              "test predictions")

    def check_outputs(self) -> None:
        if not self.outputs:
            return
        width, _ = Counter(self.outputs.values()).most_common(1)[0]
        for number, w in sorted(self.outputs.items()):
            if w != width:
                self.problem(self.store.trial_dir(number) / "oof.npy",
                             f"has {w} outputs; the run's other complete trials have {width}")

    # -- members and ensembles ----------------------------------------------------------
    def check_members(self) -> None:
        base = self.store.root / "members"
        if not base.is_dir():
            return
        for d in sorted(base.iterdir()):
            if not (d.is_dir() and d.name.isdigit()):
                self.note(d, "not a member directory (members/<NNNN>/); left alone")
                continue
            self.check_member(d, int(d.name))

    def check_member(self, d: Path, number: int) -> None:
        entries = self.delete_temps(sorted(d.iterdir()))
        path = d / "refit.json"
        if not path.is_file():
            self.problem(d, "has no refit.json: a `retrain` that did not finish (or one "
                            "running now); rerun `python -m search retrain RUN`")
            return
        try:
            data = json.loads(path.read_text())
            status, seeds = data["status"], data["seeds"]
            kept = sum(bool(s["ok"]) for s in seeds)
            trial = data["trial"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.problem(path, f"is not a valid refit record: {type(exc).__name__}: {exc}")
            return
        if trial != number:
            self.problem(path, f"is the refit of trial {trial!r}; its directory says {number}")
        record = self.records.get(number)
        if record is None or record.status != "complete":
            self.problem(d, f"refits trial {number}, which is not a complete trial")
        seed_files: dict[tuple[int, str], Path] = {}
        for p in entries:
            m = _SEED_FILE.match(p.name)
            if m:
                seed_files[int(m.group(1)), m.group(2)] = p
        if status != "ok":
            if seed_files:
                self.note(d, f"refit {status}: its seed files are not used")
            return
        missing = [f"seed_{i}.keras" for i in range(kept) if (i, "keras") not in seed_files]
        if any(kind == "pre.joblib" for _, kind in seed_files):
            missing += [f"seed_{i}.pre.joblib" for i in range(kept)
                        if (i, "pre.joblib") not in seed_files]
        extra = [p.name for (i, _), p in sorted(seed_files.items()) if i >= kept]
        if missing:
            self.problem(path, f"keeps {kept} seed models, but {', '.join(missing)} "
                               "missing: the refit member cannot be loaded")
        if extra:
            self.problem(d, f"holds {', '.join(extra)} beyond the {kept} seed models "
                            "refit.json keeps: the refit member would load them too")
        if not missing and not extra:
            self.refit_ok.add(number)
        if self.run_info.predict_test and kept and not (d / "test.npy").is_file():
            self.problem(d / "test.npy", "is missing: the refit member's test predictions")

    def check_ensemble(self) -> None:
        path = self.store.root / "ensemble.json"
        if not path.is_file():
            return
        try:
            data = json.loads(path.read_text())
            kinds = data["kinds"]
            entries = {kind: (list(e["members"]), e.get("methods", {}))
                       for kind, e in kinds.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.problem(path, f"is not a valid ensemble report: {type(exc).__name__}: {exc}")
            return
        for kind, (members, methods) in entries.items():
            numbers: list[Any] = [m.get("trial") if isinstance(m, dict) else None
                                  for m in members]
            for n in numbers:
                record = self.records.get(n) if _is_int(n) else None
                if record is None or record.status != "complete":
                    self.problem(path, f"{kind} ensemble member {n!r} is not a complete "
                                       "trial of this run")
                elif kind == "refit" and n not in self.refit_ok:
                    self.problem(path, f"refit ensemble member {n} has no usable refit "
                                       f"member in members/{n:04d}/")
            for name, method in (methods.items() if isinstance(methods, dict) else []):
                weights = method.get("weights") if isinstance(method, dict) else None
                if not isinstance(weights, list) or len(weights) != len(members):
                    self.problem(path, f"{kind} method {name!r} has weights {weights!r} for "
                                       f"{len(members)} members")


# -- helpers --------------------------------------------------------------------------------
def _is_temp(path: Path) -> bool:
    """A temporary file of an atomic write (``search.store.atomic_write``/``modelio._atomic``)."""
    return path.is_file() and bool(_TEMP_ATOMIC.match(path.name) or
                                   _TEMP_MODELIO.match(path.name))


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _record_errors(record: TrialRecord) -> list[str]:
    """Type errors of a parsed record that from_json lets through (it checks names only)."""
    errors = []
    if record.status not in _STATUSES:
        errors.append(f"status {record.status!r} is none of {', '.join(_STATUSES)}")
    if not isinstance(record.params, dict):
        errors.append("params is not an object")
    if not isinstance(record.models_kept, bool):
        errors.append(f"models_kept is {record.models_kept!r}")
    if record.score is not None and not isinstance(record.score, (int, float)):
        errors.append(f"score is {record.score!r}")
    for f in record.folds:
        if not _is_int(f.fold):
            errors.append(f"a fold's number is {f.fold!r}")
        if not isinstance(f.score, (int, float)) or isinstance(f.score, bool):
            errors.append(f"fold {f.fold!r}'s score is {f.score!r}")
    return errors


def _set_models_kept_false(path: Path) -> None:
    """Rewrite the record's ``models_kept`` only: keys this version does not know survive."""
    data = json.loads(path.read_text())
    data["models_kept"] = False
    write_json(path, data)
