"""Hugging Face's ``generate()`` driving a Scribe decoder.

:class:`HuggingFaceGenerationModelAdapter` is a model that ``transformers``
accepts: its forward takes ``input_ids`` and ``attention_mask`` and returns
logits, and its cache (``past_key_values``, named ``cache`` in newer
``transformers``) is a :class:`ScribeCache`, the KV caches that Scribe's runtime
keeps: the rows stepped together as one batch while they move one token a step
together, else one :class:`scribe.Sequence` per row. Everything ``generate()`` adds
(logits processors, stopping criteria, streamers, beam search, padding) works
as it does for a PyTorch model::

    import scribe
    from scribe.hf import HuggingFaceGenerationModelAdapter
    from transformers import AutoTokenizer

    lm = scribe.Decoder.from_pretrained("models/demo-gpt2")
    model = HuggingFaceGenerationModelAdapter(lm)
    tok = AutoTokenizer.from_pretrained("models/demo-gpt2")
    inputs = tok(["In the beginning"], return_tensors="pt")
    out = model.generate(**inputs, do_sample=True, temperature=0.7, max_new_tokens=20)

Rows are sequences of their own: a row's tokens are the ones its attention mask
keeps, at positions 0, 1, ..., so a batch padded on the left generates for each
row what the row generates alone.

Sampling (``do_sample=True``) draws with Scribe's sampler, seeded by
``generate``'s extra argument ``seed`` (default 0), from ``temperature``,
``top_k`` and ``top_p`` applied to the scores the other logits processors
leave: the tokens are those :meth:`scribe.Decoder.generate` draws with the same
seed. ``sampler="torch"`` leaves the draw to ``transformers`` (and
``torch.manual_seed``).

This module needs ``torch`` and ``transformers``; ``import scribe`` does not.
"""

from __future__ import annotations

import copy
import os
from typing import Optional

import numpy as np
import torch
from transformers import AutoConfig, GenerationConfig, GenerationMixin, LogitsProcessor, LogitsProcessorList, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from . import Decoder, ScribeError, Sequence, _native

__all__ = ["HuggingFaceGenerationModelAdapter", "ScribeCache"]

# What transformers calls the cache in a model's inputs and outputs: `cache` from
# 5.x on, `past_key_values` before (an output holds whichever its class has).
_CACHE_FIELDS = tuple(f for f in ("cache", "past_key_values") if f in CausalLMOutputWithPast.__dataclass_fields__)


# transformers' own defaults for what a generation config leaves unset.
_GENERATION_DEFAULTS = {"temperature": 1.0, "top_k": 50, "top_p": 1.0, "max_length": 20}


def _default(value, name: str):
    return _GENERATION_DEFAULTS[name] if value is None else value


class _Row:
    """One row's sequence in Scribe and what its KV cache holds: the first
    ``count`` tokens of the list ``fed`` (at positions 0 ..). ``fed`` is the
    row's token list itself while the row keeps up with it (a forward only
    appends to it), so that a step costs no comparison of the whole row."""

    def __init__(self, decoder: Decoder):
        self.seq = decoder.sequence()
        self.fed: list = []
        self.count = 0


