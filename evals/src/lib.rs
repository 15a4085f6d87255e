//! Evaluation suites (retrieval, grounded answers, tool choice, grant enforcement,
//! latency/cost) run against a real model over the real runtime, and their reports.
