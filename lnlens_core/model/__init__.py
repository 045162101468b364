"""The liquidity model: what balance each channel should hold, learned from the node's own forwards.

A map of the package, in the order data flows through it:

- :mod:`.features`: the feature row of one channel (the single definition training and serving share).
- :mod:`.target`: the training target, the balance ratio that pays most net of reaching it, and the day's demand.
- :mod:`.learning`: datasets, scikit-learn pipelines, metrics, ONNX export, drift and the online learner (the
  ``train`` extra; child processes for online learning).
- :mod:`.inference`: serving through onnxruntime (one batch for all channels).
- :mod:`.registry`: model versions, as files and ``model_runs`` rows; activation and rollback.
- :mod:`.info`: what lnlens says about a version (metadata, decision, drift) to the CLI and the web API.
- :mod:`.liquidity`: the model over a node's store: features now, predictions, suggestions.
- :mod:`.suggestions`: rebalancing suggestions from predictions, as recommendations.
- :mod:`.loop`: the model's part of every live interval (the daemons and the simulator).
- :mod:`.fee_model`: serving the fee-response model that ``model_driven`` asks for fee opinions.
- :mod:`.plots`: the liquidity report's PNG plots.

Nothing is imported here: each module is imported where it is used, so the daemons load only what they run.
"""
