"""Token classification (NER): CoNLL / JSON Lines / Hub data, tag schemes, word alignment and windows, seqeval scores."""