class ScribeCache:
    """The KV caches of a batch, kept inside Scribe: for each row, the tokens the
    row holds (those its attention mask kept) and a :class:`scribe.Sequence`
    whose cache holds them. ``columns`` counts the columns of ``input_ids`` that
    went in, padding included (``get_seq_length()``, as ``transformers`` asks a
    cache)."""

    def __init__(self, decoder: Decoder, batch: int, room: int = 0):
        self.decoder = decoder
        self.room = int(room)  # positions a row's cache keeps beyond its prompt
        self.columns = 0
        self.tokens: list = [[] for _ in range(batch)]  # each row's tokens (what the rows should hold)
        self._rows = [_Row(decoder) for _ in range(batch)]
        # While every row moves one token a step together (generate()'s loop), the
        # rows are one batch in Scribe (batch_sequence): its decode graph runs
        # them at once. `_held` counts each row's tokens it holds; None: the rows
        # are stepped one by one (after a reorder, or a forward of other shape).
        self._batch: Optional[_native.BatchSequence] = None
        self._held: Optional[list] = None

    @property
    def batch(self) -> int:
        return len(self.tokens)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.columns

    def __len__(self) -> int:
        return self.columns

    def reorder_cache(self, beam_idx) -> None:
        """Rows chosen again (beam search): row ``j`` becomes row ``beam_idx[j]``.
        A row chosen twice gets a fresh sequence that the next forward fills."""
        order = [int(i) for i in (beam_idx.tolist() if hasattr(beam_idx, "tolist") else beam_idx)]
        if len(order) != self.batch or any(not 0 <= i < self.batch for i in order):
            raise ValueError(f"reorder_cache: {order} is not a choice of rows of a batch of {self.batch}")
        self._leave_batch()
        used = set()
        rows = []
        for i in order:
            rows.append(self._rows[i] if i not in used else _Row(self.decoder))
            used.add(i)
        self._rows = rows
        self.tokens = [list(self.tokens[i]) for i in order]

    def _feed_batch(self) -> Optional[np.ndarray]:
        """Brings every row to hold self.tokens as one batch when it can: the
        first forward of a batch, then one new token a row; the last logits of
        each row, [batch, vocab]. None where the rows go one by one."""
        if self._batch is None and self._held is None and self.batch > 1 and all(r.count == 0 for r in self._rows):
            batch = _native.BatchSequence(self.decoder._d)
            try:
                logits = batch.start(self.tokens, self.room)
            except ScribeError:  # more rows than one batch takes: row by row, which says what else is wrong
                self._held = []
                return None
            self._batch, self._held = batch, [len(t) for t in self.tokens]
            return logits
        if self._batch is None:
            return None
        if all(len(t) == n + 1 for t, n in zip(self.tokens, self._held)) and max(self._held) < self._batch.capacity:
            logits = self._batch.step([t[-1] for t in self.tokens])
            self._held = [n + 1 for n in self._held]
            return logits
        self._leave_batch()
        return None

    def _leave_batch(self) -> None:
        # The rows go one by one from here; each starts again from its tokens.
        self._batch = None
        self._held = [] if self._held is not None else None

    def _feed(self, b: int, all_logits: bool) -> np.ndarray:
        """Brings row b's sequence to hold self.tokens[b]; returns the logits of
        its last token ([1, vocab]), or with all_logits of every token."""
        want = self.tokens[b]
        row = self._rows[b]
        n = len(want)
        if all_logits:
            # Every position's logits: the whole row runs once more (the cache is
            # filled too, for the calls that follow).
            logits = self.decoder.logits(want)
            self._start(row, want)
            return logits
        if row.fed is want:
            same = row.count  # the row's list has only grown since
        else:  # the rows were reordered (beam search), or the row is new
            same = 0
            for a, w in zip(row.fed[: row.count], want):
                if a != w:
                    break
                same += 1
        keep = min(same, n - 1)  # at least the last token is fed, for its logits
        if keep < 1 or n > row.seq.capacity:
            return self._start(row, want)[None, :]
        if keep < row.seq.length:
            row.seq.rewind(keep)
        logits = row.seq.extend(want[keep:])
        row.fed, row.count = want, n
        return logits[-1:]

    def _start(self, row: _Row, want: list) -> np.ndarray:
        # The row's room: what was asked for, and at least what it holds beyond
        # its prompt already (a cache that filled up starts over with twice the room).
        room = self.room
        if row.count and len(want) > row.seq.capacity:
            room = max(room, 2 * (len(want) - row.count), 64)
            self.room = room
        logits = row.seq.start(want, room)
        row.fed, row.count = want, len(want)
        return logits


