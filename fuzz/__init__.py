"""Coverage-guided fuzzers (atheris) for every decoder that reads another party's bytes.

One harness per decoder, each runnable as ``python -m fuzz.NAME -runs=N [CORPUS_DIR]``
(any libFuzzer flag works; without a corpus directory the harness writes its seed
corpus, built from valid encodings, into a temporary one). A harness calls its decoder
on every input and lets through only a clean refusal, a ``ColearningError``; anything
else (an ``IndexError``, a ``MemoryError`` under the harness's address-space limit, a
``RecursionError``) is a crash, and libFuzzer stops and writes the input.

``tests/fuzz/test_fuzzers.py`` runs each for a fixed number of executions in CI;
``docs/robustness.md`` ("Hostile input") has the numbers and the crashes found.
"""
