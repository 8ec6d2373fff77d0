"""Training batches, sharded by rank, as a pure function of the step: the embedded domain
(`DomainBatches`), image-text webdataset shards (`ImageTextBatches`) or the latents and text
embeddings precomputed from them by `ldmscale prepare` (`LatentBatches`);
`batch_source(cfg, storage)` picks one from `data.name` and `data.precomputed`.

The sample with global index `i` is item `i mod N` of the domain's training pool
(its domain's `render(seed, i)` without a pool), and sample `i mod N` of the N samples of the
shards on real data (in shard order: shards are expected to be shuffled when written, as img2dataset
writes them); optimizer step `s` consumes the global indices
`s * global_batch ... (s + 1) * global_batch - 1`. Within a step, micro-step `a` of rank `r`
takes the contiguous slice at `(a * world_size + r) * micro_batch`, so no two ranks see the same
sample and every sample of the step is seen once. The data position is therefore
the step alone: resuming needs no loader state.

Per-sample draws (caption dropout, timestep, noise) come from `sample_draws`, a function of
(seed, index), for every source.

- Domain (`PoolBatches`): sample `i` is item `i mod N` of the training pool whose latents
  `prepare` encoded (`ldmscale.data.pool`): no rendering and no autoencoder forward per batch.
  Every distinct caption of the pool (and the empty one) is encoded once, when the source is
  built, in sorted order, so every batch is the same on every run and after every resume.
  With `data.train_pool=0` (`DomainBatches`), sample `i` is the domain's `render(seed, i)`,
  encoded by the frozen autoencoder on the fly; caption embeddings are cached as they appear.
- Raw shards: the shard index (`ldmscale.prepare.latents.shard_index`) is read from the study,
  built and committed there by the first job that needs it. Shards are read in the training
  thread (the last two stay in memory); `data.num_workers` threads decode and resize a
  micro-batch's images, each a disjoint part of its indices. Captions are encoded per batch;
  the empty caption's embedding once.
- Precomputed: `latent.npy` / `emb.npy` of the prepared shards; dropped captions take the stored
  empty-caption embedding. No autoencoder or text encoder is loaded.

A truncated or unreadable shard raises `CorruptShard` naming it, and training stops (exit 2):
training on silently fewer samples would change what a step means. Re-export the shard, or
remove it from `data.shards` (a new URL list gets a new index).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.data.domains import is_embedded
from ldmscale.data.pool import DomainPool
from ldmscale.train.diffusion import SampleDraws, sample_draws

if TYPE_CHECKING:
    from ldmscale.data.prepared import LatentSet
    from ldmscale.storage.fs import Storage


def micro_indices(
    step: int, micro_step: int, rank: int, world_size: int, micro_batch: int, global_batch: int
) -> list[int]:
    """Global sample indices of one micro-batch of `rank` at optimizer step `step`."""
    start = step * global_batch + (micro_step * world_size + rank) * micro_batch
    return list(range(start, start + micro_batch))


@dataclass
class Batch:
    """One micro-batch of training, on the training device."""

    latents: torch.Tensor
    """[B, C, H, W] scaled latents of the images (float32, on the training device)."""
    context: torch.Tensor
    """[B, tokens, hidden] text embeddings, the empty caption's where dropped."""
    noise: torch.Tensor
    timesteps: torch.Tensor
    indices: list[int] = field(default_factory=list)
    """The global sample indices of the batch (an objective's own per-sample draws use them)."""
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    """Extra conditioning tensors an objective's batch source adds (the loop never reads them)."""


class _EncodedBatches:
    """What batch sources that encode on the fly share: the frozen autoencoder and text encoder,
    and the latent shape they give."""

    def __init__(
        self, cfg: StudyConfig, autoencoder: Any, text_encoder: Any, device: torch.device
    ) -> None:
        self.autoencoder = autoencoder
        self.text_encoder = text_encoder
        self.device = device
        size = autoencoder.latent_size(cfg.data.resolution)
        self.latent_shape: tuple[int, int, int] = (autoencoder.latent_channels, size, size)

    @property
    def hidden_size(self) -> int:
        return int(self.text_encoder.hidden_size)

    @property
    def max_tokens(self) -> int:
        return int(self.text_encoder.max_tokens)


