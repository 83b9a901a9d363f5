"""Tokenizer loading, fingerprints and BPE training (all offline, tokenizers built in tmp dirs)."""


import pytest
from conftest import word_tokenizer
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from headstart.data.tokenizer import eos_id, load_tokenizer, tokenizer_fingerprint, train_bpe, vocab_size
from headstart.errors import UsageError

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning light"] * 20



def test_fingerprint_equal_for_two_copies_of_one_tokenizer(tmp_path):
    first = train_bpe(TEXTS, 300, tmp_path / "a")
    a = load_tokenizer(tmp_path / "a")
    a.save_pretrained(tmp_path / "copy")
    b = load_tokenizer(tmp_path / "copy")
    assert tokenizer_fingerprint(a) == tokenizer_fingerprint(b) == tokenizer_fingerprint(first)
    assert tokenizer_fingerprint(a) == tokenizer_fingerprint(a.backend_tokenizer)


def test_fingerprint_differs_for_different_tokenizers(tmp_path):
    small = train_bpe(TEXTS, 270, tmp_path / "small")
    large = train_bpe(TEXTS, 300, tmp_path / "large")
    words = load_tokenizer(word_tokenizer(tmp_path / "w", ["the", "cat"]))
    other_words = load_tokenizer(word_tokenizer(tmp_path / "w2", ["cat", "the"]))
    prints = {tokenizer_fingerprint(t) for t in (small, large, words, other_words)}
    assert len(prints) == 4


def test_train_bpe_saves_a_loadable_byte_level_folder_with_eos(tmp_path):
    trained = train_bpe(TEXTS, 300, tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert (tmp_path / "tok" / "tokenizer.json").is_file()
    assert loaded.convert_ids_to_tokens(eos_id(loaded)) == "<|endoftext|>"
    assert 258 <= vocab_size(loaded) <= 300
    text = "the cat sat — ünïcödé never seen 🙂"
    ids = loaded.encode(text, add_special_tokens=False)
    assert loaded.decode(ids) == text  # byte-level: nothing is unknown
    assert ids == trained.encode(text, add_special_tokens=False)
    assert len(loaded.encode("the cat sat on the mat", add_special_tokens=False)) < len("the cat sat on the mat")


def test_train_bpe_rejects_a_vocabulary_smaller_than_the_bytes(tmp_path):
    with pytest.raises(UsageError, match="too small"):
        train_bpe(TEXTS, 100, tmp_path / "tok")


def test_tokenizer_without_eos_is_a_usage_error(tmp_path):
    tok = load_tokenizer(word_tokenizer(tmp_path / "w", ["a"], eos=False))
    with pytest.raises(UsageError, match="no end-of-text"):
        eos_id(tok)


@pytest.mark.parametrize("make", ["empty", "garbage", "file", "missing"])
def test_a_path_that_is_not_a_tokenizer_is_a_usage_error(tmp_path, make):
    path = tmp_path / "tok"
    if make == "empty":
        path.mkdir()
    elif make == "garbage":
        path.mkdir()
        (path / "tokenizer.json").write_text("{not json")
    elif make == "file":
        path.write_text("hello")
    with pytest.raises(UsageError):
        load_tokenizer(path)


def test_endoftext_separates_documents_even_when_eos_is_another_token(tmp_path):
    """Chat-tuned tokenizers (SmolLM2-Instruct: eos <|im_end|>) still separate documents with <|endoftext|>."""
    vocab = {"<|endoftext|>": 0, "<|im_end|>": 1, "[UNK]": 2, "a": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="<|im_end|>").save_pretrained(tmp_path)
    assert eos_id(load_tokenizer(tmp_path)) == 0
