"""The systems the telemetry tests run: a router with an LLM classifier, a vote, and a
fallback whose models all fail, on scripted models with prices (so cost is not zero)."""

from __future__ import annotations

SYSTEMS_YAML = """
models:
  clf: {provider: scripted, default: math, price: {input: 1.0, output: 2.0},
        usage: {input_tokens: 30, output_tokens: 1}}
  solver: {provider: scripted, default: "4", price: {input: 3.0, output: 15.0},
           usage: {input_tokens: 12, output_tokens: 2}, params: {temperature: 0, max_tokens: 8}}
  chat: {provider: scripted, default: "hello", price: {input: 0.5, output: 1.0}}
  a: {provider: scripted, default: "Paris", price: {input: 1.0, output: 1.0}}
  b: {provider: scripted, default: "Paris", price: {input: 1.0, output: 1.0}}
  c: {provider: scripted, default: "Lyon", price: {input: 1.0, output: 1.0}}
  down1: {provider: scripted, fail_with: server_error, fail_times: -1}
  down2: {provider: scripted, fail_with: timeout, fail_times: -1}
systems:
  router:
    kind: router
    classifier: {type: llm, model: clf, labels: [math, general]}
    routes: {math: solver, general: chat}
    default: general
  vote:
    kind: vote
    models: [a, b, c]
  fallback:
    kind: fallback
    models: [down1, down2]
    cooldown_s: 0          # every run tries both (cooldowns outlive one test)
  cached:
    kind: budget
    request: {usd: 0.01}
    inner: {kind: cache, inner: solver}
"""