class DomainBatches(_EncodedBatches):
    """Builds the training batch of any list of global sample indices."""

    def __init__(
        self, cfg: StudyConfig, autoencoder: Any, text_encoder: Any, device: torch.device
    ) -> None:
        super().__init__(cfg, autoencoder, text_encoder, device)
        self.seed = cfg.seed
        self.domain = cfg.data.name
        self.resolution = cfg.data.resolution
        self.train = cfg.train
        self._captions: dict[str, torch.Tensor] = {}

    @property
    def empty(self) -> torch.Tensor:
        """[tokens, hidden]: the empty caption's embedding."""
        return self.embed([""])[0]

    def embed(self, captions: list[str]) -> torch.Tensor:
        """[B, tokens, hidden] embeddings of `captions`, encoding each distinct caption once."""
        missing = sorted({c for c in captions if c not in self._captions})
        if missing:
            encoded = self.text_encoder.encode(missing).to(self.device)
            self._captions.update(zip(missing, encoded, strict=True))
        return torch.stack([self._captions[c] for c in captions])

    def pixels(self, indices: list[int]) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1]: the images of the global sample `indices`."""
        return _renders(self.seed, indices, self.resolution).to(self.device)

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        """The batch of the global sample `indices`."""
        from ldmscale.data.domains import domain
        from ldmscale.data.pixels import from_uint8

        render = domain(self.domain).render
        samples = [render(self.seed, i, resolution=self.resolution) for i in indices]
        pixels = torch.stack([from_uint8(s.image) for s in samples]).to(self.device)
        latents = self.autoencoder.encode(pixels).float()
        draws = sample_draws(
            self.seed,
            indices,
            self.latent_shape,
            self.train.num_train_timesteps,
            self.train.caption_dropout,
        )
        captions = [
            "" if drop else s.caption for s, drop in zip(samples, draws.drop_caption, strict=True)
        ]
        return Batch(
            latents=latents,
            context=self.embed(captions),
            noise=draws.noise.to(self.device),
            timesteps=draws.timesteps.to(self.device),
            indices=list(indices),
        )


def _renders(seed: int, items: list[int], resolution: int) -> torch.Tensor:
    from ldmscale.data.pixels import from_uint8
    from ldmscale.data.shapes import render

    return torch.stack([from_uint8(render(seed, i, resolution=resolution).image) for i in items])


_ENCODE_CHUNK = 256
"""Captions per text-encoder forward while building the table."""


class PoolBatches:
    """Builds the training batch of any list of global sample indices from the pool."""

    def __init__(
        self, cfg: StudyConfig, pool: DomainPool, text_encoder: Any, device: torch.device
    ) -> None:
        self.cfg = cfg
        self.pool = pool
        self.device = device
        self.latent_shape: tuple[int, int, int] = pool.latent_shape
        distinct = sorted({*pool.captions, ""})
        row = {caption: k for k, caption in enumerate(distinct)}
        with torch.no_grad():
            table = [
                text_encoder.encode(distinct[k : k + _ENCODE_CHUNK])
                for k in range(0, len(distinct), _ENCODE_CHUNK)
            ]
        self.table = torch.cat(table).to(device)
        """[distinct captions + 1, tokens, hidden] embeddings."""
        self.caption_rows = torch.tensor([row[c] for c in pool.captions], dtype=torch.long)
        """[N]: the table row of each pool item's caption."""
        self.empty_row = row[""]

    @property
    def empty(self) -> torch.Tensor:
        """[tokens, hidden]: the empty caption's embedding."""
        return self.table[self.empty_row]

    @property
    def hidden_size(self) -> int:
        """Width of the text embeddings."""
        return int(self.table.shape[-1])

    @property
    def max_tokens(self) -> int:
        """Tokens per caption embedding."""
        return int(self.table.shape[1])

    def pixels(self, indices: list[int]) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1]: the renders whose latents the pool items hold."""
        items = self.pool.items(indices).tolist()
        return _renders(self.cfg.seed, items, self.cfg.data.resolution).to(self.device)

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        """The batch of global sample indices `indices` (pool items `i mod N`)."""
        items = self.pool.items(indices)
        draws = _draws(self.cfg, indices, self.latent_shape)
        rows = torch.where(
            draws.drop_caption, torch.full_like(items, self.empty_row), self.caption_rows[items]
        )
        return Batch(
            latents=self.pool.latents[items].to(self.device),
            context=self.table[rows.to(self.device)],
            noise=draws.noise.to(self.device),
            timesteps=draws.timesteps.to(self.device),
            indices=list(indices),
        )


class Batches(Protocol):
    """What the trainer needs of a batch source."""

    latent_shape: tuple[int, int, int]

    @property
    def hidden_size(self) -> int:
        """Width of the text embeddings."""
        ...

    @property
    def max_tokens(self) -> int:
        """Tokens per caption."""
        ...

    @property
    def empty(self) -> torch.Tensor:
        """[tokens, hidden]: the empty caption's embedding (classifier-free guidance)."""
        ...

    def batch(self, indices: list[int]) -> Batch:
        """The batch of the global sample `indices`."""
        ...


def _draws(cfg: StudyConfig, indices: list[int], latent_shape: tuple[int, int, int]) -> SampleDraws:
    t = cfg.train
    return sample_draws(cfg.seed, indices, latent_shape, t.num_train_timesteps, t.caption_dropout)


def _contexts(
    draws: SampleDraws, empty: torch.Tensor, kept: Sequence[torch.Tensor] | torch.Tensor
) -> torch.Tensor:
    """[B, tokens, hidden]: `empty` where the caption is dropped, else the next of `kept`."""
    rows, position = [], 0
    for drop in draws.drop_caption.tolist():
        if drop:
            rows.append(empty)
        else:
            rows.append(kept[position])
            position += 1
    return torch.stack(rows)


