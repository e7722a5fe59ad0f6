"""Token models: one spec schema (:mod:`models.token.spec`), the outcomes
(:mod:`models.token.outcome`), the model interface and dispatcher
(:mod:`models.token.protocol`), the reserve-backed gold token
(:mod:`models.token.reserve_backed`) and the gold CDP stablecoin (:mod:`models.token.cdp`).

Typical use::

    from models.token.spec import load_token_spec
    from models.token.protocol import build_token_model

    outcome = build_token_model(load_token_spec("specs/paxg.toml")).run(gold, calendar=cal, rng=rng)
"""
