"""MaskingCollator: rates, the 80/10/10 split, what is never masked, whole words, fresh and fixed masks."""

import random

import pytest
import torch

from bert_tasks.tasks.mlm.masking import IGNORE_INDEX, MaskingCollator

PAD, UNK, CLS, SEP, MASK = range(5)
VOCAB = 99


class StubTokenizer:
    pad_token_id, mask_token_id, all_special_ids = PAD, MASK, [PAD, UNK, CLS, SEP, MASK]

    def __len__(self):
        return VOCAB


def make_features(n, seed=0, min_len=5, max_len=60, words=False):
    """[CLS] ids [SEP] of varied lengths; with ``words``, ids are grouped into words of 1–4 pieces."""
    rng = random.Random(seed)
    features = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        ids = [rng.randrange(5, VOCAB) for _ in range(length)]
        starts = [1] * length
        if words:
            i = 0
            while i < length:
                size = rng.randint(1, 4)
                starts[i + 1 : i + size] = [0] * len(starts[i + 1 : i + size])
                i += size
        features.append(
            {
                "input_ids": [CLS, *ids, SEP],
                "special_tokens_mask": [1, *[0] * length, 1],
                "word_starts": [1, *starts[:length], 1],
                "token_type_ids": [0] * (length + 2),
                "attention_mask": [1] * (length + 2),
            }
        )
    return features


def padded_originals(features, width):
    return torch.tensor([f["input_ids"] + [PAD] * (width - len(f["input_ids"])) for f in features])


def test_batch_shape_padding_and_outputs():
    features = make_features(5, max_len=20)
    batch = MaskingCollator(StubTokenizer(), seed=0)(features)
    width = batch["input_ids"].shape[1]
    assert width % 8 == 0 and width - 8 < max(len(f["input_ids"]) for f in features) <= width
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "prediction_mask"}
    assert batch["prediction_mask"].dtype == torch.bool
    assert torch.equal(batch["prediction_mask"], batch["labels"] != IGNORE_INDEX)
    assert batch["attention_mask"].sum(1).tolist() == [len(f["input_ids"]) for f in features]
    originals = padded_originals(features, width)
    assert torch.equal(batch["labels"][batch["prediction_mask"]], originals[batch["prediction_mask"]])
    assert torch.equal(batch["input_ids"][~batch["prediction_mask"]], originals[~batch["prediction_mask"]])


def test_padding_never_exceeds_max_length():
    features = make_features(2, min_len=18, max_len=18)  # 20 tokens
    assert MaskingCollator(StubTokenizer(), max_length=20)(features)["input_ids"].shape[1] == 20
    assert MaskingCollator(StubTokenizer(), pad_to_multiple_of=None)(features)["input_ids"].shape[1] == 20


@pytest.mark.parametrize("probability", [0.15, 0.4])
def test_rate_split_and_never_special_or_padding(probability):
    features = make_features(600, seed=1)
    collator = MaskingCollator(StubTokenizer(), mlm_probability=probability, seed=3)
    batch = collator(features)
    width = batch["input_ids"].shape[1]
    originals = padded_originals(features, width)
    special = torch.isin(originals, torch.tensor(StubTokenizer.all_special_ids)) | (batch["attention_mask"] == 0)
    predicted = batch["prediction_mask"]
    assert not (predicted & special).any(), "special tokens and padding are never predicted"
    assert (batch["input_ids"][special] == originals[special]).all()
    rate = predicted.sum().item() / (~special).sum().item()
    assert rate == pytest.approx(probability, abs=0.01)

    corrupted, truth = batch["input_ids"][predicted], originals[predicted]
    n = len(truth)
    masked = (corrupted == MASK).float().mean().item()
    unchanged = (corrupted == truth).float().mean().item()
    replaced = ((corrupted != MASK) & (corrupted != truth)).float().mean().item()
    # a random replacement hits the true token 1 time in 94; that share counts as 'unchanged'
    assert masked == pytest.approx(0.8, abs=0.025)
    assert unchanged == pytest.approx(0.1 + 0.1 / 94, abs=0.02)
    assert replaced == pytest.approx(0.1 - 0.1 / 94, abs=0.02)
    assert n > 1000
    random_tokens = corrupted[(corrupted != MASK) & (corrupted != truth)]
    assert not torch.isin(random_tokens, torch.tensor(StubTokenizer.all_special_ids)).any()
    assert len(set(random_tokens.tolist())) > 80, "random tokens cover the ordinary vocabulary"


def test_whole_words_are_masked_all_or_nothing():
    features = make_features(400, seed=2, words=True)
    batch = MaskingCollator(StubTokenizer(), whole_word_masking=True, seed=5)(features)
    chosen_words = total_words = 0
    for row, feature in enumerate(features):
        predicted = batch["prediction_mask"][row, : len(feature["input_ids"])].tolist()
        starts = feature["word_starts"]
        word = []
        for i in range(1, len(starts)):  # position 0 is [CLS]
            if starts[i] and word:
                assert len(set(word)) == 1, f"word split by the mask in row {row}: {word}"
                chosen_words += word[0]
                total_words += 1
                word = []
            word.append(predicted[i])
        assert predicted[0] == predicted[-1] == 0
    assert chosen_words / total_words == pytest.approx(0.15, abs=0.015)
    assert any(0 in f["word_starts"] for f in features)


