"""Ask a vision-language model for queries about a page image, in the styles the field uses.

Any ``AutoModelForImageTextToText`` with a chat template that takes images (Qwen2.5-VL, Qwen3-VL, the tiny
fixture) works: pages go in batches, padded on the left, decoded greedily unless ``temperature`` > 0. The
model's text is split into queries, one per line; numbering, bullets and quotes around them are removed.
Whatever cannot be read as a query (nothing, or only punctuation) comes back empty and is dropped by the
filter with its reason, so a generator that writes nonsense costs its pairs, never the run.
"""

from __future__ import annotations

import logging
import re

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from vdr_exp.generation.config import GeneratorConfig

log = logging.getLogger(__name__)

# The three query styles of VDR training sets (questions, keyword searches, instructions), one prompt each.
PROMPTS = {
    "question": (
        "You write search queries for a document retrieval system. Look at this document page and write {n} "
        "different questions a person could ask that this page answers. Ask about its facts, figures or charts "
        "in your own words; do not copy sentences from the page. One question per line, nothing else."
    ),
    "keyword": (
        "You write search queries for a document retrieval system. Look at this document page and write {n} "
        "short keyword searches (2 to 6 words) someone would type to find it. One search per line, nothing else."
    ),
    "instruction": (
        "You write search queries for a document retrieval system. Look at this document page and write {n} "
        "requests that start with a verb (Find, Show, Compare...) and that this page fulfils, in your own words. "
        "One request per line, nothing else."
    ),
}

_LEAD = re.compile(r"^\s*(?:[-*\u2022]|\(?\d{1,2}[.):]|q\d*[.:)]|query\s*\d*[.:])\s*", re.IGNORECASE)


def prompt_for(style: str, n: int) -> str:
    return PROMPTS[style].format(n=n)


def parse_queries(text: str, n: int) -> list[str]:
    """Up to ``n`` queries from the model's text, one per non-empty line, without list markers or quotes."""
    found = []
    for line in text.splitlines():
        query = _LEAD.sub("", line).strip().strip("\"'`\u201c\u201d").strip()
        if re.search(r"\w", query):
            found.append(query)
    return found[:n]


class Generator:
    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.processor = AutoProcessor.from_pretrained(cfg.path)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues from the right edge
        image_processor = self.processor.image_processor
        image_processor.size = {"shortest_edge": cfg.min_pixels, "longest_edge": cfg.max_pixels}
        attn = cfg.attn_implementation if self.device == "cuda" else "sdpa"
        self.model = AutoModelForImageTextToText.from_pretrained(
            cfg.path, dtype=getattr(torch, cfg.dtype), attn_implementation=attn
        ).to(self.device)
        self.model.eval()

    @torch.inference_mode()
    def generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        """The model's raw text for each (page image, prompt)."""
        messages = [
            [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}]
            for image, prompt in zip(images, prompts, strict=True)
        ]
        inputs = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt", padding=True
        ).to(self.device)
        torch.manual_seed(self.cfg.seed)
        sampling = (
            {"do_sample": True, "temperature": self.cfg.temperature}
            if self.cfg.temperature > 0
            else {"do_sample": False}
        )
        output = self.model.generate(**inputs, max_new_tokens=self.cfg.max_new_tokens, **sampling)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)