class ImageTextBatches(_EncodedBatches):
    """Batches of raw image-text shards, encoded by the frozen autoencoder and text encoder."""

    def __init__(
        self,
        cfg: StudyConfig,
        autoencoder: Any,
        text_encoder: Any,
        device: torch.device,
        samples: Any,
    ) -> None:
        super().__init__(cfg, autoencoder, text_encoder, device)
        self.cfg = cfg
        self.samples = samples
        """`ShardedSamples` (or anything indexable by global sample index)."""
        workers = cfg.data.num_workers
        self.pool = ThreadPoolExecutor(workers, "ldmscale-decode") if workers else None
        self._empty: torch.Tensor | None = None

    @property
    def empty(self) -> torch.Tensor:
        """[tokens, hidden]: the empty caption's embedding (classifier-free guidance)."""
        if self._empty is None:
            self._empty = self.text_encoder.encode([""])[0].to(self.device)
        return self._empty

    def pixels(self, indices: list[int]) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1]: the images of the global sample `indices`."""
        from ldmscale.data.webdataset import decode_pixels

        samples = [self.samples[i] for i in indices]
        return decode_pixels(samples, self.cfg.data.resolution, self.pool).to(self.device)

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        """The batch of the global sample `indices`."""
        from ldmscale.data.webdataset import decode_caption, decode_pixels

        samples = [self.samples[i] for i in indices]
        pixels = decode_pixels(samples, self.cfg.data.resolution, self.pool).to(self.device)
        latents = self.autoencoder.encode(pixels).float()
        draws = _draws(self.cfg, indices, self.latent_shape)
        kept = [
            decode_caption(s)
            for s, drop in zip(samples, draws.drop_caption.tolist(), strict=True)
            if not drop
        ]
        encoded = self.text_encoder.encode(kept).to(self.device) if kept else []
        return Batch(
            latents=latents,
            context=_contexts(draws, self.empty, encoded),
            noise=draws.noise.to(self.device),
            timesteps=draws.timesteps.to(self.device),
            indices=list(indices),
        )


class LatentBatches:
    """Batches of the latents and text embeddings precomputed by `ldmscale prepare`."""

    def __init__(self, cfg: StudyConfig, latents: LatentSet, device: torch.device) -> None:
        from ldmscale.data.webdataset import ShardedSamples

        self.cfg = cfg
        self.device = device
        self.samples = ShardedSamples(latents.index, cfg.storage)
        self.latent_shape: tuple[int, int, int] = latents.latent_shape
        self.empty = latents.empty.to(device)

    @property
    def hidden_size(self) -> int:
        """Width of the text embeddings."""
        return int(self.empty.shape[-1])

    @property
    def max_tokens(self) -> int:
        """Tokens per caption."""
        return int(self.empty.shape[0])

    @torch.no_grad()
    def batch(self, indices: list[int]) -> Batch:
        """The batch of the global sample `indices`."""
        from ldmscale.data.webdataset import decode_array

        samples = [self.samples[i] for i in indices]
        latents = torch.stack([torch.from_numpy(decode_array(s, "latent.npy")) for s in samples])
        draws = _draws(self.cfg, indices, self.latent_shape)
        kept = [
            torch.from_numpy(decode_array(s, "emb.npy")).to(self.device)
            for s, drop in zip(samples, draws.drop_caption.tolist(), strict=True)
            if not drop
        ]
        return Batch(
            latents=latents.float().to(self.device),
            context=_contexts(draws, self.empty, kept),
            noise=draws.noise.to(self.device),
            timesteps=draws.timesteps.to(self.device),
            indices=list(indices),
        )


def batch_source(cfg: StudyConfig, storage: Storage, device: torch.device) -> Batches:
    """The batch source of `cfg.data`, with its frozen components loaded (none when the latents
    are precomputed). Raises MissingInput when the study lacks what `prepare` makes."""
    from ldmscale.data import prepared
    from ldmscale.data.webdataset import ShardedSamples
    from ldmscale.models.domain import autoencoder_for
    from ldmscale.models.text_encoder import load_text_encoder

    if is_embedded(cfg.data.name) and cfg.data.train_pool:
        from ldmscale.models.domain import pool_for

        data = cfg.data
        text = load_text_encoder(data.text_encoder, data.max_text_tokens, device, cfg.storage)
        return PoolBatches(cfg, pool_for(cfg, storage), text, device)
    if cfg.data.precomputed:
        return LatentBatches(cfg, prepared.load_latents(cfg, storage), device)
    index = prepared.shard_index(cfg, storage) if cfg.data.name == "webdataset" else None
    autoencoder = autoencoder_for(cfg, storage, device)
    data = cfg.data
    text_encoder = load_text_encoder(data.text_encoder, data.max_text_tokens, device, cfg.storage)
    if index is None:
        return DomainBatches(cfg, autoencoder, text_encoder, device)
    samples = ShardedSamples(index, cfg.storage)
    return ImageTextBatches(cfg, autoencoder, text_encoder, device, samples)
