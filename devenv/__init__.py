"""Local development environment: the real Temporal dev server and the demo, shared by tests,
`make run`, `make demo` and the benchmarks."""
