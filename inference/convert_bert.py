"""Convert a sentence-transformers BERT model (safetensors) into a llama.cpp GGUF file.

Targets small BERT-family sentence embedders such as all-MiniLM-L6-v2 that ship
``config.json``, ``tokenizer.json`` and a single fp32 ``model.safetensors``.
The output follows the conventions of llama.cpp's ``convert_hf_to_gguf.py``
(``BertModel``): architecture ``bert``, WordPiece (``bert``) tokenizer with the
phantom-space vocabulary, mean pooling and non-causal attention.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# Token types, mirroring gguf.TokenType values.
_TOKEN_NORMAL = 1
_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4

# Tensors llama.cpp's bert graph does not use.
_SKIPPED_TENSORS = frozenset({"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"})
_SKIPPED_PREFIXES = ("cls.predictions", "cls.seq_relationship")


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _pooling_is_mean(model_dir: Path) -> bool:
    """Return True unless a sentence-transformers pooling config says otherwise."""
    pooling_cfg = model_dir / "1_Pooling" / "config.json"
    if not pooling_cfg.is_file():
        return True
    return bool(_read_json(pooling_cfg).get("pooling_mode_mean_tokens", True))


def _build_vocab(
    tokenizer: dict[str, Any],
) -> tuple[list[str], list[int], dict[str, int]]:
    """Return (tokens, token types, special-token ids) in llama.cpp's WordPiece layout.

    Word-initial pieces get the "▁" phantom-space prefix, ``##`` continuation
    pieces lose their ``##``, control tokens are kept verbatim.
    """
    model = tokenizer["model"]
    if model.get("type") != "WordPiece":
        raise ValueError(f"expected a WordPiece tokenizer, got {model.get('type')!r}")
    vocab: dict[str, int] = model["vocab"]
    added = {int(t["id"]): t for t in tokenizer.get("added_tokens", [])}
    for tok_id, tok in added.items():
        vocab.setdefault(tok["content"], tok_id)

    size = max(vocab.values()) + 1
    by_id: dict[int, str] = {i: t for t, i in vocab.items()}
    prefix = model.get("continuing_subword_prefix", "##")

    tokens: list[str] = []
    types: list[int] = []
    for i in range(size):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(_TOKEN_USER_DEFINED)
            continue
        if i in added:
            toktype = _TOKEN_CONTROL if added[i].get("special") else _TOKEN_USER_DEFINED
        else:
            toktype = _TOKEN_NORMAL
        if toktype != _TOKEN_CONTROL:
            text = text[len(prefix) :] if text.startswith(prefix) else "\u2581" + text
        tokens.append(text)
        types.append(toktype)

    special: dict[str, int] = {}
    for key, name in (
        ("cls", "[CLS]"),
        ("sep", "[SEP]"),
        ("pad", "[PAD]"),
        ("mask", "[MASK]"),
        ("unk", model.get("unk_token", "[UNK]")),
    ):
        if name in vocab:
            special[key] = vocab[name]
    missing = {"cls", "sep", "unk"} - special.keys()
    if missing:
        raise ValueError(f"tokenizer lacks special tokens: {sorted(missing)}")
    return tokens, types, special


def convert_bert_to_gguf(*, model_dir: Path, output_path: Path) -> Path:
    """Write a GGUF of the BERT sentence-embedding model in model_dir.

    Atomic: write to a temp file in the same dir then os.replace.

    Matmul weights (2-D, except position/token-type embeddings) are stored as
    F16; embeddings used in additions, norms and biases stay F32.

    Args:
        model_dir: directory holding ``config.json``, ``tokenizer.json`` and
            ``model.safetensors``.
        output_path: destination ``.gguf`` file.

    Returns:
        ``output_path``.
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    output_path = Path(output_path)
    config = _read_json(model_dir / "config.json")
    tokenizer = _read_json(model_dir / "tokenizer.json")
    archs = config.get("architectures") or ["BertModel"]
    if config.get("model_type", "bert") != "bert" or not any("Bert" in a for a in archs):
        raise ValueError(f"not a BERT model: {config.get('model_type')!r} {archs}")

    n_layers = int(config["num_hidden_layers"])
    arch = gguf.MODEL_ARCH.BERT
    name_map = gguf.get_tensor_name_map(arch, n_layers)
    keep_f32 = {
        gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.POS_EMBD] + ".weight",
        gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.TOKEN_TYPES] + ".weight",
    }

    tokens, toktypes, special = _build_vocab(tokenizer)
    state = load_file(str(model_dir / "model.safetensors"))

    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp_path), gguf.MODEL_ARCH_NAMES[arch])
        writer.add_name(model_dir.name)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_context_length(int(config["max_position_embeddings"]))
        writer.add_embedding_length(int(config["hidden_size"]))
        writer.add_feed_forward_length(int(config["intermediate_size"]))
        writer.add_block_count(n_layers)
        writer.add_head_count(int(config["num_attention_heads"]))
        writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
        writer.add_causal_attention(False)
        writer.add_pooling_type(gguf.PoolingType.MEAN if _pooling_is_mean(model_dir) else gguf.PoolingType.CLS)

        writer.add_tokenizer_model("bert")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(toktypes)
        writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
        # llama.cpp's WPM tokenizer emits BOS ([CLS]) ... SEP ([SEP]).
        writer.add_bos_token_id(special["cls"])
        writer.add_eos_token_id(special["sep"])
        writer.add_sep_token_id(special["sep"])
        writer.add_unk_token_id(special["unk"])
        if "pad" in special:
            writer.add_pad_token_id(special["pad"])
        if "mask" in special:
            writer.add_mask_token_id(special["mask"])
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_add_sep_token(True)

        for src_name, data in state.items():
            name = src_name.removeprefix("bert.")
            name = name.replace(".gamma", ".weight").replace(".beta", ".bias")
            if name in _SKIPPED_TENSORS or name.startswith(_SKIPPED_PREFIXES):
                continue
            new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise ValueError(f"cannot map tensor {src_name!r}")
            if data.ndim == 2 and new_name not in keep_f32:
                data = data.astype(np.float16)
            else:
                data = data.astype(np.float32)
            writer.add_tensor(new_name, np.ascontiguousarray(data))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, output_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return output_path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m inference.convert_bert MODEL_DIR OUTPUT.gguf")
    print(convert_bert_to_gguf(model_dir=Path(sys.argv[1]), output_path=Path(sys.argv[2])))
