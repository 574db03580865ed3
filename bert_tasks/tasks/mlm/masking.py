"""Dynamic masking for masked-LM training: pads a batch and picks the tokens to predict.

Each chosen token becomes [MASK] 80% of the time, a random ordinary token 10%
and stays itself 10%; special tokens and padding are never chosen. Training
masks come fresh from a seeded ``torch.Generator`` on every call. Evaluation
(``deterministic=True``) seeds each sample from its own tokens, so a sample
gets the same mask whatever batch, position or padding it comes with.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Mapping, Sequence

import torch

IGNORE_INDEX = -100


class MaskingCollator:
    """Callable on a list of features (from :func:`~bert_tasks.tasks.mlm.corpus.tokenize_and_pack`) -> dict of tensors.

    Output: ``input_ids`` (corrupted), ``attention_mask``, ``token_type_ids``,
    ``labels`` (original id where predicted, -100 elsewhere) and
    ``prediction_mask`` (bool, True where predicted). Every batch predicts at
    least one token; in deterministic mode every sample does, so that the
    guarantee does not depend on how samples are grouped.
    """

    def __init__(
        self,
        tokenizer,
        *,
        mlm_probability: float = 0.15,
        whole_word_masking: bool = False,
        seed: int | None = None,
        deterministic: bool = False,
        pad_to_multiple_of: int | None = 8,
        max_length: int | None = None,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
    ):
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
            raise ValueError("mask_replace_prob and random_replace_prob must be non-negative and sum to at most 1")
        if tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token")
        self.mlm_probability = mlm_probability
        self.whole_word_masking = whole_word_masking
        self.deterministic = deterministic
        self.pad_to_multiple_of = pad_to_multiple_of
        self.max_length = max_length
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.mask_token_id = tokenizer.mask_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.replacement_ids = torch.tensor(sorted(set(range(len(tokenizer))) - set(tokenizer.all_special_ids)), dtype=torch.long)
        self.seed = int.from_bytes(os.urandom(8), "little") >> 1 if seed is None else seed
        self.generator = torch.Generator().manual_seed(self.seed)
        self._worker_seed: int | None = None

    # ------------------------------------------------------------ resumable state

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.seed = state["seed"]
        self.generator.set_state(state["generator"])

    # ------------------------------------------------------------ collation

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self._pad(features)
        if self.deterministic:
            selected = torch.zeros_like(batch["maskable"])
            corrupted = batch["input_ids"].clone()
            for row, feature in enumerate(features):
                # the sample alone, unpadded: its mask cannot depend on its neighbours or the batch width
                sample = (slice(row, row + 1), slice(0, len(feature["input_ids"])))
                generator = torch.Generator().manual_seed(self._sample_seed(feature["input_ids"]))
                selected[sample], corrupted[sample] = self._mask(
                    batch["input_ids"][sample], batch["maskable"][sample], batch["word_starts"][sample], generator
                )
        else:
            selected, corrupted = self._mask(batch["input_ids"], batch["maskable"], batch["word_starts"], self._training_generator())
        return {
            "input_ids": corrupted,
            "attention_mask": batch["attention_mask"],
            "token_type_ids": batch["token_type_ids"],
            "labels": torch.where(selected, batch["input_ids"], IGNORE_INDEX),
            "prediction_mask": selected,
        }

    def _pad(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        lengths = [len(f["input_ids"]) for f in features]
        longest = max(lengths)
        width = longest
        if self.pad_to_multiple_of:
            width = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
            if self.max_length is not None:
                width = max(longest, min(width, self.max_length))

        def column(name: str, fill: int, default: int | None = None) -> torch.Tensor:
            # one tensor built from padded lists: far faster than a tensor per row
            rows = [list(f[name]) if name in f else [default] * n for f, n in zip(features, lengths)]
            return torch.tensor([row + [fill] * (width - len(row)) for row in rows], dtype=torch.long)

        input_ids = column("input_ids", self.pad_token_id)
        attention_mask = column("attention_mask", 0, default=1)
        token_type_ids = column("token_type_ids", 0, default=0)
        if all("special_tokens_mask" in f for f in features):
            special = column("special_tokens_mask", 1).bool()
        else:
            special = torch.isin(input_ids, self.special_ids)
        special |= attention_mask == 0  # padding is never predicted
        if self.whole_word_masking and not all("word_starts" in f for f in features):
            raise ValueError("whole-word masking needs the 'word_starts' feature that tokenize_and_pack writes")
        word_starts = column("word_starts", 1, default=1).bool()
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "maskable": ~special,
            "word_starts": word_starts,
        }

    # ------------------------------------------------------------ drawing masks

    def _mask(
        self, input_ids: torch.Tensor, maskable: torch.Tensor, word_starts: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(which positions are predicted, the corrupted ids) for a [B, T] block."""
        if self.whole_word_masking:
            word_index = word_starts.long().cumsum(dim=1) - 1
            word_index.clamp_(min=0)  # a row that does not open with a word start joins its first word
            chosen_words = torch.rand(input_ids.shape, generator=generator) < self.mlm_probability
            selected = chosen_words.gather(1, word_index) & maskable
        else:
            word_index = None
            selected = (torch.rand(input_ids.shape, generator=generator) < self.mlm_probability) & maskable
        if not selected.any() and maskable.any():
            candidates = maskable.nonzero()
            row, col = candidates[torch.randint(len(candidates), (1,), generator=generator)].squeeze(0).tolist()
            if word_index is None:
                selected[row, col] = True
            else:
                selected[row] = (word_index[row] == word_index[row, col]) & maskable[row]
        action = torch.rand(input_ids.shape, generator=generator)
        to_mask = selected & (action < self.mask_replace_prob)
        to_random = selected & (action >= self.mask_replace_prob) & (action < self.mask_replace_prob + self.random_replace_prob)
        corrupted = input_ids.masked_fill(to_mask, self.mask_token_id)
        # draw only the few replacements needed: [B, T]-sized gathers are needlessly slow on a busy CPU
        picks = torch.randint(len(self.replacement_ids), (int(to_random.sum()),), generator=generator)
        corrupted[to_random] = self.replacement_ids[picks]
        return selected, corrupted

    def _sample_seed(self, input_ids: Sequence[int]) -> int:
        digest = hashlib.blake2b(digest_size=8)
        digest.update(self.seed.to_bytes(16, "little", signed=True))
        digest.update(torch.as_tensor(input_ids, dtype=torch.int64).numpy().tobytes())
        return int.from_bytes(digest.digest(), "little") >> 1

    def _training_generator(self) -> torch.Generator:
        # DataLoader workers each hold a copy of this collator, and a fresh copy every epoch; reseeding each copy from
        # the worker's own seed (drawn anew per epoch from torch's global RNG) keeps masks distinct and reproducible.
        worker = torch.utils.data.get_worker_info()
        if worker is not None and self._worker_seed != worker.seed:
            self._worker_seed = worker.seed
            self.generator.manual_seed(hash((self.seed, worker.seed)) & (2**63 - 1))
        return self.generator
