"""Model families (single-vector, multi-vector, Router), loading with LoRA adapters, losses and rerankers."""
