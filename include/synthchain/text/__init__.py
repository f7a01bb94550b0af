"""The text modality: labelled or free texts.

- `modality`: `TextModality` (registered in synthchain/modalities.py); `profile` (loading, cleaning,
  eval sets), `tokens`.
- Generators: `generators` (the Kneser-Ney n-gram built-in), `llm_generator` (`openai_compatible`, any
  OpenAI-compatible endpoint) with its versioned prompt `strategies` (Self-Instruct, Evol-Instruct,
  distillation, code solutions).
- Verification and filters: `checks` (per-record checks, label consistency), `overlap` (memorisation,
  contamination), `neardup` (MinHash LSH), `semantic` and `embeddings`, `fidelity`, `filters`.
- `diversity`, `monitors` (collapse), `evaluation` (downstream classifier), `report` (report sections),
  `ngram` (the language model behind generation and perplexity).

May import the core (synthchain's top-level modules, `collapse`, `llm`, `provenance`) and its own modules;
never another modality or `ops`.
"""
