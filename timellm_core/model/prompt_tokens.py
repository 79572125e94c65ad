"""Prompt tokenisation: the shared prefix once, all per-series parts in one batched call.

The two parts of a prompt are tokenised separately in every path (optimised or not), so both
paths feed the LLM the same ids. The boundary between them is placed, per tokenizer, where
tokenising the parts separately gives the same ids as tokenising the whole prompt (byte-level BPE
keeps the space with the following word, " min"; SentencePiece-style tokenizers may want the
space at the end of the prefix); ``boundary_is_exact`` reports whether that was achieved.

Special tokens are added once for the whole prompt, as the tokenizer would for one sequence:
the leading ones (BOS, BERT's [CLS]) to the prefix, the trailing ones (BERT's [SEP]) to each
series part. Series parts are left-padded to a common length; the mask marks the padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from timellm_core.model.prompt import PromptParts

_PROBE = ("<|start_prompt|>Dataset description: A probe.Task description: forecast the next 96 steps "
          "given the previous 512 steps information; Input statistics:")
_PROBE_PART = (" min value -1.2345678806304932, max value 2.0, median value 0.015625, the trend of input "
               "is upward, top 5 lags are : [0, 24, 488, 23, 489]<|<end_prompt>|>")


@dataclass
class PromptTokens:
    """Token ids of B*N prompts in the LLM's layout: [prefix][left padding][series part]."""

    prefix_ids: torch.Tensor  # (Lp,) int64, leading special tokens included
    series_ids: torch.Tensor  # (B*N, Ls) int64, left-padded, trailing special tokens included
    series_mask: torch.Tensor  # (B*N, Ls) int64: 1 for a token, 0 for padding

    def per_series(self) -> list[list[int]]:
        """The full prompt ids of each series, without padding."""
        prefix = self.prefix_ids.tolist()
        return [prefix + [token for token, keep in zip(ids, mask) if keep]
                for ids, mask in zip(self.series_ids.tolist(), self.series_mask.tolist())]


class PromptTokenizer:
    """Turns ``PromptParts`` into ``PromptTokens`` with one backbone's tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.leading_special, self.trailing_special = _special_tokens(tokenizer)
        self.pad_id = _pad_id(tokenizer)
        self.space_in_prefix = False
        self.boundary_is_exact = self._split_matches_whole(_PROBE, [_PROBE_PART])
        if not self.boundary_is_exact:
            self.space_in_prefix = True
            if not self._split_matches_whole(_PROBE, [_PROBE_PART]):
                self.space_in_prefix = False  # neither matches: keep the space with the statistics
        self._prefix_memo: tuple[str, list[int]] | None = None

    def tokenize(self, parts: PromptParts, batched: bool = True) -> PromptTokens:
        """Token ids for all series; ``batched=False`` tokenises one series at a time (the reference's loop)."""
        prefix, series_parts = self._split(parts.prefix, parts.series_parts)
        if batched:
            prefix_ids = self._prefix_ids(prefix)
            series = self._encode(series_parts) if series_parts else []
        else:
            prefix_ids = self.leading_special + self._encode([prefix])[0]
            series = [self._encode([part])[0] for part in series_parts]
        series = [ids + self.trailing_special for ids in series]
        width = max((len(ids) for ids in series), default=0)
        series_ids = torch.full((len(series), width), self.pad_id, dtype=torch.long)  # (B*N, Ls)
        series_mask = torch.zeros((len(series), width), dtype=torch.long)  # (B*N, Ls)
        for row, ids in enumerate(series):
            if ids:
                series_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
                series_mask[row, width - len(ids):] = 1
        return PromptTokens(prefix_ids=torch.tensor(prefix_ids, dtype=torch.long),
                            series_ids=series_ids, series_mask=series_mask)

    def ids_with_spans(self, prefix: str, series_part: str) -> tuple[list[int], list[tuple[int, int] | None]]:
        """One prompt's ids, as ``tokenize`` gives them, and each token's characters in ``prefix + series_part``.

        A span is (start, end) in the whole prompt's text; None for a special token the tokenizer
        adds. The character offsets need a fast (Rust) tokenizer, which every catalogue backbone has.
        """
        prefix_text, (part,) = self._split(prefix, [series_part])
        ids: list[int] = list(self.leading_special)
        spans: list[tuple[int, int] | None] = [None] * len(self.leading_special)
        for text, shift in ((prefix_text, 0), (part, len(prefix_text))):
            encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids += encoded["input_ids"]
            spans += [(start + shift, end + shift) for start, end in encoded["offset_mapping"]]
        return ids + self.trailing_special, spans + [None] * len(self.trailing_special)

    def whole_prompt_ids(self, prompt: str) -> list[int]:
        """The ids of a whole prompt tokenised in one piece, as the reference does."""
        return self.tokenizer(prompt, add_special_tokens=True)["input_ids"]

    def _split_matches_whole(self, prefix: str, series_parts: list[str]) -> bool:
        prefix_text, parts = self._split(prefix, series_parts)
        split = self.leading_special + self._encode([prefix_text])[0] + self._encode(parts)[0] + self.trailing_special
        return split == self.whole_prompt_ids(prefix + series_parts[0])

    def _split(self, prefix: str, series_parts: list[str]) -> tuple[str, list[str]]:
        if self.space_in_prefix and all(part.startswith(" ") for part in series_parts):
            return prefix + " ", [part[1:] for part in series_parts]
        return prefix, list(series_parts)

    def _prefix_ids(self, prefix: str) -> list[int]:
        if self._prefix_memo is None or self._prefix_memo[0] != prefix:
            self._prefix_memo = (prefix, self.leading_special + self._encode([prefix])[0])
        return self._prefix_memo[1]

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer adds before and after one sequence (e.g. [BOS] / [CLS] ... [SEP])."""
    plain = tokenizer("value", add_special_tokens=False)["input_ids"]
    full = tokenizer("value", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain):])
    return [], []


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0
