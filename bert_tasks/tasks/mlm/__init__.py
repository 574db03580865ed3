"""Masked-language-model pretraining: corpus loading, WordPiece training, packing and dynamic masking."""
