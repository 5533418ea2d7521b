"""Side-by-side benchmarks (``colearn bench``): this project against others, measured in
one invocation on one machine. Nothing here is imported by ``import colearning``."""