class _ScribeSampling(LogitsProcessor):
    """Scribe's sampler as generate()'s last logits processor: it draws each
    unfinished row's token (in row order, as Scribe's generate does) from the
    scores the other processors left and gives that token all the mass, so the
    draw transformers then makes is this one."""

    def __init__(self, sampler: _native.Sampler, eos: set, limit: int):
        self.sampler = sampler
        self.eos = eos
        self.limit = limit
        self.prompt_columns: Optional[int] = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_columns is None:
            self.prompt_columns = input_ids.shape[1]
        made = input_ids[:, self.prompt_columns:].tolist()
        rows = scores.detach().to(torch.float32).cpu().numpy()
        out = torch.full_like(scores, float("-inf"))
        for b in range(rows.shape[0]):
            if any(t in self.eos for t in made[b]):
                t = int(np.argmax(rows[b]))  # finished: transformers pads it, and Scribe draws nothing for it
            else:
                t = self.sampler.choose(rows[b, : self.limit])
            out[b, t] = 0.0
        return out


class HuggingFaceGenerationModelAdapter(PreTrainedModel, GenerationMixin):
    """A Scribe :class:`scribe.Decoder` as a ``transformers`` causal language
    model that ``generate()`` drives (the name is transformers-neuronx's, whose
    adapter does the same for Neuron models).

    decoder: the loaded model. config: its ``transformers`` config (default:
    the folder's ``config.json``, read by ``AutoConfig``); the generation
    defaults come from the folder's ``generation_config.json`` when it has one.
    """

    main_input_name = "input_ids"
    _supports_cache_class = True

    def __init__(self, decoder: Decoder, config=None):
        if not isinstance(decoder, Decoder):
            raise TypeError(f"HuggingFaceGenerationModelAdapter takes a scribe.Decoder, not {type(decoder).__name__}")
        if config is None:
            config = AutoConfig.from_pretrained(os.fspath(decoder.path))
        super().__init__(config)
        self.decoder = decoder
        try:
            self.generation_config = GenerationConfig.from_pretrained(os.fspath(decoder.path))
        except OSError:  # no generation_config.json: the model config's defaults
            self.generation_config = GenerationConfig.from_model_config(config)
        self._room = 0

    # A model with no parameters: on the CPU, its logits f32.
    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @classmethod
    def can_generate(cls) -> bool:
        return True

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the cache is Scribe's (ScribeCache), made by the first forward

    def get_input_embeddings(self):
        return None

    def generate(self, inputs=None, generation_config=None, logits_processor=None, *, seed: int = 0,
                 sampler: str = "scribe", **kwargs):
        """``transformers``' ``generate()``, with two arguments of Scribe's:
        ``seed`` for Scribe's sampler and ``sampler`` (``"scribe"`` or ``"torch"``)."""
        if sampler not in ("scribe", "torch"):
            raise ValueError(f"sampler takes 'scribe' or 'torch', not {sampler!r}")
        gc = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        model_kwargs = gc.update(**kwargs)
        ids = inputs if inputs is not None else model_kwargs.get("input_ids")
        prompt_columns = int(ids.shape[-1]) if ids is not None and hasattr(ids, "shape") else 0
        # Room in each row's cache for what will be generated, as Scribe's generate keeps.
        if gc.max_new_tokens is not None:
            self._room = int(gc.max_new_tokens)
        else:
            self._room = max(int(_default(gc.max_length, "max_length")) - prompt_columns, 0)
        processors = LogitsProcessorList(logits_processor or [])
        if gc.do_sample and sampler == "scribe":
            if gc.num_beams is not None and gc.num_beams > 1:
                raise ValueError("sampler='scribe' draws for each row alone; beam sampling (num_beams > 1) needs sampler='torch'")
            temperature = _default(gc.temperature, "temperature")
            if not temperature > 0:
                raise ValueError(f"do_sample=True needs a temperature above 0, not {temperature}")
            top_k = int(_default(gc.top_k, "top_k"))
            top_p = _default(gc.top_p, "top_p")
            eos = gc.eos_token_id
            eos = set() if eos is None else {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}
            limit = self.decoder.tokenizer.vocab_size if self.decoder.tokenizer is not None else self.decoder.vocab_size
            processors.append(_ScribeSampling(_native.Sampler(temperature, top_k, top_p, int(seed)), eos, limit))
            gc.temperature, gc.top_k, gc.top_p = 1.0, 0, 1.0  # transformers' warpers stand aside
        # torch's work in the loop is bookkeeping on [batch, vocab] rows: one thread
        # does it, and no pool of torch workers spins on the cores Scribe's threads run on.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return super().generate(inputs, generation_config=gc, logits_processor=processors, **model_kwargs)
        finally:
            torch.set_num_threads(threads)
            self._room = 0

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        # The columns the cache has not seen, the whole mask, and the cache.
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if cache is not None:
            input_ids = input_ids[:, cache.columns:]
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "logits_to_keep": 1,
                  "use_cache": kwargs.get("use_cache", True)}
        if cache is not None:
            inputs[_CACHE_FIELDS[0]] = cache
        return inputs

    def forward(self, input_ids=None, attention_mask=None, cache=None, past_key_values=None, use_cache=None,
                logits_to_keep: int = 0, labels=None, inputs_embeds=None, return_dict=None, **kwargs):
        """Logits ``[batch, columns, vocab]`` (``logits_to_keep=1``: the last
        column's only) of ``input_ids``: the whole rows, or with a cache the
        columns after those it holds. Columns the attention mask leaves out
        (padding) get zeros. ``labels`` gives the mean cross-entropy of the
        next tokens as ``loss`` (-100: ignored), as transformers' models do."""
        if inputs_embeds is not None:
            raise ValueError("HuggingFaceGenerationModelAdapter runs token ids: pass input_ids, not inputs_embeds")
        if input_ids is None:
            raise ValueError("HuggingFaceGenerationModelAdapter: forward needs input_ids")
        cache = cache if cache is not None else past_key_values
        ids = input_ids.detach().cpu().numpy() if isinstance(input_ids, torch.Tensor) else np.asarray(input_ids)
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, columns], got {ids.ndim} dimensions")
        batch, columns = ids.shape
        seen = cache.columns if cache is not None else 0
        if attention_mask is None:
            mask = np.ones((batch, seen + columns), dtype=np.int64)
        else:
            mask = attention_mask.detach().cpu().numpy() if isinstance(attention_mask, torch.Tensor) else np.asarray(attention_mask)
        if mask.shape != (batch, seen + columns):
            raise ValueError(f"attention_mask is {list(mask.shape)}; with {columns} new columns of input_ids after the "
                             f"{seen} the cache holds it must be [{batch}, {seen + columns}]")
        if cache is None:
            cache = ScribeCache(self.decoder, batch, self._room)
        elif cache.batch != batch:
            raise ValueError(f"the cache holds {cache.batch} rows but input_ids has {batch}")
        want_all = labels is not None or logits_to_keep != 1
        new_mask = mask[:, seen:] != 0
        for b in range(batch):
            cache.tokens[b].extend(int(t) for t in ids[b][new_mask[b]])
            if not cache.tokens[b]:
                raise ValueError(f"row {b} has no tokens: its attention_mask is 0 in every column")
        cache.columns = seen + columns
        if seen == 0 and cache.room > 0:
            # What generate() will ask of the rows, refused before anything runs
            # as Scribe's generate refuses it (too long for the model's positions).
            self.decoder._d.check_prompts(cache.tokens, cache.room)

        vocab = self.decoder.vocab_size
        if not want_all:
            # Each row's last logits: Scribe's own buffer (no copy), for the batch
            # stepped together or for one row.
            together = cache._feed_batch()
            if together is not None:
                out = torch.from_numpy(together)[:, None, :]
            else:
                last = [cache._feed(b, False) for b in range(batch)]
                out = torch.from_numpy(last[0] if batch == 1 else np.concatenate(last))[:, None, :]
        else:
            cache._leave_batch()
            out = torch.zeros((batch, columns, vocab), dtype=torch.float32)
            for b in range(batch):
                logits = torch.from_numpy(cache._feed(b, True))
                kept = np.flatnonzero(new_mask[b])
                # The last len(kept) rows of the row's logits are the new columns it keeps.
                out[b, torch.from_numpy(kept)] = logits[logits.shape[0] - len(kept):]
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(out[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1).to(torch.long),
                                                     ignore_index=-100)
        result = {"loss": loss, "logits": out}
        if use_cache is not False:
            for f in _CACHE_FIELDS:
                result[f] = cache
        return CausalLMOutputWithPast(**result)
