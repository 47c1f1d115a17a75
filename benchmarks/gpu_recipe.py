"""The recipe's model on one GPU, without downloading it: pages/s per pixel budget, the training step at several
cached-loss mini-batch sizes, peak memory and model FLOPs utilisation.

The Qwen3-VL-Embedding-2B architecture is built with random weights from the config values below (speed and
memory do not depend on the weights), with the offline fixtures' tokenizer and a real Qwen3-VL image
processor; pages are the synthetic fixture pages scaled to the recipe's average page size (1416x1648).

    python benchmarks/gpu_recipe.py                      # on a GPU: the real size, under 8 minutes
    python benchmarks/gpu_recipe.py --size tiny --device cpu --pages 4 --steps 1   # the CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

# Qwen3-VL-2B (the base of Qwen3-VL-Embedding-2B): about 2.1B parameters.
RECIPE_CONFIG = {
    "text": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
             "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "mrope_section": [24, 20, 20]},
    "vision": {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
               "num_position_embeddings": 2304, "deepstack_visual_indexes": [5, 11, 17]},
}  # fmt: skip
TINY_CONFIG = {
    "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 640, "mrope_section": [4, 2, 2]},
    "vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
               "num_position_embeddings": 256, "deepstack_visual_indexes": [1]},
}  # fmt: skip
# Dense bf16 peak FLOP/s by card, for model FLOPs utilisation.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}
PAGE_SIZE = (1416, 1648)


def build_model(size: str, folder: Path, dtype: torch.dtype) -> Path:
    from transformers import Qwen3VLConfig, Qwen3VLModel

    from vdr_exp.fixtures.tiny_models import (
        MERGE_SIZE,
        PATCH_SIZE,
        SPECIAL_TOKENS,
        TEMPORAL_PATCH_SIZE,
        build_processor,
    )

    values = RECIPE_CONFIG if size == "recipe" else TINY_CONFIG
    processor = build_processor()
    ids = {tok: processor.tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    text, vision = dict(values["text"]), dict(values["vision"])
    mrope = text.pop("mrope_section")
    config = Qwen3VLConfig(
        text_config={
            **text,
            "max_position_embeddings": 32768,
            "pad_token_id": ids["<|endoftext|>"],
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5e6,
                "mrope_section": mrope,
                "mrope_interleaved": True,
            },
        },
        vision_config={
            **vision,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": MERGE_SIZE,
            "temporal_patch_size": TEMPORAL_PATCH_SIZE,
            "out_hidden_size": text["hidden_size"],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = Qwen3VLModel(config).to(dtype)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def load_embedder(folder: Path, device: str, dtype: torch.dtype, attn: str):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(
        str(folder),
        model_kwargs={"dtype": dtype, "attn_implementation": attn},
        processing_kwargs={"chat_template": {"add_generation_prompt": True}},
        unpad_inputs=False,
    )
    width = transformer.get_embedding_dimension()
    return SentenceTransformer(
        modules=[transformer, Pooling(width, pooling_mode="lasttoken"), Normalize()], device=device
    )


def pages(n: int, page_size: tuple[int, int]):
    import random

    from vdr_exp.fixtures.pages import random_spec
    from vdr_exp.fixtures.render import render_page

    rng = random.Random(0)
    return [render_page(random_spec(rng)).resize(page_size) for _ in range(n)]


def set_budget(model, side: int) -> None:
    model[0].processor.image_processor.size = {"shortest_edge": 28 * 28, "longest_edge": side * side}


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def encode_rate(model, images, side: int, batch: int, device: str) -> dict:
    set_budget(model, side)
    model.encode_document(images[:batch], batch_size=batch, show_progress_bar=False)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model.encode_document(images, batch_size=batch, show_progress_bar=False)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = side * side / (32 * 32)  # visual tokens per page after 2x2 merging (upper bound)
    flops = 2 * params(model) * tokens * len(images)
    return {"side": side, "pages_per_s": len(images) / seconds, "flops_per_s": flops / seconds, **_memory(device)}


def train_step_rate(model, images, queries, batch: int, mini_batch: int, steps: int, device: str) -> dict:
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss, MatryoshkaLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    n = batch * steps
    rows = Dataset.from_dict(
        {
            "query": [queries[i % len(queries)] + f" #{i}" for i in range(n)],
            "image": [images[i % len(images)] for i in range(n)],
            "negative_0": [images[(i + 1) % len(images)] for i in range(n)],
        },
        features=Features({"query": Value("string"), "image": ImageFeature(), "negative_0": ImageFeature()}),
    )
    width = model.get_embedding_dimension()
    dims = [d for d in (2048, 1536, 1024, 512, 256, 128, 64) if d <= width] or [width]
    loss = MatryoshkaLoss(model, CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch), dims)
    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=2e-5,
            bf16=device == "cuda", use_cpu=device == "cpu", report_to="none", save_strategy="no",
            logging_steps=1, batch_sampler="batch_sampler", dataloader_drop_last=True,
        )  # fmt: skip
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=rows, loss=loss)
        start = time.perf_counter()
        trainer.train()
        seconds = (time.perf_counter() - start) / steps
    return {"batch": batch, "mini_batch": mini_batch, "s_per_step": seconds, **_memory(device)}


def _memory(device: str) -> dict:
    if device != "cuda":
        return {"peak_gib": None}
    return {"peak_gib": torch.cuda.max_memory_allocated() / 1024**3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("recipe", "tiny"), default="recipe")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--budgets", default="448,600,1024", help="page sides: max_pixels = side^2")
    parser.add_argument("--encode-batch", type=int, default=16)
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--mini-batches", default="1,8,32")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    attns = ["sdpa"]
    if args.device == "cuda":
        try:
            import flash_attn  # noqa: F401

            attns.append("flash_attention_2")
        except ImportError:
            pass
    page_size = PAGE_SIZE if args.size == "recipe" else (248, 352)
    images = pages(args.pages, page_size)
    queries = ["Find the page that answers: revenue by region in 2024"] * len(images)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_FLOPS.items() if k in gpu), None)
    results = {"device": gpu, "size": args.size, "encode": [], "train": []}
    with tempfile.TemporaryDirectory() as folder:
        build_model(args.size, Path(folder), dtype)
        for attn in attns:
            model = load_embedder(Path(folder), args.device, dtype, attn)
            results["parameters"] = params(model)
            for side in [int(s) for s in args.budgets.split(",")]:
                row = {"attn": attn, **encode_rate(model, images, side, args.encode_batch, args.device)}
                row["mfu"] = row["flops_per_s"] / peak if peak else None
                results["encode"].append(row)
                print(json.dumps(row), flush=True)
        for mini_batch in [int(m) for m in args.mini_batches.split(",")]:
            model = load_embedder(Path(folder), args.device, dtype, "sdpa")
            set_budget(model, 600)
            row = train_step_rate(model, images, queries, args.train_batch, mini_batch, args.steps, args.device)
            results["train"].append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({k: v for k, v in results.items() if k not in ("encode", "train")}))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
