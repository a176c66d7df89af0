"""Scribe from Python: Hugging Face decoder and encoder folders run on the CPU by
Scribe's C++ runtime, and its command-line program's commands, in this process.

    import scribe
    lm = scribe.Decoder.from_pretrained("models/demo-gpt2", dtype="bf16")
    print(lm.generate("In the beginning", max_new_tokens=20).texts[0])

Everything computes in the C++ headers the library and the ``scribe`` program are
made of (the native module ``scribe._native``); this module turns texts and lists
into token arrays and results into objects. Token ids go in as any 1-D integer
sequence (a list, a NumPy array) and come back as NumPy ``int32`` arrays;
logits as ``float32`` arrays that own the runtime's buffers (no copy).

Errors that Scribe reports (a bad folder, a prompt too long, an unknown dtype)
are raised as :class:`ScribeError`, a ``RuntimeError``, with Scribe's message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence as SequenceType, Union

import numpy as np

from . import _native
from ._native import ScribeError
from ._version import __version__
from .graph import Graph, Tensor, concatenate

__all__ = ["Graph", "Tensor", "concatenate", "Decoder", "Encoder", "Encoding", "Tokenizer", "Sequence", "Generation", "ScribeError", "cli", "train", "TrainStep",
           "TrainEval", "TrainResult", "__version__"]

PathLike = Union[str, "os.PathLike[str]"]
Ids = Union[SequenceType[int], np.ndarray]


class Tokenizer:
    """A model folder's tokenizer (``tokenizer.json``, or ``vocab.json`` and
    ``merges.txt``): byte-level BPE as GPT-2, OPT, GPT-J, Llama 3 and Mistral use,
    and SentencePiece-style BPE as Llama 2 uses, with the special tokens its
    ``tokenizer_config.json`` adds. Ids equal Hugging Face's ``tokenizers``.
    """

    def __init__(self, native: _native.Tokenizer):
        self._t = native

    @classmethod
    def from_pretrained(cls, path: PathLike) -> "Tokenizer":
        return cls(_native.Tokenizer.open(os.fspath(path)))

    def encode(self, text: str, add_special_tokens: bool = True) -> np.ndarray:
        """The token ids of ``text`` (``int32``), with the tokens the tokenizer puts
        around a text (Llama's BOS) unless ``add_special_tokens`` is False."""
        return self._t.encode(text, add_special_tokens)

    def decode(self, ids: Ids, skip_special_tokens: bool = False) -> str:
        """The text of ``ids``; bytes that do not make a whole character read as
        U+FFFD, as Hugging Face's ``decode`` gives them."""
        return self._t.decode(ids, skip_special_tokens)

    def decode_bytes(self, ids: Ids) -> bytes:
        """The bytes ``ids`` stand for, as they are: a character cut between two
        tokens stays cut, so the pieces of a stream join back into the text."""
        return self._t.decode_bytes(ids)

    @property
    def vocab_size(self) -> int:
        return self._t.vocab_size

    @property
    def eos_token_id(self) -> Optional[int]:
        return self._t.eos_token_id

    @property
    def bos_token_id(self) -> Optional[int]:
        return self._t.bos_token_id

    def token_to_id(self, token: str) -> Optional[int]:
        return self._t.token_to_id(token)


@dataclass
class Generation:
    """What :meth:`Decoder.generate` made for each prompt."""

    tokens: list  # list[np.ndarray]: the new tokens of each sequence (int32), an end token included
    texts: Optional[list]  # list[str]: the text they add to each prompt (end tokens left out); None without a tokenizer
    prompt_tokens: int  # real (unpadded) prompt tokens, all prompts together
    bucket: int  # the prefill bucket the prompts were padded to
    capacity: int  # positions of the KV cache
    prefill_seconds: float
    decode_seconds: float
    decode_steps: int  # decode graph runs; each made one token for every sequence still going
    decode_graph_seconds: float  # of decode_seconds, the graph runs; the rest is the runtime's work between them

    @property
    def decode_tokens_per_second(self) -> float:
        made = sum(len(t) for t in self.tokens) - len(self.tokens)  # the first token of each came from prefill
        return made / self.decode_seconds if self.decode_seconds > 0 else 0.0


class Sequence:
    """One sequence stepped by hand, its KV cache kept inside Scribe: ``start``
    runs a prompt, ``extend`` feeds tokens, ``rewind`` drops positions again.
    What a caller that chooses each token itself drives (speculative decoding,
    Hugging Face's ``generate()`` through an adapter)."""

    def __init__(self, decoder: "Decoder"):
        self._s = _native.Sequence(decoder._d)

    def start(self, ids: Ids, room: int = 0) -> np.ndarray:
        """Starts over with the prompt ``ids``, keeping room for ``room`` positions
        after it: the logits of its last token, ``float32[vocab]``."""
        return self._s.start(ids, room)

    def extend(self, ids: Ids) -> np.ndarray:
        """Feeds ``ids`` at the next positions: their logits, ``float32[len(ids), vocab]``."""
        return self._s.extend(ids)

    def rewind(self, length: int) -> None:
        """Keeps the first ``length`` positions; the next tokens fed replace the rest."""
        self._s.rewind(length)

    @property
    def length(self) -> int:
        return self._s.length

    @property
    def capacity(self) -> int:
        return self._s.capacity


def _prompts(inputs, tokenizer: Optional[Tokenizer]) -> tuple[list, list, bool]:
    """(token arrays, texts or None each, whether one prompt was given)."""

    def encode(text: str) -> np.ndarray:
        if tokenizer is None:
            raise ScribeError("a text prompt needs the model folder's tokenizer, and this model has none; give token ids")
        ids = tokenizer.encode(text)
        if len(ids) == 0:
            raise ScribeError(f"the prompt {text!r} encodes to no tokens; give a non-empty prompt")
        return ids

    if isinstance(inputs, str):
        return [encode(inputs)], [inputs], True
    if isinstance(inputs, np.ndarray):
        if inputs.ndim == 1:
            return [inputs], [None], True
        if inputs.ndim == 2:
            return list(inputs), [None] * len(inputs), False
        raise ValueError(f"token ids must be 1-D (one prompt) or 2-D (a batch), got {inputs.ndim} dimensions")
    items = list(inputs)
    if not items:
        raise ValueError("no prompts given")
    if all(isinstance(x, str) for x in items):
        return [encode(x) for x in items], list(items), False
    if all(isinstance(x, (int, float, np.number)) for x in items):
        return [np.asarray(items)], [None], True
    if any(isinstance(x, (str, bytes)) or not isinstance(x, Iterable) for x in items):
        raise TypeError("generate() takes a text, a list of texts, token ids, or a list of token-id sequences; "
                        f"got a list of {', '.join(sorted({type(x).__name__ for x in items}))}")
    return [x if isinstance(x, np.ndarray) else np.asarray(list(x)) for x in items], [None] * len(items), False


class Decoder:
    """A decoder (GPT-2, GPT-J, OPT, LLaMA, Mistral) loaded from a Hugging Face
    folder, a pre-sharded folder (``scribe shard``) or a compiled artifact
    (``scribe compile``), run by Scribe's CPU runtime."""

    def __init__(self, native: _native.Decoder, path: Path, tokenizer: Optional[Tokenizer]):
        self._d = native
        self.path = path
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(
        cls,
        path: PathLike,
        *,
        tp: Optional[int] = None,
        dtype: Optional[str] = None,
        buckets: Optional[Iterable[int]] = None,
        threads: int = 0,
        mmap: bool = False,
        memory_budget: int = 0,
        check_finite: bool = False,
    ) -> "Decoder":
        """Loads the model in ``path``.

        tp: tensor-parallel degree, ranks as threads of this process (default 1,
            or an artifact's own degree).
        dtype: "f32", "f16", "bf16", or "q8" / "q4" (8-bit or 4-bit weight
            blocks); default f32, or what a pre-sharded folder or artifact holds.
        buckets: the prompt lengths prefill graphs are built for (a prompt is
            padded to the smallest that holds it); default powers of two from 16
            and the model's positions.
        threads: CPU threads, shared by the ranks; 0 uses every hardware thread.
        mmap: read weights in place from the files' memory maps.
        memory_budget: bytes one rank may use for weights and KV cache (0: no limit).
        check_finite: name the first graph node that makes a NaN or an infinity (slow).
        """
        p = Path(os.fspath(path))
        native = _native.Decoder.open(
            str(p), 0 if tp is None else int(tp), dtype, None if buckets is None else [int(b) for b in buckets],
            int(threads), bool(mmap), int(memory_budget), bool(check_finite))
        tokenizer = None
        if (p / "tokenizer.json").exists() or (p / "vocab.json").exists():
            tokenizer = Tokenizer.from_pretrained(p)
            if tokenizer.vocab_size > native.vocab_size:
                raise ScribeError(
                    f"{p / 'config.json'}: vocab_size is {native.vocab_size} but the tokenizer has {tokenizer.vocab_size} "
                    "tokens; the tokenizer and the model do not belong together")
        return cls(native, p, tokenizer)

    @property
    def family(self) -> str:
        return self._d.family

    @property
    def vocab_size(self) -> int:
        return self._d.vocab_size

    @property
    def max_positions(self) -> int:
        return self._d.positions

    @property
    def eos_token_ids(self) -> list:
        """The tokens generation stops at: the model's (generation_config.json's,
        else config.json's) and the tokenizer's end token."""
        ids = list(self._d.eos_token_ids)
        return ids if self.tokenizer is None else list(self.tokenizer._t.end_tokens(ids))

    def generate(
        self,
        inputs: Union[str, SequenceType[str], Ids, SequenceType[Ids]],
        max_new_tokens: int = 32,
        *,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 1.0,
        seed: int = 0,
        eos: Optional[Iterable[int]] = None,
        stop_at_eos: bool = True,
        stream: Optional[Callable[[int, int], Optional[bool]]] = None,
    ) -> Generation:
        """Generates up to ``max_new_tokens`` for each prompt.

        inputs: a text, a list of texts, token ids (a list or a 1-D array), or a
            batch of them (a list of id sequences of any lengths, or a 2-D array).
        do_sample: False chooses the most likely token (greedy); True samples
            with ``temperature``, ``top_k`` (0: all) and ``top_p``, from ``seed``
            (the same seed gives the same tokens).
        eos: the tokens a sequence ends at (default :attr:`eos_token_ids`);
            stop_at_eos False generates ``max_new_tokens`` regardless.
        stream: called as ``stream(sequence, token)`` as each token is chosen;
            returning False stops generation for every sequence.
        """
        prompts, texts, _ = _prompts(inputs, self.tokenizer)
        if do_sample and not temperature > 0:
            raise ValueError(f"do_sample=True needs a temperature above 0, not {temperature}")
        vocab_limit = self.tokenizer.vocab_size if self.tokenizer is not None else 0
        tokens, stats = self._d.generate(
            prompts, int(max_new_tokens), float(temperature) if do_sample else 0.0, int(top_k), float(top_p), int(seed),
            list(self.eos_token_ids if eos is None else eos), bool(stop_at_eos), vocab_limit, stream)
        ends = set(self.eos_token_ids if eos is None else eos)
        made_texts = None
        if self.tokenizer is not None:
            made_texts = [self._continuation(p, t, ends) for p, t in zip(prompts, tokens)]
        return Generation(tokens=tokens, texts=made_texts, **stats)

    def _continuation(self, prompt, made, ends) -> str:
        # The text the new tokens (less end tokens) add to the prompt's, as
        # `scribe generate` prints it (io::tokenizer::continuation).
        return self.tokenizer._t.continuation(prompt, [int(t) for t in made if int(t) not in ends])

    def logits(self, ids: Ids) -> np.ndarray:
        """The logits of every position of one prompt, ``float32[len(ids), vocab]``."""
        return self._d.logits(ids)

    def sequence(self) -> Sequence:
        """A new :class:`Sequence` of this model (its own KV cache)."""
        return Sequence(self)

    def inspect(self) -> dict:
        """What was loaded: family, summary, config, degree, dtype, buckets, bytes
        of weights, and what a compiled artifact was compiled for."""
        d = self._d.describe()
        with open(self.path / "config.json", encoding="utf-8") as f:
            d["config"] = json.load(f)
        return d

    def export_hlo(
        self,
        out: PathLike,
        *,
        buckets: Optional[Iterable[int]] = None,
        tp: Optional[int] = None,
        dtype: Optional[str] = None,
        batch: int = 1,
        capacity: Optional[int] = None,
        speculate: Optional[int] = None,
        all_logits: bool = False,
    ) -> dict:
        """Writes this model's prefill (one per bucket) and decode graphs as XLA HLO
        into ``out``, as ``scribe export-hlo`` does: text, ``HloModuleProto`` and
        ``manifest.json``. Returns the manifest. ``tp`` and ``dtype`` default to
        the loaded model's; ``buckets`` to [128] (or the model's positions)."""
        info = self._d.describe()
        args = ["export-hlo", str(self.path), "--out", os.fspath(out), "--tp", str(info["tp"] if tp is None else tp),
                "--dtype", info["dtype"] if dtype is None else dtype, "--batch", str(batch)]
        if buckets is not None:
            args += ["--buckets", ",".join(str(int(b)) for b in buckets)]
        if capacity is not None:
            args += ["--capacity", str(capacity)]
        if speculate is not None:
            args += ["--speculate", str(speculate)]
        if all_logits:
            args.append("--all-logits")
        _run(args)
        with open(Path(os.fspath(out)) / "manifest.json", encoding="utf-8") as f:
            return json.load(f)


@dataclass
class Encoding:
    """What :meth:`Encoder.encode` made of each input (row ``i`` is input ``i``)."""

    mean: np.ndarray  # float32[n, hidden]: the last hidden state averaged over the input's tokens
    first: np.ndarray  # float32[n, hidden]: the last hidden state of the first token ([CLS], <s>)
    logits: Optional[np.ndarray]  # float32[n, labels] of a classifier; None for a model without one
    scores: Optional[np.ndarray]  # float64[n, labels]: the logits as problem_type reads them (softmax, sigmoid, or as they are)
    buckets: np.ndarray  # int64[n]: the positions each input was padded to
    labels: list  # the classifier's labels (id2label), by id


class Encoder:
    """An encoder (BERT, RoBERTa, DistilBERT) loaded from a Hugging Face folder of
    a ``*Model``, ``*ForSequenceClassification`` or sentence-embedding checkpoint,
    with its tokenizer (WordPiece, or RoBERTa's byte-level BPE) and automatic
    buckets: an input of any length is padded to the smallest bucket that holds it."""

    def __init__(self, native: _native.Encoder, path: Path):
        self._e = native
        self.path = path

    @classmethod
    def from_pretrained(cls, path: PathLike, *, tp: Optional[int] = None, dtype: Optional[str] = None,
                        buckets: Optional[Iterable[int]] = None, threads: int = 0, mmap: bool = False) -> "Encoder":
        """Loads the encoder in ``path``; the options are ``scribe classify``'s
        flags (``dtype``: f32, f16 or bf16; ``buckets``: default 128 and 512, or
        the model's positions)."""
        p = Path(os.fspath(path))
        native = _native.Encoder.open(str(p), 0 if tp is None else int(tp), dtype,
                                      None if buckets is None else [int(b) for b in buckets], int(threads), bool(mmap))
        return cls(native, p)

    @property
    def labels(self) -> list:
        return list(self._e.labels)

    @property
    def hidden_size(self) -> int:
        return self._e.hidden_size

    def encode(self, texts: Union[str, SequenceType[str]], pairs: Union[None, str, SequenceType[str]] = None, *,
               truncate: bool = False) -> Encoding:
        """Runs each text (with its pair, as ``[CLS] A [SEP] B [SEP]``). An input
        longer than the model's positions is refused, or with ``truncate`` cut as
        the tokenizer's truncation cuts it."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if pairs is not None:
            pairs = [pairs] if isinstance(pairs, str) else list(pairs)
        mean, first, logits, scores, buckets = self._e.encode(texts, pairs, bool(truncate))
        return Encoding(mean=mean, first=first, logits=logits, scores=scores, buckets=buckets, labels=self.labels)

    def classify(self, texts: Union[str, SequenceType[str]], pairs: Union[None, str, SequenceType[str]] = None, *,
                 truncate: bool = False) -> list:
        """Each input's most likely label and every label's score, as
        ``{"label": ..., "scores": {label: score}}`` (scribe classify --json's)."""
        if not self._e.has_classifier:
            raise ScribeError(f"{self.path / 'config.json'}: the model has no classifier; classify needs a "
                              "*ForSequenceClassification checkpoint (embed runs the others)")
        out = self.encode(texts, pairs, truncate=truncate)
        result = []
        for row in out.scores:
            best = int(np.argmax(row))  # the first of equal maxima, as the program orders them
            result.append({"label": out.labels[best], "scores": {l: float(s) for l, s in zip(out.labels, row)}})
        return result

    def embed(self, texts: Union[str, SequenceType[str]], *, pooling: Optional[str] = None, normalize: bool = False,
              truncate: bool = False) -> np.ndarray:
        """Sentence vectors, ``float32[n, hidden]``: the tokens' mean or the first
        token's state (``pooling``: default the folder's 1_Pooling/config.json's,
        else mean), scaled to unit length with ``normalize``."""
        pooling = self._e.pooling if pooling is None else pooling
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling takes 'mean' or 'cls', not {pooling!r}")
        out = self.encode(texts, truncate=truncate)
        v = out.mean if pooling == "mean" else out.first
        if normalize:
            v = v / np.maximum(np.linalg.norm(v.astype(np.float64), axis=1, keepdims=True), 1e-12).astype(np.float32)
        return v

    def export_hlo(self, out: PathLike, *, buckets: Optional[Iterable[int]] = None, tp: Optional[int] = None,
                   dtype: Optional[str] = None, batch: int = 1) -> dict:
        """Writes one module per bucket as XLA HLO into ``out``, as ``scribe
        export-hlo`` does for an encoder (text, ``HloModuleProto``,
        ``manifest.json``); returns the manifest. ``tp``, ``dtype`` and
        ``buckets`` default to the loaded model's."""
        info = self._e.describe()
        args = ["export-hlo", str(self.path), "--out", os.fspath(out), "--tp", str(info["tp"] if tp is None else tp),
                "--dtype", info["dtype"] if dtype is None else dtype, "--batch", str(batch),
                "--buckets", ",".join(str(int(b)) for b in (info["buckets"] if buckets is None else buckets))]
        _run(args)
        with open(Path(os.fspath(out)) / "manifest.json", encoding="utf-8") as f:
            return json.load(f)

    def inspect(self) -> dict:
        """What was loaded: family, summary, config, degree, dtype, buckets, labels, pooling."""
        d = self._e.describe()
        with open(self.path / "config.json", encoding="utf-8") as f:
            d["config"] = json.load(f)
        return d


@dataclass
class TrainStep:
    """One step of a :func:`train` run, as its progress line shows it."""

    step: int  # 1, 2, ... (counted from the run's start, a resumed run's too)
    total: int  # the run's steps
    epoch: int
    loss: float  # the step's mean cross-entropy (f32 arithmetic's, whatever the precision)
    grad_norm: float  # before clipping
    lr: float
    tokens_per_s: float  # this step's
    seconds: float  # since the run started
    eta: float  # seconds left, at the recent pace


@dataclass
class TrainEval:
    """A validation of a :func:`train` run (every ``eval_every`` steps, and at the end)."""

    step: int
    loss: float
    perplexity: float


@dataclass
class TrainResult:
    """What a :func:`train` run did: where it ended, its last losses and checkpoint."""

    step: int
    total: int
    train_loss: float
    val_loss: float  # NaN when the run stopped before validating
    checkpoint: str  # the last checkpoint-<step> folder written ("" for none)
    seconds: float
    stopped_by: Union[None, str, int]  # None (it ran to the end), "caller" (callback returned False), or a signal
    out: Path  # the run's folder: model.safetensors, log.jsonl, loss.svg, checkpoints
    steps: list = field(default_factory=list)  # every TrainStep, in order
    evals: list = field(default_factory=list)  # every TrainEval, in order


def train(model: Optional[PathLike] = None, *, data: Union[PathLike, Iterable[PathLike]], out: PathLike,
          callback: Optional[Callable[[TrainStep], Optional[bool]]] = None,
          on_eval: Optional[Callable[[TrainEval], None]] = None, **options) -> TrainResult:
    """Trains a decoder as ``scribe train`` does, in this process (its ranks as
    threads), reporting each step to ``callback``.

    model: a Hugging Face decoder folder to start from (or give ``config`` and
        ``tokenizer`` for a new model, or ``resume``).
    data: a text file or several to train on; out: the run's folder.
    callback: called with a :class:`TrainStep` after every step; returning False
        (or raising) stops the run after that step, with a checkpoint.
    on_eval: called with a :class:`TrainEval` after each validation.
    options: ``scribe train``'s flags, named with underscores (``steps=200``,
        ``lr=3e-4``, ``batch=8``, ``seq=128``, ``precision="bf16-sr"``,
        ``dp=2``, ``eval_every=50``, ``quiet=True``; a flag without a value
        is ``True``; ``scribe train --help`` lists them all).

    Ctrl-C stops the run after its step, saves a checkpoint and raises
    KeyboardInterrupt; ``resume=out`` continues it.
    """
    words = [] if model is None else [os.fspath(model)]
    files = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not files:
        raise ValueError("train needs data: a text file or several")
    for f in files:
        words += ["--data", os.fspath(f)]
    words += ["--out", os.fspath(out)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif value is not False and value is not None:
            words += [flag, str(value)]
    steps, evals = [], []

    def step(d):
        s = TrainStep(**d)
        steps.append(s)
        return None if callback is None else callback(s)

    def validated(d):
        e = TrainEval(**d)
        evals.append(e)
        if on_eval is not None:
            on_eval(e)

    rc, r = _native.train(words, step, validated)
    if rc != 0 and not r:
        raise ScribeError(f"scribe train exited with status {rc}")
    if not r:  # --help: the usage was printed, nothing ran
        return None
    if r["stopped_by"] not in (None, "caller"):
        raise KeyboardInterrupt(f"training stopped by signal {r['stopped_by']} at step {r['step']} of {r['total']}; "
                                f"saved {r['checkpoint']}: continue with train(..., resume={r['checkpoint']!r})")
    return TrainResult(out=Path(os.fspath(out)), steps=steps, evals=evals, **r)


def _run(args: list) -> None:
    rc = _native.run_command([str(a) for a in args])
    if rc != 0:
        raise ScribeError(f"scribe {args[0]} exited with status {rc}")


def cli(args: SequenceType[str]) -> int:
    """Runs one of the ``scribe`` program's commands in this process, as
    ``scribe ARGS...`` would (``cli(["inspect", "models/demo-gpt2"])``), its
    tensor-parallel ranks as threads. Returns its exit status (0: done;
    2: a usage error); an error it reports is raised as :class:`ScribeError`."""
    return _native.run_command([str(a) for a in args])
