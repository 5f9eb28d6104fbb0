"""The testbed: a scenario's strategies on real processes, sockets and TLS (``node``:
one server node behind uvicorn; ``loadgen``: the workload through the real client
engines; ``cluster``: starting and stopping the nodes), measured (``measure``), simulated
as they ran (``predict``), and held against each other (``validation``, ``run``). The
HTTP layer's own cost for ``wssim calibrate`` is ``httpcost``; ``ledger_gap`` measures how
much of an engine's CPU its ledger charges; ``links`` probes network namespaces and netem."""