def test_whole_word_masking_needs_word_starts():
    features = [{k: v for k, v in f.items() if k != "word_starts"} for f in make_features(2)]
    with pytest.raises(ValueError, match="word_starts"):
        MaskingCollator(StubTokenizer(), whole_word_masking=True)(features)


def test_training_masks_are_fresh_each_call_and_reproducible_from_the_seed():
    features = make_features(8, seed=3)
    first, second = MaskingCollator(StubTokenizer(), seed=11), MaskingCollator(StubTokenizer(), seed=11)
    a1, a2 = first(features), first(features)
    assert not torch.equal(a1["prediction_mask"], a2["prediction_mask"]), "a new epoch draws new masks"
    b1, b2 = second(features), second(features)
    for x, y in ((a1, b1), (a2, b2)):
        assert all(torch.equal(x[k], y[k]) for k in x)
    other_seed = MaskingCollator(StubTokenizer(), seed=12)(features)
    assert not torch.equal(other_seed["prediction_mask"], a1["prediction_mask"])


def test_generator_state_resumes():
    features = make_features(8, seed=3)
    collator = MaskingCollator(StubTokenizer(), seed=1)
    collator(features)
    state = collator.state_dict()
    expected = collator(features)
    resumed = MaskingCollator(StubTokenizer(), seed=99)
    resumed.load_state_dict(state)
    assert torch.equal(resumed(features)["labels"], expected["labels"])


def per_sample(batch, features):
    return {
        tuple(f["input_ids"]): (batch["input_ids"][i, : len(f["input_ids"])].tolist(), batch["labels"][i, : len(f["input_ids"])].tolist())
        for i, f in enumerate(features)
    }


@pytest.mark.parametrize("whole_words", [False, True])
def test_evaluation_masks_are_fixed_and_independent_of_batching(whole_words):
    features = make_features(24, seed=4, words=whole_words)
    collator = MaskingCollator(StubTokenizer(), seed=1234, deterministic=True, whole_word_masking=whole_words)
    together = per_sample(collator(features), features)
    assert per_sample(collator(features), features) == together
    shuffled = features[:]
    random.Random(0).shuffle(shuffled)
    regrouped = {}
    for start in range(0, len(shuffled), 5):  # other batch sizes, order and padding widths
        chunk = shuffled[start : start + 5]
        regrouped.update(per_sample(collator(chunk), chunk))
    assert regrouped == together
    fresh = MaskingCollator(StubTokenizer(), seed=1234, deterministic=True, whole_word_masking=whole_words)
    assert per_sample(fresh(features), features) == together
    other_seed = MaskingCollator(StubTokenizer(), seed=4321, deterministic=True, whole_word_masking=whole_words)
    assert per_sample(other_seed(features), features) != together


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("whole_words", [False, True])
def test_every_batch_predicts_at_least_one_token(deterministic, whole_words):
    features = make_features(1, min_len=1, max_len=3, words=True)
    for seed in range(200):
        batch = MaskingCollator(StubTokenizer(), mlm_probability=0.01, seed=seed, deterministic=deterministic, whole_word_masking=whole_words)(features)
        assert batch["prediction_mask"].sum() >= 1
        assert not batch["prediction_mask"][0, 0] and not batch["prediction_mask"][0, len(features[0]["input_ids"]) - 1]


def test_special_tokens_are_found_without_a_special_tokens_mask():
    features = [{"input_ids": [CLS, 7, 8, 9, SEP, 10, 11, SEP]}] * 200
    batch = MaskingCollator(StubTokenizer(), mlm_probability=0.5, seed=0)(features)
    assert not batch["prediction_mask"][:, [0, 4, 7]].any()
    assert batch["prediction_mask"][:, [1, 2, 3, 5, 6]].float().mean() == pytest.approx(0.5, abs=0.05)
    assert (batch["token_type_ids"] == 0).all() and (batch["attention_mask"][:, :8] == 1).all()


def masks_per_batch(collator, features, seed):
    torch.manual_seed(seed)  # DataLoader derives its worker seeds from the global RNG
    loader = torch.utils.data.DataLoader(features, batch_size=1, num_workers=2, collate_fn=collator)
    return [batch["prediction_mask"] for batch in loader]


def test_dataloader_workers_draw_distinct_masks_every_epoch():
    features = make_features(1, seed=6, min_len=60, max_len=60) * 4
    collator = MaskingCollator(StubTokenizer(), seed=7)
    epoch_one, epoch_two = masks_per_batch(collator, features, 0), masks_per_batch(collator, features, 1)
    assert not torch.equal(epoch_one[0], epoch_one[1]), "the two workers must not repeat each other's masks"
    assert not torch.equal(epoch_one[0], epoch_two[0]), "each epoch draws new masks"
    again = masks_per_batch(collator, features, 0)
    assert all(torch.equal(a, b) for a, b in zip(epoch_one, again))
