"""llamawiki: Llama 2 on Portuguese Wikipedia — base model vs. RAG vs. QLoRA fine-tuning.

The top-level scripts (build_dataset.py, particiona.py, finetune.py, rag.py, chat_cpu.py, chat_gpu.py,
compare.py) are thin command-line front ends over the modules of this package:

- ``fileio``    atomic writes, CSV/JSONL readers, hashing, the CLI error convention (``UserError``, ``@cli``)
- ``prompt``    the one Alpaca-style template used for training, chat and comparison
- ``text``      the one text normalization (accents, case, punctuation, Portuguese stopwords, sentences)
- ``options``   the command-line flags and defaults every model-using script shares
- ``config``    YAML configs with ``--set key=value`` overrides
- ``pages``     the data of a dump: ``Page``, ``SiteInfo``, ``DumpError``
- ``wikitext``  wikitext -> plain text (sections kept, infobox fields as data)
- ``dump``      the one streaming reader of MediaWiki XML dumps (.xml / .xml.bz2, multistream)
- ``multistream`` splits a multistream dump into standalone part dumps on its bzip2 streams (cluster jobs)
- ``categories`` the topic filter: a dump's category tree -> the articles of a category and its subcategories
- ``records``   the instruction-record format, the study's CSV/JSON import, dataset reading
- ``dataset``   QA generation from articles
- ``split``     grouped train/test split and leakage report
- ``lora_gguf`` PEFT LoRA -> llama.cpp GGUF adapter
- ``models``    the one model loader (llama.cpp and transformers backends) and model-spec inference
- ``training``  LoRA / QLoRA supervised fine-tuning
- ``retrieval`` LangChain RAG: loader, index, hybrid retriever, answer chain
- ``chat``      the terminal chat shared by chat_cpu.py, chat_gpu.py and ``rag.py chat``
- ``metrics``   answer metrics and confidence intervals
- ``evaluation`` the comparison runner, answer cache and tables

docs/architecture.md draws the layers; tests/test_architecture.py enforces them.
"""

__version__ = "0.1.0"
