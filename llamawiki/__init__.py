"""llamawiki: Llama 2 on Portuguese Wikipedia — base model vs. RAG vs. QLoRA fine-tuning.

The top-level scripts (build_dataset.py, particiona.py, finetune.py, rag.py, chat_cpu.py, chat_gpu.py,
compare.py) are thin command-line front ends over the modules of this package:

- ``prompt``    the one Alpaca-style template used for training, chat and comparison
- ``dump``      the one streaming reader of MediaWiki XML dumps (.xml / .xml.bz2, multistream)
- ``wikitext``  wikitext -> plain text (sections kept, infobox fields as data)
- ``dataset``   QA generation from articles, import of the study's CSV/JSON, JSONL I/O
- ``split``     grouped train/test split and leakage report
- ``models``    the one model loader (llama.cpp and transformers backends)
- ``training``  LoRA / QLoRA supervised fine-tuning
- ``retrieval`` LangChain RAG: loader, index, hybrid retriever, answer chain
- ``evaluation`` metrics and the comparison runner
- ``fileio``    atomic writes, hashing, the CLI error convention
"""

__version__ = "0.1.0"
